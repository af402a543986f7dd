package ics

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // resolve IANA names the same way on every host

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// Zones resolves TZIDs for one calendar and caches the results. It is not
// safe for concurrent use.
type Zones struct {
	cal   *ical.Calendar
	cache map[string]zoneResult
	// years is the range of years for which VTIMEZONE transitions are
	// computed (see namedYears); set on first use.
	years *[2]int
	// budget counts the work of VTIMEZONE conversions (this calendar's
	// own, or shared with the other calendars of one message).
	budget *Budget
	own    Budget // budget when not shared
}

// Budget is the work VTIMEZONE conversions may do: at most tzBudgetYears
// rule-years and tzBudgetOnsets transitions. Each Zones from NewZones has
// its own; NewZonesShared lets the calendars of one message (every
// calendar part) share one, so that more parts do not buy more work.
type Budget struct {
	years, onsets int // spent
}

// NewBudget returns an unspent budget.
func NewBudget() *Budget { return &Budget{} }

type zoneResult struct {
	loc *time.Location
	err error
}

// maxCachedZones bounds the per-calendar cache (a calendar from Decode has
// at most MaxProperties*MaxComponents TZIDs, all of which could differ).
const maxCachedZones = 256

// NewZones returns a resolver for the TZIDs of cal (which may be nil: then
// only IANA, Windows and display names resolve).
func NewZones(cal *ical.Calendar) *Zones {
	return NewZonesShared(cal, nil)
}

// NewZonesShared is NewZones with the VTIMEZONE conversions counted against
// b (nil: a budget of its own).
func NewZonesShared(cal *ical.Calendar, b *Budget) *Zones {
	z := new(Zones)
	z.Init(cal, b)
	return z
}

// Init makes z, which is zero, what NewZonesShared(cal, b) returns: for a
// Zones that is part of a larger value (one allocation instead of two).
func (z *Zones) Init(cal *ical.Calendar, b *Budget) {
	z.cal, z.budget = cal, b
	if b == nil {
		z.budget = &z.own
	}
}

// Location resolves tzid, in this order: (1) an IANA name, after removing
// surrounding quotes and blanks and prefixes such as
// "/mozilla.org/20050126_1/"; (2) a Windows zone ID (CLDR windowsZones,
// territory 001; case-insensitive); (3) the calendar's VTIMEZONE with that
// TZID: its X-LIC-LOCATION if that is an IANA name, else a location built
// from its STANDARD/DAYLIGHT rules (see locationFromVTimezone: transitions
// for the years the calendar names, a yearly rule after them); (4) a
// Windows display name such as
// "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna".
// Otherwise the error wraps ErrUnknownTZ.
func (z *Zones) Location(tzid string) (*time.Location, error) {
	if r, ok := z.cache[tzid]; ok {
		return r.loc, r.err
	}
	loc, err := z.resolve(tzid)
	if len(z.cache) < maxCachedZones {
		if z.cache == nil {
			z.cache = make(map[string]zoneResult)
		}
		z.cache[tzid] = zoneResult{loc, err}
	}
	return loc, err
}

func (z *Zones) resolve(tzid string) (*time.Location, error) {
	name := cleanTZID(tzid)
	if name == "" {
		return nil, fmt.Errorf("%w: empty TZID", ErrUnknownTZ)
	}
	if loc := loadIANA(name); loc != nil {
		return loc, nil
	}
	if iana, ok := windowsZones[strings.ToLower(name)]; ok {
		if loc := loadIANA(iana); loc != nil {
			return loc, nil
		}
	}
	if vtz := z.vtimezone(tzid, name); vtz != nil {
		if loc := loadIANA(cleanTZID(propValue(vtz, "X-LIC-LOCATION"))); loc != nil {
			return loc, nil
		}
		loc, err := z.locationFromVTimezone(name, vtz)
		if err == nil {
			return loc, nil
		}
		return nil, fmt.Errorf("%w: %q: VTIMEZONE: %v", ErrUnknownTZ, name, err)
	}
	if id, ok := windowsDisplay[displayKey(name)]; ok {
		if loc := loadIANA(windowsZones[strings.ToLower(id)]); loc != nil {
			return loc, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownTZ, name)
}

// cleanTZID removes blanks and surrounding double quotes.
func cleanTZID(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

var ianaCache sync.Map // string -> *time.Location; only names that loaded

// loadIANA returns the IANA location for name, trying the name without
// leading path elements when it starts with '/' (as in
// "/freeassociation.sourceforge.net/Tzfile/Europe/London"), or nil.
func loadIANA(name string) *time.Location {
	if len(name) == 0 || len(name) > 200 {
		return nil
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isNameByte(c) || c == '/' || c == '+' || c == '.') {
			return nil
		}
	}
	if name[0] != '/' {
		return loadIANAName(name)
	}
	for rest := name; ; {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil
		}
		rest = rest[i+1:]
		if loc := loadIANAName(rest); loc != nil {
			return loc
		}
	}
}

func loadIANAName(name string) *time.Location {
	if name == "" || name == "Local" || name[0] == '/' || strings.Contains(name, "..") {
		return nil
	}
	if v, ok := ianaCache.Load(name); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	ianaCache.Store(name, loc)
	return loc
}

// vtimezone finds the calendar's VTIMEZONE whose TZID equals raw or
// (unescaped, unquoted) name.
func (z *Zones) vtimezone(raw, name string) *ical.Component {
	if z.cal == nil || z.cal.Component == nil {
		return nil
	}
	var loose *ical.Component
	for _, c := range z.cal.Children {
		if c == nil || c.Name != ical.CompTimezone {
			continue
		}
		p := c.Props.Get(ical.PropTimezoneID)
		if p == nil {
			continue
		}
		if p.Value == raw {
			return c
		}
		if loose == nil && cleanTZID(UnescapeText(p.Value)) == name {
			loose = c
		}
	}
	return loose
}

var (
	windowsZones   = map[string]string{} // lower-case Windows ID -> IANA
	windowsDisplay = map[string]string{} // displayKey -> Windows ID
)

func init() {
	add := func(data string, legacy bool) {
		for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
			f := strings.Split(line, "|")
			id := strings.ToLower(f[0])
			if _, ok := windowsZones[id]; !ok {
				windowsZones[id] = f[1]
			}
			if k := displayKey(f[2]); k != "" {
				if _, ok := windowsDisplay[k]; !ok || !legacy {
					windowsDisplay[k] = f[0]
				}
			}
		}
	}
	add(windowsZonesData, false)
	add(windowsZonesLegacy, true)
	for _, line := range strings.Split(strings.TrimSpace(windowsDisplayLegacy), "\n") {
		f := strings.Split(line, "|")
		if k := displayKey(f[0]); k != "" {
			if _, ok := windowsDisplay[k]; !ok {
				windowsDisplay[k] = f[1]
			}
		}
	}
}

// displayKey normalises a Windows display name: the "(UTC+01:00) " or
// "(GMT+01:00) " prefix is removed, letters are lower-cased, and runs of
// blanks collapse.
func displayKey(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "(UTC") || strings.HasPrefix(s, "(GMT") {
		if i := strings.IndexByte(s, ')'); i > 0 {
			s = s[i+1:]
		}
	}
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// Limits of the VTIMEZONE conversion. Transitions are computed only for
// the years a calendar names (namedYears), and all conversions for one
// calendar share one budget, so neither a long history (rules from 1601)
// nor many zones costs more than the budget (SECURITY.md "Limits").
const (
	tzDefaultFrom  = 1970 // years when the calendar names no zoned time
	tzDefaultTo    = 2100
	tzMaxSpan      = 150  // years between the first and last computed year
	tzBudgetYears  = 4000 // rule-years evaluated per calendar, all zones together
	tzBudgetOnsets = 5000 // transitions per calendar, all zones together

	tzMaxOnsetsPerSub = 600  // per STANDARD/DAYLIGHT
	tzMaxOnsets       = 4000 // per VTIMEZONE
	tzMaxSubs         = 50
)

// errTZBudget is returned when converting a VTIMEZONE would exceed the
// budget of its calendar.
var errTZBudget = fmt.Errorf("transition budget exceeded")

type onset struct {
	at       int64 // Unix seconds
	from, to int   // UTC offsets in seconds
	dst      bool
	abbr     string
}

// yearlyRule is a STANDARD/DAYLIGHT rule that holds for ever and has the
// shape of a POSIX TZ rule: the n-th (or last) weekday of one month at one
// time of day.
type yearlyRule struct {
	month, week, wday int // POSIX Mm.w.d: week 5 is the last, wday 0 is Sunday
	secs              int // local time of day of the onset, in TZOFFSETFROM
	from, to          int
	dst               bool
	abbr              string
}

// namedYears returns the years for which VTIMEZONE transitions are
// computed: from the year before the earliest to the year after the latest
// time with a TZID in the calendar (DTSTART, DTEND, RECURRENCE-ID, EXDATE,
// RDATE, ... and the UNTIL of their rules), at most tzMaxSpan years ending
// at the latest; tzDefaultFrom..tzDefaultTo when the calendar names none.
// Later times use the zone's yearly rule (see posixRule), earlier ones the
// offset of the first onset.
func (z *Zones) namedYears() (lo, hi int) {
	if z.years != nil {
		return z.years[0], z.years[1]
	}
	lo, hi = 1<<30, -1
	note := func(v string) {
		if len(v) < 8 {
			return
		}
		y := 0
		for i := 0; i < 4; i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return
			}
			y = y*10 + int(c-'0')
		}
		lo, hi = min(lo, y), max(hi, y)
	}
	var walk func(c *ical.Component)
	walk = func(c *ical.Component) {
		if c == nil || c.Name == ical.CompTimezone {
			return
		}
		zoned := false
		for _, ps := range c.Props {
			for _, p := range ps {
				if p.Params.Get(ical.ParamTimezoneID) == "" {
					continue
				}
				zoned = true
				for _, v := range strings.Split(p.Value, ",") {
					note(strings.TrimSpace(v))
				}
			}
		}
		if zoned {
			for _, rr := range c.Props.Values(ical.PropRecurrenceRule) {
				for _, part := range strings.Split(rr.Value, ";") {
					if k, v, ok := strings.Cut(part, "="); ok && strings.EqualFold(strings.TrimSpace(k), "UNTIL") {
						note(strings.TrimSpace(v))
					}
				}
			}
		}
		for _, ch := range c.Children {
			walk(ch)
		}
	}
	if z.cal != nil {
		walk(z.cal.Component)
	}
	if hi < 0 {
		lo, hi = tzDefaultFrom, tzDefaultTo
	} else {
		lo, hi = lo-1, hi+1
	}
	lo = max(lo, hi-tzMaxSpan)
	z.years = &[2]int{lo, hi}
	return lo, hi
}

// locationFromVTimezone builds a location from the STANDARD and DAYLIGHT
// sub-components of vtz (RFC 5545 3.6.5): every onset (DTSTART, RRULE
// occurrences, RDATEs; local times in TZOFFSETFROM) in the calendar's named
// years becomes a transition to TZOFFSETTO, written as TZif data for
// time.LoadLocationFromTZData. When the rules in force at the end are one
// STANDARD and one DAYLIGHT rule of the POSIX shape, they become the TZif
// footer, so later times follow them; otherwise the last offset holds.
func (z *Zones) locationFromVTimezone(name string, vtz *ical.Component) (loc *time.Location, err error) {
	defer func() {
		if r := recover(); r != nil { // rrule-go's parser on hostile input
			loc, err = nil, fmt.Errorf("bad rules: %v", r)
		}
	}()
	lo, hi := z.namedYears()
	var onsets []onset
	var rules []yearlyRule
	nsub := 0
	for _, sub := range vtz.Children {
		if sub == nil || (sub.Name != ical.CompTimezoneStandard && sub.Name != ical.CompTimezoneDaylight) {
			continue
		}
		nsub++
		if nsub > tzMaxSubs {
			return nil, fmt.Errorf("too many STANDARD/DAYLIGHT components")
		}
		os, rule, err := z.subOnsets(sub, lo, hi)
		if err != nil {
			return nil, err
		}
		if rule != nil {
			rules = append(rules, *rule)
		}
		onsets = append(onsets, os...)
		if len(onsets) > tzMaxOnsets {
			return nil, fmt.Errorf("too many transitions")
		}
	}
	if z.budget.onsets+len(onsets) > tzBudgetOnsets {
		return nil, errTZBudget
	}
	z.budget.onsets += len(onsets)
	if len(onsets) == 0 {
		return nil, fmt.Errorf("no usable STANDARD/DAYLIGHT component")
	}
	sort.SliceStable(onsets, func(i, j int) bool { return onsets[i].at < onsets[j].at })
	// Keep the last of onsets at the same instant.
	uniq := onsets[:0]
	for _, o := range onsets {
		if len(uniq) > 0 && uniq[len(uniq)-1].at == o.at {
			uniq[len(uniq)-1] = o
			continue
		}
		uniq = append(uniq, o)
	}
	return time.LoadLocationFromTZData(name, tzif(uniq, posixRule(rules)))
}

// subOnsets returns the onsets of one STANDARD or DAYLIGHT component in the
// years lo..hi (and its DTSTART, whenever it is), and its rule when that
// holds for ever in the POSIX shape. Yearly rules are evaluated from the
// year before lo, not from their DTSTART (often 1601): the DTSTART moves by
// whole INTERVALs, which keeps the occurrences. Each rule-year evaluated
// counts against the calendar's budget.
func (z *Zones) subOnsets(sub *ical.Component, lo, hi int) ([]onset, *yearlyRule, error) {
	from, err := parseUTCOffset(propValue(sub, ical.PropTimezoneOffsetFrom))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: TZOFFSETFROM: %w", sub.Name, err)
	}
	to, err := parseUTCOffset(propValue(sub, ical.PropTimezoneOffsetTo))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: TZOFFSETTO: %w", sub.Name, err)
	}
	dts := sub.Props.Get(ical.PropDateTimeStart)
	if dts == nil {
		return nil, nil, fmt.Errorf("%s: no DTSTART", sub.Name)
	}
	start, err := parseWall(dts.Value)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: DTSTART: %w", sub.Name, err)
	}
	o := onset{from: from, to: to, dst: sub.Name == ical.CompTimezoneDaylight,
		abbr: tzAbbr(propValue(sub, ical.PropTimezoneName), to)}
	var out []onset
	addWall := func(w time.Time) bool {
		if w.Year() > hi || len(out) >= tzMaxOnsetsPerSub {
			return false
		}
		o.at = w.Unix() - int64(from)
		out = append(out, o)
		return true
	}
	addWall(start)
	var rule *yearlyRule
	if rr := sub.Props.Get(ical.PropRecurrenceRule); rr != nil {
		opt, err := rrule.StrToROption(strings.TrimSpace(rr.Value))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: RRULE: %v", sub.Name, err)
		}
		// Time zone rules are yearly; other frequencies could run for a
		// very long time and are not worth supporting.
		if opt.Freq != rrule.YEARLY {
			return nil, nil, fmt.Errorf("%s: RRULE: unsupported frequency %v", sub.Name, opt.Freq)
		}
		// One onset per matching day at most: several BYHOUR, BYMINUTE or
		// BYSECOND values would make rrule-go build huge per-year sets.
		if len(opt.Byhour) > 1 || len(opt.Byminute) > 1 || len(opt.Bysecond) > 1 {
			return nil, nil, fmt.Errorf("%s: RRULE: several times of day", sub.Name)
		}
		if len(opt.Byyearday) != 0 || len(opt.Byweekno) != 0 || len(opt.Bysetpos) != 0 || len(opt.Byeaster) != 0 {
			return nil, nil, fmt.Errorf("%s: RRULE: unsupported BYYEARDAY, BYWEEKNO, BYSETPOS or BYEASTER", sub.Name)
		}
		if opt.Interval < 1 {
			opt.Interval = 1
		}
		if opt.Until.IsZero() && opt.Count == 0 {
			rule = posixShape(opt, start, o)
		}
		until := time.Date(hi, 12, 31, 23, 59, 59, 0, time.UTC)
		if !opt.Until.IsZero() {
			// UNTIL is a UTC instant; the rule runs on local wall times.
			u := time.Date(opt.Until.Year(), opt.Until.Month(), opt.Until.Day(),
				opt.Until.Hour(), opt.Until.Minute(), opt.Until.Second(), 0, time.UTC).Add(time.Duration(from) * time.Second)
			if u.Before(until) {
				until = u
			}
		}
		// Evaluate from the year before lo, not from DTSTART (often 1601),
		// in whole INTERVALs from DTSTART's year; a COUNT needs every
		// occurrence from DTSTART on.
		y := start.Year()
		if k := (lo - 1 - y) / opt.Interval; k > 0 && opt.Count == 0 {
			y += k * opt.Interval
		}
		if years := (until.Year()-y)/opt.Interval + 1; years > 0 {
			if z.budget.years+years > tzBudgetYears {
				return nil, nil, errTZBudget
			}
			z.budget.years += years
		}
		count := 0
		done := false
		for ; y <= until.Year() && !done; y += opt.Interval {
			yearRule(opt, start, y, func(w time.Time) bool {
				if w.Before(start) {
					return true
				}
				if w.After(until) {
					done = true
					return false
				}
				if count++; opt.Count > 0 && count > opt.Count {
					done = true
					return false
				}
				if w.Equal(start) { // already added
					return true
				}
				if !addWall(w) {
					done = true
					return false
				}
				return true
			})
		}
	}
	for _, rd := range sub.Props.Values(ical.PropRecurrenceDates) {
		for _, v := range strings.Split(rd.Value, ",") {
			if i := strings.IndexByte(v, '/'); i >= 0 { // PERIOD
				v = v[:i]
			}
			w, err := parseWall(v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: RDATE: %w", sub.Name, err)
			}
			if !addWall(w) {
				break
			}
		}
	}
	return out, rule, nil
}

// yearRule calls emit, in order, with the wall times of the occurrences of
// a yearly rule (RFC 5545 3.3.10: BYMONTH, BYMONTHDAY, BYDAY with or
// without ordinals, one BYHOUR, BYMINUTE, BYSECOND) in year y, until emit
// returns false. DTSTART gives the month, day and time that the rule does
// not name. BYDAY ordinals count within the month when BYMONTH is given,
// else within the year. The work is one pass over the days of the months
// that can match.
func yearRule(opt *rrule.ROption, start time.Time, y int, emit func(time.Time) bool) {
	months := opt.Bymonth
	switch {
	case len(months) != 0:
	case len(opt.Bymonthday) != 0 || len(opt.Byweekday) != 0:
		months = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	default:
		months = []int{int(start.Month())}
	}
	hh, mm, ss := start.Clock()
	if len(opt.Byhour) == 1 {
		hh = opt.Byhour[0]
	}
	if len(opt.Byminute) == 1 {
		mm = opt.Byminute[0]
	}
	if len(opt.Bysecond) == 1 {
		ss = opt.Bysecond[0]
	}
	inYear := len(opt.Bymonth) == 0
	yearDays := time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC).YearDay()
	ms := append([]int(nil), months...)
	sort.Ints(ms)
	for i, m := range ms {
		if m < 1 || m > 12 || i > 0 && ms[i-1] == m {
			continue
		}
		first := time.Date(y, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
		mdays := first.AddDate(0, 1, -1).Day()
		for d := 1; d <= mdays; d++ {
			if len(opt.Bymonthday) != 0 {
				if !slices.Contains(opt.Bymonthday, d) && !slices.Contains(opt.Bymonthday, d-mdays-1) {
					continue
				}
			} else if len(opt.Byweekday) == 0 && d != start.Day() {
				continue
			}
			if len(opt.Byweekday) != 0 {
				day := first.AddDate(0, 0, d-1)
				wd := (int(day.Weekday()) + 6) % 7 // rrule-go: 0 is Monday
				// The ordinal of this weekday from the start and the end
				// of its month or year.
				pos, last, n := d, mdays, 0
				if inYear {
					pos, last = day.YearDay(), yearDays
				}
				fwd, back := (pos-1)/7+1, -((last-pos)/7 + 1)
				ok := false
				for _, w := range opt.Byweekday {
					if n = w.N(); w.Day() == wd && (n == 0 || n == fwd || n == back) {
						ok = true
						break
					}
				}
				if !ok {
					continue
				}
			}
			if !emit(time.Date(y, time.Month(m), d, hh, mm, ss, 0, time.UTC)) {
				return
			}
		}
	}
}

// posixShape returns the rule of opt as a yearlyRule when it is the n-th or
// last weekday of one month (RRULE:FREQ=YEARLY;BYMONTH=m;BYDAY=nDD, or the
// older form BYDAY=DD;BYMONTHDAY=8,9,10,11,12,13,14 for the second), else
// nil.
func posixShape(opt *rrule.ROption, start time.Time, o onset) *yearlyRule {
	if opt.Interval != 1 || len(opt.Bymonth) != 1 || len(opt.Byweekday) != 1 ||
		len(opt.Byyearday) != 0 || len(opt.Byweekno) != 0 ||
		len(opt.Bysetpos) != 0 || len(opt.Byeaster) != 0 ||
		len(opt.Byhour) != 0 || len(opt.Byminute) != 0 || len(opt.Bysecond) != 0 {
		return nil
	}
	wd := opt.Byweekday[0]
	n := wd.N()
	if len(opt.Bymonthday) != 0 {
		n = weekOfDays(opt.Bymonthday)
		if wd.N() != 0 {
			return nil
		}
	}
	switch {
	case n >= 1 && n <= 4:
	case n == -1:
		n = 5
	default:
		return nil
	}
	return &yearlyRule{
		month: opt.Bymonth[0], week: n, wday: (wd.Day() + 1) % 7, // rrule-go: 0 is Monday
		secs: start.Hour()*3600 + start.Minute()*60 + start.Second(),
		from: o.from, to: o.to, dst: o.dst, abbr: o.abbr,
	}
}

// weekOfDays returns n when days are the seven days of the n-th week of a
// month (1..7 is 1, 22..28 is 4, -7..-1 is -1), else 0.
func weekOfDays(days []int) int {
	if len(days) != 7 {
		return 0
	}
	ds := slices.Sorted(slices.Values(days))
	for i := 1; i < 7; i++ {
		if ds[i] != ds[0]+i {
			return 0
		}
	}
	switch {
	case ds[0] == -7:
		return -1
	case ds[0] >= 1 && ds[0] <= 22 && (ds[0]-1)%7 == 0:
		return (ds[0]-1)/7 + 1
	}
	return 0
}

// posixRule returns the TZ string (POSIX, as in a TZif footer, RFC 8536
// section 3.3) for rules when they are exactly one standard and one
// daylight rule that agree on the two offsets, else "".
func posixRule(rules []yearlyRule) string {
	if len(rules) != 2 || rules[0].dst == rules[1].dst {
		return ""
	}
	std, dst := rules[0], rules[1]
	if std.dst {
		std, dst = dst, std
	}
	if std.month < 1 || std.month > 12 || dst.month < 1 || dst.month > 12 ||
		std.to != dst.from || dst.to != std.from || std.to == dst.to {
		return ""
	}
	off := func(secs int) string { // POSIX offsets are west of Greenwich
		sign := "-"
		if secs <= 0 {
			sign, secs = "", -secs
		}
		return fmt.Sprintf("%s%d:%02d:%02d", sign, secs/3600, secs/60%60, secs%60)
	}
	at := func(r yearlyRule) string {
		return fmt.Sprintf("M%d.%d.%d/%d:%02d:%02d", r.month, r.week, r.wday, r.secs/3600, r.secs/60%60, r.secs%60)
	}
	return fmt.Sprintf("<%s>%s<%s>%s,%s,%s", std.abbr, off(std.to), dst.abbr, off(dst.to), at(dst), at(std))
}

// parseWall parses a DATE-TIME (or DATE) as a wall clock time in UTC; a
// trailing Z is ignored (VTIMEZONE onsets are local times).
func parseWall(v string) (time.Time, error) {
	dt, err := parseDateTime(strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, err
	}
	return dt.wall(), nil
}

// parseUTCOffset parses RFC 5545 3.3.14 ("+0100", "-053000").
func parseUTCOffset(s string) (int, error) {
	s = strings.TrimSpace(s)
	if len(s) != 5 && len(s) != 7 || s[0] != '+' && s[0] != '-' {
		return 0, fmt.Errorf("%w: bad UTC offset %q", ErrSyntax, s)
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || strings.ContainsAny(s[1:], "+-") {
		return 0, fmt.Errorf("%w: bad UTC offset %q", ErrSyntax, s)
	}
	h, m, sec := n/100, n%100, 0
	if len(s) == 7 {
		h, m, sec = n/10000, n/100%100, n%100
	}
	if h > 23 || m > 59 || sec > 59 {
		return 0, fmt.Errorf("%w: bad UTC offset %q", ErrSyntax, s)
	}
	off := h*3600 + m*60 + sec
	if s[0] == '-' {
		off = -off
	}
	return off, nil
}

// tzAbbr returns name if it is a usable abbreviation, else "+hhmm".
func tzAbbr(name string, off int) string {
	ok := len(name) >= 3 && len(name) <= 10
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-'
	}
	if ok {
		return name
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	s := fmt.Sprintf("%c%02d%02d", sign, off/3600, off/60%60)
	if off%60 != 0 {
		s += fmt.Sprintf("%02d", off%60)
	}
	return s
}

// tzif encodes onsets (sorted, distinct instants) as TZif version 2 data
// (RFC 8536) with footer as its TZ string ("" for none: the last offset
// holds after the last onset). Local time type 0 is the offset before the
// first onset and is used by no transition, so that Go applies it to
// earlier times.
func tzif(onsets []onset, footer string) []byte {
	type ttype struct {
		off  int
		dst  bool
		abbr string
	}
	first := onsets[0]
	types := []ttype{{first.from, false, tzAbbr("", first.from)}}
	index := map[ttype]int{}
	var chars []byte
	abbrIdx := map[string]int{}
	abbrAt := func(a string) int {
		if i, ok := abbrIdx[a]; ok {
			return i
		}
		if len(chars)+len(a)+1 > 255 { // desigidx is one octet
			return 0
		}
		abbrIdx[a] = len(chars)
		chars = append(chars, a...)
		chars = append(chars, 0)
		return abbrIdx[a]
	}
	abbrAt(types[0].abbr)
	txIdx := make([]byte, 0, len(onsets))
	for _, o := range onsets {
		t := ttype{o.to, o.dst, o.abbr}
		i, ok := index[t]
		if !ok {
			if len(types) >= 255 {
				i = len(types) - 1 // cannot happen with the limits above
			} else {
				i = len(types)
				types = append(types, t)
				index[t] = i
				abbrAt(t.abbr)
			}
		}
		txIdx = append(txIdx, byte(i))
	}

	var b []byte
	be32 := func(v uint32) { b = binary.BigEndian.AppendUint32(b, v) }
	header := func(timecnt, typecnt, charcnt int) {
		b = append(b, "TZif2"...)
		b = append(b, make([]byte, 15)...)
		be32(0) // isutcnt
		be32(0) // isstdcnt
		be32(0) // leapcnt
		be32(uint32(timecnt))
		be32(uint32(typecnt))
		be32(uint32(charcnt))
	}
	// Version 1 block: no transitions, one type (readers of version 2+
	// skip it).
	header(0, 1, 1)
	be32(uint32(int32(types[0].off)))
	b = append(b, 0, 0, 0)
	// Version 2 block.
	header(len(onsets), len(types), len(chars))
	for _, o := range onsets {
		b = binary.BigEndian.AppendUint64(b, uint64(o.at))
	}
	b = append(b, txIdx...)
	for _, t := range types {
		be32(uint32(int32(t.off)))
		dst := byte(0)
		if t.dst {
			dst = 1
		}
		b = append(b, dst, byte(abbrAt(t.abbr)))
	}
	b = append(b, chars...)
	b = append(b, '\n')
	b = append(b, footer...)
	b = append(b, '\n')
	return b
}

// propValue returns the value of the first property name of c, or "".
func propValue(c *ical.Component, name string) string {
	if p := c.Props.Get(name); p != nil {
		return p.Value
	}
	return ""
}

// ZoneRuleNever reports whether an observance's RRULE is one no time zone
// has (RFC 5545 §3.6.5, §3.3.10): not FREQ=YEARLY (imipd's zone reader
// supports no other), values out of range (BYMONTH=13), or no onset in the
// eight years from its DTSTART (February 30, a sixth Sunday, BYWEEKNO=54,
// an UNTIL before DTSTART, COUNT=0). Such a zone has no transition at all: imipd's
// zone reader counts only the DTSTART, and python-icalendar (caldav, khal)
// fails on it with an IndexError, so one stored invitation broke a whole
// collection listing. The walk is bounded by the eight years. Intake
// refuses such a zone (itip's validate); Escaped leaves such an
// observance out of what CalDAV serves (data stored before that rule).
func ZoneRuleNever(dtstart, rule string) bool {
	start, err := time.Parse("20060102T150405", strings.TrimSuffix(strings.TrimSpace(dtstart), "Z"))
	if err != nil {
		return false // DTSTART's own check (bad-date) or the zone reader's
	}
	opt, err := rrule.StrToROption(strings.TrimSpace(rule))
	if err != nil {
		return false // not ours to judge: the zone reader refuses it
	}
	if opt.Freq != rrule.YEARLY {
		return true
	}
	for _, part := range strings.Split(strings.ToUpper(rule), ";") {
		if k, v, _ := strings.Cut(part, "="); strings.TrimSpace(k) == "COUNT" && strings.Trim(strings.TrimSpace(v), "0") == "" {
			return true // COUNT=0: no onset (rrule-go reads it as no COUNT)
		}
	}
	opt.Dtstart = start
	if end := start.AddDate(8, 0, 0); opt.Until.IsZero() || opt.Until.After(end) {
		opt.Until = end
	}
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return true
	}
	_, ok := r.Iterator()()
	return !ok
}
