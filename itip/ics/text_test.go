package ics_test

import (
	"testing"

	"github.com/emersion/go-ical"

	"imipd/itip/ics"
)

func TestText(t *testing.T) {
	for _, c := range []struct{ raw, text, line string }{
		{`Budget review\, Q1`, "Budget review, Q1", "Budget review, Q1"},
		{`a\;b\\c`, `a;b\c`, `a;b\c`},
		{`two\nlines\N  here`, "two\nlines\n  here", "two lines here"},
		{`plain, comma`, "plain, comma", "plain, comma"},
		{`unknown \x escape`, `unknown x escape`, `unknown x escape`},
		{`trailing\`, `trailing\`, `trailing\`},
		{"  tab\there\x01 ", "  tab\there\x01 ", "tab here"},
		{"", "", ""},
	} {
		p := ical.NewProp(ical.PropSummary)
		p.Value = c.raw
		if got := ics.Text(p); got != c.text {
			t.Errorf("Text(%q) = %q, want %q", c.raw, got, c.text)
		}
		if got := ics.Line(p); got != c.line {
			t.Errorf("Line(%q) = %q, want %q", c.raw, got, c.line)
		}
	}
	if ics.Text(nil) != "" || ics.Line(nil) != "" {
		t.Error("nil property is not empty")
	}
}

// TestTextRoundTrip: what Text reads, SetText writes back escaped.
func TestTextRoundTrip(t *testing.T) {
	p := ical.NewProp(ical.PropSummary)
	p.Value = `Budget review\, Q1\; room 2\nsecond line \\ end`
	q := ical.NewProp(ical.PropSummary)
	q.SetText(ics.Text(p))
	if q.Value != p.Value {
		t.Fatalf("SetText(Text(%q)) = %q", p.Value, q.Value)
	}
}

func FuzzText(f *testing.F) {
	f.Add(`a\,b\;c\\d\ne\N\x\`)
	f.Fuzz(func(t *testing.T, v string) {
		p := ical.NewProp(ical.PropSummary)
		p.Value = v
		_ = ics.Text(p)
		_ = ics.Line(p)
	})
}
