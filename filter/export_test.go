package filter

import "bytes"

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
