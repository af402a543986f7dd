package caldav

import (
	"strings"
	"time"

	"github.com/emersion/go-ical"
	gocaldav "github.com/emersion/go-webdav/caldav"
	"github.com/teambition/rrule-go"

	"imipd/itip/ics"
)

// maxQueryInstances bounds the recurrence instances one calendar-query
// walks to evaluate its time ranges, all objects together (SECURITY.md
// "Limits"). A series it cannot decide within what is left, or whose rule
// could make the walk run on without yielding instances (sub-daily
// frequencies, BYSETPOS, a day of month that may not exist, ...), matches
// without being expanded: the client gets the whole object and expands it
// itself, which is better than a missing event (RFC 4791 §9.9 asks for
// overlapping instances; a server may answer more, never less, as the
// client filters again).
const maxQueryInstances = 10000

// queryMatcher evaluates a calendar-query filter (RFC 4791 §9.7) on stored
// objects, with one expansion budget for the request.
type queryMatcher struct {
	left int // instances the request may still walk
}

func newQueryMatcher() *queryMatcher { return &queryMatcher{left: maxQueryInstances} }

// match reports whether the object matches the filter.
func (q *queryMatcher) match(f gocaldav.CompFilter, cal *ical.Calendar) bool {
	if cal == nil || cal.Component == nil {
		return false
	}
	return q.comp(f, cal.Component, ics.NewZones(cal))
}

func (q *queryMatcher) comp(f gocaldav.CompFilter, c *ical.Component, z *ics.Zones) bool {
	if !strings.EqualFold(c.Name, f.Name) {
		return f.IsNotDefined
	}
	if !f.Start.IsZero() || !f.End.IsZero() {
		if !q.timeRange(f.Start, f.End, c, z) {
			return false
		}
	}
	for _, cf := range f.Comps {
		found := false
		for _, ch := range c.Children {
			if strings.EqualFold(ch.Name, cf.Name) && q.comp(cf, ch, z) {
				found = true
				break
			}
		}
		if !found && !cf.IsNotDefined {
			return false
		}
		if found && cf.IsNotDefined {
			return false
		}
	}
	for _, pf := range f.Props {
		if !propMatch(pf, c, z) {
			return false
		}
	}
	return true
}

// propMatch is RFC 4791 §9.7.2: any property of that name satisfying the
// parameter filters and the time range or text match.
func propMatch(f gocaldav.PropFilter, c *ical.Component, z *ics.Zones) bool {
	props := c.Props[strings.ToUpper(f.Name)]
	if f.IsNotDefined {
		return len(props) == 0
	}
	for i := range props {
		p := &props[i]
		ok := true
		for _, pm := range f.ParamFilter {
			v := p.Params.Get(pm.Name)
			switch {
			case pm.IsNotDefined:
				ok = ok && v == ""
			case v == "":
				ok = false
			case pm.TextMatch != nil:
				ok = ok && textMatch(*pm.TextMatch, v)
			}
		}
		if ok && (!f.Start.IsZero() || !f.End.IsZero()) {
			t, err := z.PropTime(p)
			ok = err != nil || inRange(t.T, 0, f.Start, f.End) // unreadable: include
		} else if ok && f.TextMatch != nil {
			ok = textMatch(*f.TextMatch, p.Value)
		}
		if ok {
			return true
		}
	}
	return false
}

// textMatch is the default collation i;ascii-casemap (RFC 4791 §7.5):
// substring, ASCII case-insensitive.
func textMatch(m gocaldav.TextMatch, v string) bool {
	ok := strings.Contains(strings.ToLower(v), strings.ToLower(m.Text))
	return ok != m.NegateCondition
}

// inRange is the overlap test of RFC 4791 §9.9 for an instance starting at
// s and lasting d: a zero end of the range is open.
func inRange(s time.Time, d time.Duration, start, end time.Time) bool {
	if d > 0 {
		return (end.IsZero() || s.Before(end)) && (start.IsZero() || s.Add(d).After(start))
	}
	return (end.IsZero() || s.Before(end)) && (start.IsZero() || !s.Before(start))
}

// timeRange reports whether an instance of c overlaps start..end (RFC 4791
// §9.9). Components other than VEVENT, and values it cannot read, match.
func (q *queryMatcher) timeRange(start, end time.Time, c *ical.Component, z *ics.Zones) bool {
	if c.Name != ical.CompEvent {
		return true
	}
	dsp := c.Props.Get(ical.PropDateTimeStart)
	if dsp == nil {
		return false
	}
	ds, err := z.PropTime(dsp)
	if err != nil {
		return true
	}
	// The instance lasts to the event's end (ics.Zones.End: DTEND, else
	// DURATION, else a day for a DATE; never before the start). An end it
	// cannot read counts as none: the instance is its start, which is
	// known.
	var dur time.Duration
	if e, err := z.End(c); err == nil {
		dur = e.T.Sub(ds.T)
	}
	if inRange(ds.T, dur, start, end) {
		return true
	}
	for i := range c.Props[ical.PropRecurrenceDates] {
		ts, err := z.PropTimes(&c.Props[ical.PropRecurrenceDates][i])
		if err != nil {
			return true
		}
		for _, t := range ts {
			if inRange(t.T, dur, start, end) {
				return true
			}
		}
	}
	rules := c.Props[ical.PropRecurrenceRule]
	if len(rules) == 0 {
		return false
	}
	ex := map[int64]bool{}
	for i := range c.Props[ical.PropExceptionDates] {
		ts, _ := z.PropTimes(&c.Props[ical.PropExceptionDates][i])
		for _, t := range ts {
			ex[t.T.Unix()] = true
		}
	}
	for _, rp := range rules {
		if match, decided := q.rule(strings.TrimSpace(rp.Value), ds.T, dur, start, end, ex); match || !decided {
			return true
		}
	}
	return false
}

// rule expands one RRULE of a series starting at ds over start..end within
// the request's budget; decided is false when it could not tell.
func (q *queryMatcher) rule(value string, ds time.Time, dur time.Duration, start, end time.Time, ex map[int64]bool) (match, decided bool) {
	defer func() {
		if r := recover(); r != nil { // rrule-go on hostile input
			match, decided = false, false
		}
	}()
	opt, err := rrule.StrToROption(value)
	if err != nil {
		return false, false
	}
	if !end.IsZero() && !ds.Before(end) {
		return false, true // every instance starts at or after DTSTART
	}
	if !opt.Until.IsZero() && !start.IsZero() && opt.Until.Add(dur).Before(start) {
		return false, true // the last instance ends before the range
	}
	if end.IsZero() || !walkable(opt, ds) {
		return false, false
	}
	if opt.Interval < 1 {
		opt.Interval = 1
	}
	opt.Dtstart = ds
	if opt.Count == 0 && !start.IsZero() {
		opt.Dtstart = skipPeriods(opt, ds, start.Add(-dur))
	}
	if opt.Until.IsZero() || opt.Until.After(end) {
		opt.Until = end
	}
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return false, false
	}
	next := r.Iterator()
	for q.left > 0 {
		t, ok := next()
		if !ok || !t.Before(end) {
			return false, true
		}
		q.left--
		if !ex[t.Unix()] && inRange(t, dur, start, end) {
			return true, true
		}
	}
	return false, false
}

// walkable reports whether rrule-go yields an instance of the rule at least
// every few periods, so that a walk ends at the range's end: rrule-go checks
// UNTIL only on instants its BYxxx parts let through, and walks a rule that
// matches nothing (BYMONTH=2;BYMONTHDAY=30) period by period to the year
// 9999. Sub-daily rules are never walked (a month of seconds is millions of
// instances).
func walkable(opt *rrule.ROption, ds time.Time) bool {
	switch opt.Freq {
	case rrule.DAILY, rrule.WEEKLY, rrule.MONTHLY, rrule.YEARLY:
	default:
		return false
	}
	if len(opt.Bysetpos) != 0 || len(opt.Byyearday) != 0 || len(opt.Byweekno) != 0 || len(opt.Byeaster) != 0 {
		return false
	}
	if opt.Freq == rrule.WEEKLY && len(opt.Bymonthday) != 0 {
		return false
	}
	for _, d := range opt.Bymonthday {
		if d == 0 || d > 28 || d < -28 {
			return false
		}
	}
	for _, w := range opt.Byweekday {
		n := w.N()
		switch {
		case n == 0:
		case len(opt.Bymonthday) != 0:
			return false
		case opt.Freq == rrule.MONTHLY || opt.Freq == rrule.YEARLY && len(opt.Bymonth) != 0:
			if n > 4 || n < -4 {
				return false
			}
		case opt.Freq == rrule.YEARLY:
			if n > 52 || n < -52 {
				return false
			}
		default:
			return false
		}
	}
	// MONTHLY and YEARLY rules without a day take DTSTART's: a day past the
	// 28th may not exist in the months the rule names.
	if (opt.Freq == rrule.MONTHLY || opt.Freq == rrule.YEARLY && len(opt.Bymonth) != 0) &&
		len(opt.Bymonthday) == 0 && len(opt.Byweekday) == 0 && ds.Day() > 28 {
		return false
	}
	return true
}

// skipPeriods moves DTSTART forward by whole INTERVALs to the last period
// starting before from, keeping what the rule takes from DTSTART (time of
// day; weekday for WEEKLY; day of month for MONTHLY; month and day for
// YEARLY), so the walk starts near the range, not at a DTSTART years ago.
func skipPeriods(opt *rrule.ROption, ds, from time.Time) time.Time {
	if !ds.Before(from) {
		return ds
	}
	var step func(k int) time.Time
	var k int
	switch opt.Freq {
	case rrule.DAILY:
		k = int(from.Sub(ds).Hours()/24) / opt.Interval
		step = func(k int) time.Time { return ds.AddDate(0, 0, k*opt.Interval) }
	case rrule.WEEKLY:
		k = int(from.Sub(ds).Hours()/(24*7)) / opt.Interval
		step = func(k int) time.Time { return ds.AddDate(0, 0, 7*k*opt.Interval) }
	case rrule.MONTHLY:
		if ds.Day() > 28 {
			return ds
		}
		k = ((from.Year()-ds.Year())*12 + int(from.Month()) - int(ds.Month())) / opt.Interval
		step = func(k int) time.Time { return ds.AddDate(0, k*opt.Interval, 0) }
	case rrule.YEARLY:
		if ds.Month() == time.February && ds.Day() == 29 {
			return ds
		}
		k = (from.Year() - ds.Year()) / opt.Interval
		step = func(k int) time.Time { return ds.AddDate(k*opt.Interval, 0, 0) }
	default:
		return ds
	}
	// One period back: a period that starts before from may still hold
	// instances (BYxxx) in the range, and the estimate of k may be one over.
	for k--; k > 0 && !step(k).Before(from); k-- {
	}
	if k <= 0 {
		return ds
	}
	return step(k)
}
