package filter

import (
	"bytes"
	"time"
)

// OnOutboxRound has o call f after each round of Run with the time the
// round went by, so that tests wait for a round instead of sleeping. Set
// it before Run.
func OnOutboxRound(o *Outbox, f func(now time.Time)) { o.afterRound = f }

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
