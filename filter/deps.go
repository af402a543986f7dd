package filter

// Transport libraries used by the adapters being written; this file keeps
// them in go.mod meanwhile and is removed when the adapters land.
import (
	_ "github.com/emersion/go-milter"
	_ "github.com/emersion/go-smtp"
)
