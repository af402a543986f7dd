package ics

import (
	"strings"

	"github.com/emersion/go-ical"
)

// Text is the value of a TEXT property as a person reads it (RFC 5545
// §3.3.11; UnescapeText): stored and received calendars keep the escaped
// form in Prop.Value, and the encoder writes it back as it is; Text is the
// accessor for showing a value or exporting it as JSON. Unlike go-ical's
// Prop.Text it is lenient, as a reader must be with mail from outside: an
// unescaped comma is part of the text (not a list separator), and a VALUE
// parameter is not looked at. A nil property is "".
func text(p *ical.Prop) string {
	if p == nil {
		return ""
	}
	return UnescapeText(p.Value)
}

// Line is Text for a one-line display (a title in a table, a description,
// a mail subject): every run of white space, line breaks and control
// characters becomes one space, and the ends are trimmed.
func Line(p *ical.Prop) string { return OneLine(text(p)) }

// OneLine is s with every run of white space, line breaks and control
// characters as one space, the ends trimmed (a parameter value such as CN,
// or a text already unescaped, for a one-line display).
func OneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029'
	}), " ")
}

// UnescapeText reads a TEXT value (RFC 5545 §3.3.11): `\n` and `\N` are a
// line break, a backslash before any other character stands for that
// character. Property values are kept escaped by Decode; this is how to
// read one for showing or comparing.
func UnescapeText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n', 'N':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
