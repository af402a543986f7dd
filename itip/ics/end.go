package ics

import (
	"fmt"

	"github.com/emersion/go-ical"
)

// End is the effective end of the event component c (RFC 5545 §3.6.1), the
// one reading of DTEND and DURATION every caller shares:
//
//   - DTEND when present, also beside a DURATION (RFC 5545 §3.6.1 forbids
//     both; real senders write both and DTEND counts: docs/rules.md
//     "Bad input"). It is read on its own: DTSTART may be missing or
//     unreadable.
//   - else DTSTART plus DURATION (RFC 5545 §3.8.2.5), days nominal
//     (Duration.AddTo); the end has DTSTART's kind (all-day, floating).
//   - else one day after a DATE DTSTART, and DTSTART itself for a
//     DATE-TIME (RFC 5545 §3.6.1: the event ends on the same date and time
//     of day).
//
// An end before the start (a DTEND before DTSTART, which RFC 5545
// §3.8.2.2 forbids, or a negative DURATION) is the start: the event has no
// length, as if it had neither. A DTEND, DTSTART or DURATION that cannot
// be read (bad syntax, unknown TZID, several values) is an error wrapping
// ErrSyntax or ErrUnknownTZ, and so is a component with neither DTSTART
// nor DTEND: the caller decides what an unreadable end means to it.
func (z *Zones) End(c *ical.Component) (Time, error) {
	ds := c.Props.Get(ical.PropDateTimeStart)
	if de := c.Props.Get(ical.PropDateTimeEnd); de != nil {
		end, err := z.PropTime(de)
		if err != nil {
			return Time{}, err
		}
		if ds != nil {
			if st, err := z.PropTime(ds); err == nil && end.T.Before(st.T) {
				return st, nil
			}
		}
		return end, nil
	}
	if ds == nil {
		return Time{}, fmt.Errorf("%w: %s without DTSTART or DTEND", ErrSyntax, c.Name)
	}
	st, err := z.PropTime(ds)
	if err != nil {
		return Time{}, err
	}
	if du := c.Props.Get(ical.PropDuration); du != nil {
		d, err := ParseDuration(du.Value)
		if err != nil {
			return Time{}, fmt.Errorf("%s: %w", ical.PropDuration, err)
		}
		if d.negative {
			return st, nil
		}
		end := st
		end.T = d.AddTo(st.T)
		return end, nil
	}
	if st.AllDay {
		st.T = st.T.AddDate(0, 0, 1)
	}
	return st, nil
}
