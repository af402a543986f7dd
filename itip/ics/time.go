package ics

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// Time is the value of a DATE or DATE-TIME property.
//
//   - UTC ("...Z"): T in UTC.
//   - With TZID: T in the resolved location.
//   - Floating (no TZID, no Z): the wall time read in UTC, Floating=true.
//   - DATE: midnight UTC of that date, AllDay=true.
type Time struct {
	T        time.Time
	AllDay   bool
	Floating bool
}

// dateTime is a parsed DATE or DATE-TIME value.
type dateTime struct {
	y, mo, d, h, mi, s int
	hasTime, utc       bool
}

func (dt dateTime) wall() time.Time {
	return time.Date(dt.y, time.Month(dt.mo), dt.d, dt.h, dt.mi, dt.s, 0, time.UTC)
}

// parseDateTime parses "YYYYMMDD", "YYYYMMDDTHHMMSS" or
// "YYYYMMDDTHHMMSSZ" (RFC 5545 3.3.4, 3.3.5); 't' and 'z' are accepted.
func parseDateTime(v string) (dateTime, error) {
	bad := func() (dateTime, error) { return dateTime{}, fmt.Errorf("%w: bad date or date-time %q", ErrSyntax, v) }
	var dt dateTime
	switch len(v) {
	case 8:
	case 15:
		dt.hasTime = true
	case 16:
		if v[15] != 'Z' && v[15] != 'z' {
			return bad()
		}
		dt.hasTime, dt.utc = true, true
	default:
		return bad()
	}
	num := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			n = n*10 + int(s[i]-'0')
		}
		return n, true
	}
	var ok1, ok2, ok3 bool
	dt.y, ok1 = num(v[0:4])
	dt.mo, ok2 = num(v[4:6])
	dt.d, ok3 = num(v[6:8])
	if !ok1 || !ok2 || !ok3 || dt.mo < 1 || dt.mo > 12 || dt.d < 1 ||
		dt.d > time.Date(dt.y, time.Month(dt.mo)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return bad()
	}
	if dt.hasTime {
		if v[8] != 'T' && v[8] != 't' {
			return bad()
		}
		dt.h, ok1 = num(v[9:11])
		dt.mi, ok2 = num(v[11:13])
		dt.s, ok3 = num(v[13:15])
		if !ok1 || !ok2 || !ok3 || dt.h > 23 || dt.mi > 59 || dt.s > 60 {
			return bad()
		}
	}
	return dt, nil
}

// PropTime returns the time of a DATE or DATE-TIME property (DTSTART,
// DTEND, RECURRENCE-ID, DTSTAMP, ...). A PERIOD value yields its start. A
// TZID on a DATE or UTC value is ignored. Errors wrap ErrSyntax or
// ErrUnknownTZ.
func (z *Zones) PropTime(p *ical.Prop) (Time, error) {
	if p == nil {
		return Time{}, errors.New("ics: missing date property")
	}
	v := strings.TrimSpace(p.Value)
	if strings.ContainsRune(v, ',') {
		return Time{}, fmt.Errorf("%w: %s: several values where one is expected", ErrSyntax, p.Name)
	}
	return z.value(p, v)
}

// PropTimes returns the values of a multi-valued DATE / DATE-TIME / PERIOD
// property such as EXDATE or RDATE ("a,b,c"). Empty items are skipped; a
// PERIOD yields its start.
func (z *Zones) PropTimes(p *ical.Prop) ([]Time, error) {
	if p == nil {
		return nil, nil
	}
	var out []Time
	for _, v := range strings.Split(p.Value, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		t, err := z.value(p, v)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// compTimes returns the values of every property name of c (e.g. all
// EXDATE properties), in order.
func (z *Zones) compTimes(c *ical.Component, name string) ([]Time, error) {
	if c == nil {
		return nil, nil
	}
	var out []Time
	for i := range c.Props[strings.ToUpper(name)] {
		ts, err := z.PropTimes(&c.Props[strings.ToUpper(name)][i])
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func (z *Zones) value(p *ical.Prop, v string) (Time, error) {
	if i := strings.IndexByte(v, '/'); i >= 0 { // PERIOD: start/end or start/duration
		v = v[:i]
	}
	dt, err := parseDateTime(v)
	if err != nil {
		return Time{}, fmt.Errorf("%s: %w", p.Name, err)
	}
	if dt.hasTime && strings.EqualFold(paramValue(p, ical.ParamValue), "DATE") {
		return Time{}, fmt.Errorf("%w: %s: VALUE=DATE with a date-time %q", ErrSyntax, p.Name, v)
	}
	switch {
	case !dt.hasTime:
		return Time{T: dt.wall(), AllDay: true}, nil
	case dt.utc:
		return Time{T: dt.wall()}, nil
	}
	tzid := paramValue(p, ical.PropTimezoneID)
	if tzid == "" {
		return Time{T: dt.wall(), Floating: true}, nil
	}
	if z == nil {
		z = NewZones(nil)
	}
	loc, err := z.Location(tzid)
	if err != nil {
		return Time{}, err
	}
	return Time{T: inLocation(dt.wall(), loc)}, nil
}

// inLocation interprets the wall clock of w (a UTC time) in loc following
// RFC 5545 3.3.5: a time in a gap uses the offset before the gap, an
// ambiguous time is the first occurrence.
func inLocation(w time.Time, loc *time.Location) time.Time {
	u := w.Unix()
	offAt := func(instant int64) int64 {
		_, off := time.Unix(instant, 0).In(loc).Zone()
		return int64(off)
	}
	// Offsets in effect shortly before and after; real zones never change
	// twice within this window.
	const window = 30 * 3600
	oA, oB := offAt(u-window), offAt(u+window)
	iA, iB := u-oA, u-oB
	okA, okB := offAt(iA) == oA, offAt(iB) == oB
	var i int64
	switch {
	case okA && okB:
		i = min(iA, iB)
	case okA:
		i = iA
	case okB:
		i = iB
	default: // in a gap
		i = iA
	}
	return time.Unix(i, int64(w.Nanosecond())).In(loc)
}

// Duration is an RFC 5545 3.3.6 duration. Days are nominal (a day in local
// time, 23 or 25 hours across a DST change; weeks are folded in as 7 days);
// Exact is the hours/minutes/seconds part.
type Duration struct {
	days     int
	exact    time.Duration
	negative bool
}

// maxDurationPart bounds each number so that nothing overflows.
const maxDurationPart = 999999999

// ParseDuration parses an RFC 5545 duration such as "P1D", "PT1H30M",
// "-P1W", "P1DT2H", "+PT15M". It accepts weeks together with days
// ("P1W2D") and any of H, M, S in this order after T. Errors wrap ErrSyntax.
func ParseDuration(s string) (Duration, error) {
	orig := s
	bad := func() (Duration, error) { return Duration{}, fmt.Errorf("%w: bad duration %q", ErrSyntax, orig) }
	s = strings.ToUpper(strings.TrimSpace(s))
	var d Duration
	if s != "" && (s[0] == '+' || s[0] == '-') {
		d.negative = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] != 'P' {
		return bad()
	}
	s = s[1:]
	// Designators in their allowed order; 'T' switches to the time part.
	order := "WDTHMS"
	pos := 0
	var weeks, days, secs int64
	seen, afterT, anyT := false, false, false
	for s != "" {
		if s[0] == 'T' {
			if afterT {
				return bad()
			}
			afterT = true
			pos = strings.IndexByte(order, 'T') + 1
			s = s[1:]
			continue
		}
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 || n > 9 || n == len(s) {
			return bad()
		}
		var v int64
		for _, c := range s[:n] {
			v = v*10 + int64(c-'0')
		}
		unit := s[n]
		s = s[n+1:]
		k := strings.IndexByte(order[pos:], unit)
		if k < 0 || unit == 'T' {
			return bad()
		}
		pos += k + 1
		timeUnit := unit == 'H' || unit == 'M' || unit == 'S'
		if timeUnit != afterT {
			return bad()
		}
		switch unit {
		case 'W':
			weeks = v
		case 'D':
			days = v
		case 'H':
			secs += v * 3600
		case 'M':
			secs += v * 60
		case 'S':
			secs += v
		}
		seen = true
		anyT = anyT || timeUnit
	}
	if !seen || afterT && !anyT {
		return bad()
	}
	total := weeks*7 + days
	if total > maxDurationPart || secs > math.MaxInt64/int64(time.Second) {
		return bad()
	}
	d.days = int(total)
	d.exact = time.Duration(secs) * time.Second
	return d, nil
}

// AddTo returns t plus d: the days are added to the calendar date in t's
// location (so a day across a DST change keeps the wall time), then the
// exact part. A negative duration subtracts both.
func (d Duration) AddTo(t time.Time) time.Time {
	if d.negative {
		return t.AddDate(0, 0, -d.days).Add(-d.exact)
	}
	return t.AddDate(0, 0, d.days).Add(d.exact)
}

// String returns d in RFC 5545 form, e.g. "-P1DT2H".
func (d Duration) String() string {
	var b strings.Builder
	if d.negative {
		b.WriteByte('-')
	}
	b.WriteByte('P')
	days := d.days
	if days > 0 && days%7 == 0 && d.exact == 0 {
		fmt.Fprintf(&b, "%dW", days/7)
		return b.String()
	}
	if days > 0 {
		fmt.Fprintf(&b, "%dD", days)
	}
	secs := int64(d.exact / time.Second)
	if secs > 0 || days == 0 {
		b.WriteByte('T')
		h, m, s := secs/3600, secs/60%60, secs%60
		if h > 0 {
			fmt.Fprintf(&b, "%dH", h)
		}
		if m > 0 {
			fmt.Fprintf(&b, "%dM", m)
		}
		if s > 0 || secs == 0 {
			fmt.Fprintf(&b, "%dS", s)
		}
	}
	return b.String()
}

// CheckTimes reports whether every value of a DATE, DATE-TIME or PERIOD
// property (DTSTART, DTEND, EXDATE, RDATE, ...) is a valid value: a real
// calendar date and a time of day within 00:00:00–23:59:60 (RFC 5545
// §3.3.4, §3.3.5; so month 13, day 32, 30 February and 24:60 are errors),
// VALUE=DATE without a time, and a PERIOD's end a date-time or a duration
// (§3.3.9). It checks the syntax only: a TZID is not resolved. Errors wrap
// ErrSyntax.
func CheckTimes(p *ical.Prop) error {
	if p == nil {
		return nil
	}
	isDate := strings.EqualFold(p.Params.Get(ical.ParamValue), "DATE")
	vs := strings.Split(p.Value, ",")
	for _, v := range vs {
		v = strings.TrimSpace(v)
		if v == "" && len(vs) > 1 {
			continue // an empty item of a list, as PropTimes skips it
		}
		start, end, period := strings.Cut(v, "/")
		dt, err := parseDateTime(start)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		if isDate && dt.hasTime {
			return fmt.Errorf("%w: %s: VALUE=DATE with a date-time %q", ErrSyntax, p.Name, start)
		}
		if !period {
			continue
		}
		if end != "" && (end[0] == 'P' || end[0] == 'p' || end[0] == '+' || end[0] == '-') {
			_, err = ParseDuration(end)
		} else {
			_, err = parseDateTime(end)
		}
		if err != nil {
			return fmt.Errorf("%s: period %q: %w", p.Name, v, err)
		}
	}
	return nil
}

// paramValue is p.Params.Get for an upper-case name (Decode stores
// parameter names so) without go-ical's strings.ToUpper on every call.
func paramValue(p *ical.Prop, name string) string {
	if vs := p.Params[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
