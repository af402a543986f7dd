package filter

import (
	"bytes"

	"github.com/prometheus/client_golang/prometheus"

	"imipd/calstore"
)

// FilterHeader runs a header block through a headerFilter in writes of
// piece bytes (0: one write).
func FilterHeader(block []byte, name string, piece int) []byte {
	var b bytes.Buffer
	f := newHeaderFilter(&b, name, false)
	if piece <= 0 {
		piece = len(block) + 1
	}
	for p := block; len(p) > 0; {
		n := min(piece, len(p))
		f.Write(p[:n])
		p = p[n:]
	}
	f.Close()
	return b.Bytes()
}

// ReasonUserLimit is the reason word of the per-message and per-hour caps
// on new users.
const ReasonUserLimit = reasonUserLimit

// Names the external tests use.
const (
	OutcomeRepeat    = outcomeRepeat
	NewUserWindow    = newUserWindow
	RefreshAskWindow = refreshAskWindow
)

// ErrNotOpen is Respond's error for a pending item that is no longer open.
var ErrNotOpen = errNotOpen

// LocalUser is localUser: the user addr resolves to.
func (p *Processor) LocalUser(tx calstore.Tx, addr string) (string, bool, error) {
	return p.localUser(tx, addr)
}

// Outcomes is imipd_outcomes_total.
func (m *Metrics) Outcomes() *prometheus.CounterVec { return m.outcomes }
