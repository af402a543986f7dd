package ics

import (
	"encoding/binary"
	"fmt"
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
}

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
	return &Zones{cal: cal, cache: make(map[string]zoneResult)}
}

// Location resolves tzid, in this order: (1) an IANA name, after removing
// surrounding quotes and blanks and prefixes such as
// "/mozilla.org/20050126_1/"; (2) a Windows zone ID (CLDR windowsZones,
// territory 001; case-insensitive); (3) the calendar's VTIMEZONE with that
// TZID: its X-LIC-LOCATION if that is an IANA name, else a location built
// from its STANDARD/DAYLIGHT rules (transitions up to the year 2100, the
// last offset after that); (4) a Windows display name such as
// "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna".
// Otherwise the error wraps ErrUnknownTZ.
func (z *Zones) Location(tzid string) (*time.Location, error) {
	if r, ok := z.cache[tzid]; ok {
		return r.loc, r.err
	}
	loc, err := z.resolve(tzid)
	if len(z.cache) < maxCachedZones {
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
		loc, err := locationFromVTimezone(name, vtz)
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
		if loose == nil && cleanTZID(unescapeText(p.Value)) == name {
			loose = c
		}
	}
	return loose
}

// unescapeText undoes RFC 5545 3.3.11 TEXT escapes.
func unescapeText(s string) string {
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

// Limits of the VTIMEZONE conversion.
const (
	tzLastYear        = 2100
	tzMaxOnsetsPerSub = 600  // per STANDARD/DAYLIGHT (1601..2100 yearly is 500)
	tzMaxOnsets       = 4000 // per VTIMEZONE
	tzMaxSubs         = 50
)

type onset struct {
	at       int64 // Unix seconds
	from, to int   // UTC offsets in seconds
	dst      bool
	abbr     string
}

// locationFromVTimezone builds a location from the STANDARD and DAYLIGHT
// sub-components of vtz (RFC 5545 3.6.5): every onset (DTSTART, RRULE
// occurrences, RDATEs; local times in TZOFFSETFROM) up to tzLastYear becomes
// a transition to TZOFFSETTO, written as TZif data for
// time.LoadLocationFromTZData.
func locationFromVTimezone(name string, vtz *ical.Component) (loc *time.Location, err error) {
	defer func() {
		if r := recover(); r != nil { // rrule-go on hostile input
			loc, err = nil, fmt.Errorf("bad rules: %v", r)
		}
	}()
	var onsets []onset
	nsub := 0
	for _, sub := range vtz.Children {
		if sub == nil || (sub.Name != ical.CompTimezoneStandard && sub.Name != ical.CompTimezoneDaylight) {
			continue
		}
		nsub++
		if nsub > tzMaxSubs {
			return nil, fmt.Errorf("too many STANDARD/DAYLIGHT components")
		}
		os, err := subOnsets(sub)
		if err != nil {
			return nil, err
		}
		onsets = append(onsets, os...)
		if len(onsets) > tzMaxOnsets {
			return nil, fmt.Errorf("too many transitions")
		}
	}
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
	return time.LoadLocationFromTZData(name, tzif(uniq))
}

func subOnsets(sub *ical.Component) ([]onset, error) {
	from, err := parseUTCOffset(propValue(sub, ical.PropTimezoneOffsetFrom))
	if err != nil {
		return nil, fmt.Errorf("%s: TZOFFSETFROM: %w", sub.Name, err)
	}
	to, err := parseUTCOffset(propValue(sub, ical.PropTimezoneOffsetTo))
	if err != nil {
		return nil, fmt.Errorf("%s: TZOFFSETTO: %w", sub.Name, err)
	}
	dts := sub.Props.Get(ical.PropDateTimeStart)
	if dts == nil {
		return nil, fmt.Errorf("%s: no DTSTART", sub.Name)
	}
	start, err := parseWall(dts.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: DTSTART: %w", sub.Name, err)
	}
	o := onset{from: from, to: to, dst: sub.Name == ical.CompTimezoneDaylight,
		abbr: tzAbbr(propValue(sub, ical.PropTimezoneName), to)}
	var out []onset
	addWall := func(w time.Time) bool {
		if w.Year() > tzLastYear || len(out) >= tzMaxOnsetsPerSub {
			return false
		}
		o.at = w.Unix() - int64(from)
		out = append(out, o)
		return true
	}
	addWall(start)
	if rr := sub.Props.Get(ical.PropRecurrenceRule); rr != nil {
		opt, err := rrule.StrToROption(strings.TrimSpace(rr.Value))
		if err != nil {
			return nil, fmt.Errorf("%s: RRULE: %v", sub.Name, err)
		}
		// Time zone rules are yearly; other frequencies could run for a
		// very long time and are not worth supporting.
		if opt.Freq != rrule.YEARLY {
			return nil, fmt.Errorf("%s: RRULE: unsupported frequency %v", sub.Name, opt.Freq)
		}
		// One onset per matching day at most: several BYHOUR, BYMINUTE or
		// BYSECOND values would make rrule-go build huge per-year sets.
		if len(opt.Byhour) > 1 || len(opt.Byminute) > 1 || len(opt.Bysecond) > 1 {
			return nil, fmt.Errorf("%s: RRULE: several times of day", sub.Name)
		}
		opt.Dtstart = start
		if !opt.Until.IsZero() {
			// UNTIL is a UTC instant; the rule runs on local wall times.
			opt.Until = time.Date(opt.Until.Year(), opt.Until.Month(), opt.Until.Day(),
				opt.Until.Hour(), opt.Until.Minute(), opt.Until.Second(), 0, time.UTC).Add(time.Duration(from) * time.Second)
		}
		// rrule-go caps a rule without UNTIL at DTSTART + 292 years (the
		// range of time.Duration), which cuts 1601-based Exchange rules
		// off in 1893: give every rule an explicit end.
		if end := time.Date(tzLastYear+1, 1, 1, 0, 0, 0, 0, time.UTC); opt.Until.IsZero() || opt.Until.After(end) {
			opt.Until = end
		}
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			return nil, fmt.Errorf("%s: RRULE: %v", sub.Name, err)
		}
		next := r.Iterator()
		for {
			w, ok := next()
			if !ok {
				break
			}
			if w.Equal(start) { // already added
				continue
			}
			if !addWall(w) {
				break
			}
		}
	}
	for _, rd := range sub.Props.Values(ical.PropRecurrenceDates) {
		for _, v := range strings.Split(rd.Value, ",") {
			if i := strings.IndexByte(v, '/'); i >= 0 { // PERIOD
				v = v[:i]
			}
			w, err := parseWall(v)
			if err != nil {
				return nil, fmt.Errorf("%s: RDATE: %w", sub.Name, err)
			}
			if !addWall(w) {
				break
			}
		}
	}
	return out, nil
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
// (RFC 8536). Local time type 0 is the offset before the first onset and is
// used by no transition, so that Go applies it to earlier times.
func tzif(onsets []onset) []byte {
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
	b = append(b, '\n', '\n') // no footer TZ string: the last offset holds after tzLastYear
	return b
}

// propValue returns the value of the first property name of c, or "".
func propValue(c *ical.Component, name string) string {
	if p := c.Props.Get(name); p != nil {
		return p.Value
	}
	return ""
}
