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

// isOccurrence reports whether rid (an InstanceKey) is an instance of the stored
// master's recurrence set (RFC 5545 §3.8.5). Unknown or unparseable rules
// count as yes: this check only keeps a REPLY for a day that is not in the
// series from creating an override.
func (o *Event) isOccurrence(rid string) bool {
	m := o.master()
	if m == nil {
		return true
	}
	ds, err := o.Zones.PropTime(first(m, ical.PropDateTimeStart))
	if first(m, ical.PropDateTimeStart) == nil || err != nil {
		return true
	}
	key := func(t time.Time) string { return timeKey(ics.Time{T: t, AllDay: ds.AllDay, Floating: ds.Floating}) }
	for i := range m.Props[ical.PropExceptionDates] {
		ts, _ := o.Zones.PropTimes(&m.Props[ical.PropExceptionDates][i])
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
		ts, _ := o.Zones.PropTimes(&m.Props[ical.PropRecurrenceDates][i])
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
			// CPU no message may cost. Decide without walking.
			if subDailyOccurrence(opt, ds.T, target) {
				return true
			}
			continue
		}
		if len(opt.Byeaster) > 0 {
			return true // not RFC 5545; rrule-go's extension
		}
		member, ok := inPeriod(*opt, ds, target)
		if !ok {
			return true
		}
		if !member {
			continue
		}
		if opt.Count == 0 {
			return true
		}
		// COUNT: the target is in the rule's pattern; count the occurrences
		// up to it from DTSTART. The walk ends at the target's period (the
		// pattern yields the target), and is not taken when too long.
		if target.Sub(ds.T) > maxWalk[opt.Freq] {
			return true
		}
		opt.Dtstart = ds.T
		if limit := target.Add(48 * time.Hour); opt.Until.IsZero() || opt.Until.After(limit) {
			opt.Until = limit
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

// maxWalk is how far past DTSTART isOccurrence counts the occurrences of
// a rule with COUNT: about 3,700 periods of DAILY or WEEKLY; past it the
// answer is leniently yes.
var maxWalk = map[rrule.Frequency]time.Duration{
	rrule.DAILY:   10 * 366 * 24 * time.Hour,
	rrule.WEEKLY:  70 * 366 * 24 * time.Hour,
	rrule.MONTHLY: 51 * 366 * 24 * time.Hour,
	rrule.YEARLY:  51 * 366 * 24 * time.Hour,
}

// inPeriod reports whether the target is an occurrence of a DAILY, WEEKLY,
// MONTHLY or YEARLY rule, COUNT aside (member), without walking from
// DTSTART: the target's period must be a whole number of intervals after
// DTSTART's, and the rule, started at that period, must yield the target.
// rrule-go checks UNTIL only on instants its BYxxx parts let through, so a
// rule that matches nothing (BYMONTH=2;BYMONTHDAY=30, BYDAY=6MO) walks to
// the year 9999: the walk is moved by whole 400-year Gregorian cycles
// (which repeat dates, weekdays and ISO weeks exactly) to just before 9999,
// so it ends within one cycle whatever the rule. ok is false when the rule
// cannot be evaluated.
func inPeriod(opt rrule.ROption, ds ics.Time, target time.Time) (member, ok bool) {
	start := ds.T
	loc := start.Location()
	tw := target.In(loc)
	if ds.AllDay || ds.Floating {
		tw = time.Date(target.Year(), target.Month(), target.Day(), target.Hour(), target.Minute(), target.Second(), 0, loc)
	}
	if tw.Before(start) || !opt.Until.IsZero() && target.After(opt.Until) {
		return false, true
	}
	// A rule with no BYxxx part makes one occurrence a period, at DTSTART's
	// time of day (and weekday, day of the month, month: RFC 5545
	// §3.3.10); periodOccurrence decides it without expanding.
	plain := len(opt.Bysetpos)+len(opt.Bymonth)+len(opt.Bymonthday)+len(opt.Byyearday)+len(opt.Byweekno)+
		len(opt.Byweekday)+len(opt.Byhour)+len(opt.Byminute)+len(opt.Bysecond) == 0
	interval := max(opt.Interval, 1)
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	weekStart := func(t time.Time) time.Time {
		return day(t).AddDate(0, 0, -((int(t.Weekday())+6)%7-opt.Wkst.Day()+7)%7)
	}
	var periods int
	switch opt.Freq {
	case rrule.DAILY:
		periods = int(day(tw).Sub(day(start)).Hours()+12) / 24
	case rrule.WEEKLY:
		periods = int(weekStart(tw).Sub(weekStart(start)).Hours()+12) / (24 * 7)
	case rrule.MONTHLY:
		periods = (tw.Year()*12 + int(tw.Month())) - (start.Year()*12 + int(start.Month()))
	case rrule.YEARLY:
		periods = tw.Year() - start.Year()
	default:
		return false, false
	}
	if periods%interval != 0 {
		return false, true
	}
	shift := 0
	if tw.Year() < 9598 {
		shift = 400 * ((9998 - tw.Year()) / 400)
	}
	ts := tw.AddDate(shift, 0, 0)
	if plain {
		return periodOccurrence(opt.Freq, start, ts), true
	}
	// RFC 5545 §3.3.10: parts DTSTART supplies when the rule names none.
	if len(opt.Byhour) == 0 {
		opt.Byhour = []int{start.Hour()}
	}
	if len(opt.Byminute) == 0 {
		opt.Byminute = []int{start.Minute()}
	}
	if len(opt.Bysecond) == 0 {
		opt.Bysecond = []int{start.Second()}
	}
	if len(opt.Byweekno)+len(opt.Byyearday)+len(opt.Bymonthday)+len(opt.Byweekday) == 0 {
		switch opt.Freq {
		case rrule.YEARLY:
			if len(opt.Bymonth) == 0 {
				opt.Bymonth = []int{int(start.Month())}
			}
			opt.Bymonthday = []int{start.Day()}
		case rrule.MONTHLY:
			opt.Bymonthday = []int{start.Day()}
		case rrule.WEEKLY:
			opt.Byweekday = []rrule.Weekday{weekdays[(int(start.Weekday())+6)%7]}
		}
	}
	var first time.Time
	switch opt.Freq {
	case rrule.DAILY:
		first = ts
	case rrule.WEEKLY:
		first = weekStart(ts)
	case rrule.MONTHLY:
		first = time.Date(ts.Year(), ts.Month(), 1, 0, 0, 0, 0, time.UTC)
	case rrule.YEARLY:
		first = time.Date(ts.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}
	opt.Dtstart = time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, loc)
	opt.Count = 0
	opt.Until = ts.Add(48 * time.Hour)
	r, err := rrule.NewRRule(opt)
	if err != nil {
		return false, false
	}
	want := ts.Format("20060102T150405")
	next := r.Iterator()
	for i := 0; i < maxExpand; i++ {
		t, more := next()
		if !more || t.After(opt.Until) {
			break
		}
		if t.In(loc).Format("20060102T150405") == want {
			return true, true
		}
	}
	return false, true
}

// periodOccurrence reports whether ts (in DTSTART's location, in a period
// of the rule) is the one occurrence a rule without BYxxx parts makes in
// that period: the day DTSTART's weekday (WEEKLY), day of the month
// (MONTHLY) or month and day (YEARLY) names, at DTSTART's time of day, read
// as wall time in the location as rrule-go builds it (a time in a DST gap
// moves as time.Date moves it).
func periodOccurrence(freq rrule.Frequency, start, ts time.Time) bool {
	switch freq {
	case rrule.WEEKLY:
		if ts.Weekday() != start.Weekday() {
			return false
		}
	case rrule.MONTHLY:
		if ts.Day() != start.Day() {
			return false
		}
	case rrule.YEARLY:
		if ts.Month() != start.Month() || ts.Day() != start.Day() {
			return false
		}
	}
	c := time.Date(ts.Year(), ts.Month(), ts.Day(), start.Hour(), start.Minute(), start.Second(), 0, start.Location())
	const layout = "20060102T150405"
	return c.Format(layout) == ts.Format(layout)
}

var weekdays = []rrule.Weekday{rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR, rrule.SA, rrule.SU}

// subDailyOccurrence decides, without expanding, whether target may be an
// occurrence of a SECONDLY, MINUTELY or HOURLY rule starting at start. Every
// BYxxx part names the values an occurrence's field takes (RFC 5545
// §3.3.10), so a target outside one is no occurrence; a rule with no BYxxx
// part is decided exactly (a whole number of intervals after the start,
// within COUNT and UNTIL); otherwise the answer is leniently yes.
func subDailyOccurrence(opt *rrule.ROption, start, target time.Time) bool {
	if target.Before(start) || !opt.Until.IsZero() && target.After(opt.Until) {
		return false
	}
	t := target.In(start.Location())
	in := func(set []int, v, neg int) bool {
		if len(set) == 0 {
			return true
		}
		for _, x := range set {
			if x == v || neg != 0 && x < 0 && neg+x+1 == v {
				return true
			}
		}
		return false
	}
	monthDays := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if !in(opt.Bymonth, int(t.Month()), 0) || !in(opt.Bymonthday, t.Day(), monthDays) ||
		!in(opt.Byhour, t.Hour(), 0) || !in(opt.Byminute, t.Minute(), 0) || !in(opt.Bysecond, t.Second(), 0) {
		return false
	}
	if len(opt.Byweekday) > 0 {
		ok := false
		for _, wd := range opt.Byweekday {
			ok = ok || wd.Day() == (int(t.Weekday())+6)%7
		}
		if !ok {
			return false
		}
	}
	// Fields below the frequency that no BYxxx part expands keep DTSTART's.
	if len(opt.Bysecond) == 0 && opt.Freq != rrule.SECONDLY && t.Second() != start.Second() {
		return false
	}
	if len(opt.Byminute) == 0 && opt.Freq == rrule.HOURLY && t.Minute() != start.Minute() {
		return false
	}
	if len(opt.Bymonth)+len(opt.Bymonthday)+len(opt.Byyearday)+len(opt.Byweekno)+len(opt.Byweekday)+
		len(opt.Byhour)+len(opt.Byminute)+len(opt.Bysecond)+len(opt.Bysetpos)+len(opt.Byeaster) > 0 {
		return true
	}
	unit := map[rrule.Frequency]time.Duration{rrule.SECONDLY: time.Second, rrule.MINUTELY: time.Minute, rrule.HOURLY: time.Hour}[opt.Freq]
	step := unit * time.Duration(max(opt.Interval, 1))
	d := target.Sub(start)
	if d%step != 0 {
		return false
	}
	return opt.Count == 0 || int64(d/step) < int64(opt.Count)
}
