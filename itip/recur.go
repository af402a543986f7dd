package itip

import (
	"strings"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"

	"imipd/itip/ics"
)

// maxExpand bounds the occurrences walked to decide whether a RECURRENCE-ID
// belongs to a series; past it the answer is "yes" (lenient, bounded CPU).
const maxExpand = 20000

// isOccurrence reports whether rid (a ridKey) is an instance of the stored
// master's recurrence set (RFC 5545 §3.8.5). Unknown or unparseable rules
// count as yes: this check only keeps a REPLY for a day that is not in the
// series from creating an override.
func (o *object) isOccurrence(rid string) bool {
	m := o.master()
	if m == nil {
		return true
	}
	ds, err := o.zones.PropTime(m.Props.Get(ical.PropDateTimeStart))
	if m.Props.Get(ical.PropDateTimeStart) == nil || err != nil {
		return true
	}
	key := func(t time.Time) string { return timeKey(ics.Time{T: t, AllDay: ds.AllDay, Floating: ds.Floating}) }
	for i := range m.Props[ical.PropExceptionDates] {
		ts, _ := o.zones.PropTimes(&m.Props[ical.PropExceptionDates][i])
		for _, t := range ts {
			if timeKey(t) == rid {
				return false
			}
		}
	}
	if key(ds.T) == rid {
		return true
	}
	for i := range m.Props[ical.PropRecurrenceDates] {
		ts, _ := o.zones.PropTimes(&m.Props[ical.PropRecurrenceDates][i])
		for _, t := range ts {
			if timeKey(t) == rid {
				return true
			}
		}
	}
	rules := m.Props[ical.PropRecurrenceRule]
	if len(rules) == 0 {
		return false
	}
	target, ok := parseKey(rid)
	if !ok {
		return true
	}
	for _, rp := range rules {
		opt, err := rrule.StrToROption(strings.TrimSpace(rp.Value))
		if err != nil {
			return true
		}
		switch opt.Freq {
		case rrule.SECONDLY, rrule.MINUTELY, rrule.HOURLY:
			// rrule-go walks every period between DTSTART and the target,
			// also periods its BYxxx parts reject: centuries of seconds are
			// CPU no message may cost. Answer leniently instead.
			return true
		}
		opt.Dtstart = ds.T
		// Never iterate past the target: a rule whose BYxxx parts match
		// nothing otherwise runs to the year 9999.
		if limit := target.Add(48 * time.Hour); opt.Until.IsZero() || opt.Until.After(limit) {
			opt.Until = limit
		}
		if target.Year()-ds.T.Year() > 50 {
			return true
		}
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			return true
		}
		next := r.Iterator()
		for i := 0; i < maxExpand; i++ {
			t, ok := next()
			if !ok {
				break
			}
			if key(t) == rid {
				return true
			}
			if t.After(target.Add(48 * time.Hour)) {
				break
			}
		}
	}
	return false
}

func parseKey(k string) (time.Time, bool) {
	for _, layout := range []string{"20060102T150405Z", "20060102T150405", "20060102"} {
		if t, err := time.Parse(layout, k); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
