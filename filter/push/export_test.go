package push

// Names the external tests use.
const (
	Path                 = pushPath
	ResolveRecipientOnly = resolveRecipientOnly
	ResolveMailLogin     = resolveMailLogin
)

// WithMaxBody is opt with the push body cap the daemon leaves at its
// default.
func WithMaxBody(opt Options, n int64) Options {
	opt.maxBody = n
	return opt
}
