package ics

import "github.com/emersion/go-ical"

// Text is text, for the external tests.
func Text(p *ical.Prop) string { return text(p) }
