package imip

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics and keeps its bounds, with the
// default limits and with small ones that make the limit paths reachable.
func FuzzParse(f *testing.F) {
	for _, m := range fixtures() {
		f.Add([]byte(m), false)
		f.Add([]byte(m), true)
	}
	small := Limits{MaxDepth: 3, MaxParts: 8, MaxHeaderBytes: 2048, MaxDecodedBytes: 2048, MaxCalendarBytes: 1024}
	f.Fuzz(func(t *testing.T, data []byte, useSmall bool) {
		lim := DefaultLimits()
		if useSmall {
			lim = small
		}
		m, err := Parse(bytes.NewReader(data), lim)
		if m == nil {
			t.Fatalf("nil message (err %v)", err)
		}
		var le *LimitError
		switch {
		case err == nil:
			if len(m.Parts) == 0 {
				t.Fatalf("no error and no parts")
			}
		case errors.Is(err, ErrNoCalendar):
			if len(m.Parts) != 0 {
				t.Fatalf("ErrNoCalendar with %d parts", len(m.Parts))
			}
		case errors.As(err, &le):
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if len(m.Parts) > lim.MaxParts {
			t.Fatalf("%d parts > %d", len(m.Parts), lim.MaxParts)
		}
		var total int64
		for i, p := range m.Parts {
			if int64(len(p.Data)) > lim.MaxCalendarBytes {
				t.Fatalf("part %d: %d bytes > %d", i, len(p.Data), lim.MaxCalendarBytes)
			}
			total += int64(len(p.Data))
			if !utf8.Valid(p.Data) {
				t.Fatalf("part %d not UTF-8", i)
			}
			if !isCalendarType(p.contentType, p.filename) {
				t.Fatalf("part %d: not a calendar type: %q %q", i, p.contentType, p.filename)
			}
		}
		if total > lim.MaxDecodedBytes {
			t.Fatalf("decoded %d > %d", total, lim.MaxDecodedBytes)
		}
		// The same from an input that drops what the parse skips, handing
		// over a few bytes per read.
		sameWhenSkipping(t, data, lim, 1+len(data)%13, m, err)
	})
}
