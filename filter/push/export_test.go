package push

// Names the external tests use.
const (
	Path                 = pushPath
	ResolveRecipientOnly = resolveRecipientOnly
	ResolveMailLogin     = resolveMailLogin
)
