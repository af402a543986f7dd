package ics

import (
	"errors"
	"fmt"
)

// Limits bound the work Decode does on one calendar object. A zero field
// means the default from DefaultLimits.
type Limits struct {
	MaxBytes           int // whole object (default 1 MiB)
	MaxLineBytes       int // one unfolded content line (default 64 KiB)
	MaxComponents      int // components in total, nested included, VCALENDAR counts (default 1000)
	MaxProperties      int // properties per component (default 2000)
	MaxAttendees       int // ATTENDEE properties per component (default 1000)
	MaxRecurrenceDates int // EXDATE+RDATE values per component (default 1000)
	MaxDepth           int // component nesting, VCALENDAR is 1 (default 10)
}

// DefaultLimits returns the limits Decode uses for zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:           1 << 20,
		MaxLineBytes:       64 << 10,
		MaxComponents:      1000,
		MaxProperties:      2000,
		MaxAttendees:       1000,
		MaxRecurrenceDates: 1000,
		MaxDepth:           10,
	}
}

// StoredLimits returns the limits for decoding imipd's own stored objects:
// generous, since they passed the limits of mail (or of a calendar app's
// write) when they arrived and grow only by what was applied to them, but
// still finite. The decision call, the CalDAV server, the feed, export and
// imipctl's views read stored events with them.
func StoredLimits() Limits {
	return Limits{MaxBytes: 64 << 20, MaxLineBytes: 4 << 20, MaxComponents: 100000, MaxProperties: 100000, MaxAttendees: 100000, MaxRecurrenceDates: 100000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = d.MaxLineBytes
	}
	if l.MaxComponents <= 0 {
		l.MaxComponents = d.MaxComponents
	}
	if l.MaxProperties <= 0 {
		l.MaxProperties = d.MaxProperties
	}
	if l.MaxAttendees <= 0 {
		l.MaxAttendees = d.MaxAttendees
	}
	if l.MaxRecurrenceDates <= 0 {
		l.MaxRecurrenceDates = d.MaxRecurrenceDates
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// ErrSyntax is returned (wrapped, with detail) for malformed iCalendar data
// and for malformed property values (dates, durations, UTC offsets).
var ErrSyntax = errors.New("ics: malformed iCalendar")

// ErrUnknownTZ is returned (wrapped, with the TZID) when a TZID cannot be
// resolved to a location.
var ErrUnknownTZ = errors.New("ics: unknown time zone")

// LimitError reports that the input exceeds one of the Limits.
// Reason is one of the Reason* constants.
type LimitError struct{ Reason string }

// Reason words of LimitError, usable as outcome reasons.
const (
	ReasonCalendarSize    = "calendar-size"
	ReasonLineLength      = "line-length"
	ReasonComponents      = "components"
	ReasonProperties      = "properties"
	ReasonAttendees       = "attendees"
	ReasonRecurrenceDates = "recurrence-dates"
	ReasonDepth           = "component-depth"
)

func (e *LimitError) Error() string {
	return fmt.Sprintf("ics: limit exceeded: %s", e.Reason)
}
