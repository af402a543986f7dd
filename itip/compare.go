package itip

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip/ics"
)

// The meaning of an event's properties, compared across two writers
// (RFC 5545 §3.1, §3.3, §3.8): calendar apps and mail clients rewrite what
// they store (parameter order, folding, value case, a time in UTC or in a
// zone, EXDATE lists split or merged, VTIMEZONEs regenerated, RRULE parts
// re-ordered) without changing what the event says. Each property compares
// by its value type:
//
//   - DATE and DATE-TIME values (DTSTART, RECURRENCE-ID, EXDATE, RDATE,
//     DUE, ...) as instants with their kind: the same instant in UTC or in
//     any zone (whatever VTIMEZONE defines it, resolved by package ics) is
//     equal; a DATE, a floating time and an instant are never equal to each
//     other. EXDATE and RDATE are sets across all their lines. In a
//     recurring component DTSTART's zone must also agree on the UTC offset
//     over the series' first years, or the later occurrences would move.
//   - DTEND and DURATION as the effective end (DTSTART+DURATION = DTEND;
//     neither is DTSTART's end of RFC 5545 §3.6.1).
//   - RRULE (and EXRULE) as a rule (RFC 5545 §3.3.10): parts a set,
//     case-insensitive, BYxxx lists as sets, INTERVAL=1 and WKST=MO equal
//     to their absence (WKST also where it cannot matter), UNTIL an
//     instant.
//   - TEXT values unescaped (RFC 5545 §3.3.11), line ends and surrounding
//     white space aside, an empty one as absent; CATEGORIES and RESOURCES
//     as sets of their items.
//   - enumerated values (STATUS, CLASS, TRANSP, ACTION) case-insensitive;
//     PRIORITY:0 (undefined, §3.8.1.9) equal to its absence; GEO as numbers;
//     ORGANIZER by its address.
//   - parameters as a set: names case-insensitive, enumerated values
//     case-insensitive, multi-values as sets; TZID and VALUE are part of the
//     time value, not compared on their own; X- parameters and
//     SCHEDULE-STATUS (RFC 6638 §3.2.2.1, item 10) are not compared.

// changedProps returns the names of the properties that differ in meaning
// between a and b (sorted), skipping the names skip reports true for.
// ATTENDEE is never compared here: who may change which attendee is the
// caller's rule.
func changedProps(a, b *ical.Component, za, zb *ics.Zones, skip func(string) bool) []string {
	names := map[string]bool{}
	for n := range a.Props {
		names[strings.ToUpper(n)] = true
	}
	for n := range b.Props {
		names[strings.ToUpper(n)] = true
	}
	var out []string
	for n := range names {
		if n == ical.PropAttendee || n == ical.PropDateTimeEnd || n == ical.PropDuration || skip(n) {
			continue
		}
		if !slices.Equal(propMeaning(a, n, za), propMeaning(b, n, zb)) {
			out = append(out, n)
		}
	}
	if !skip(ical.PropDateTimeEnd) && endOf(a, za) != endOf(b, zb) {
		out = append(out, ical.PropDateTimeEnd)
	}
	if !skip(ical.PropDateTimeStart) && !slices.Contains(out, ical.PropDateTimeStart) && !sameSeriesZone(a, b, za, zb) {
		out = append(out, ical.PropDateTimeStart)
	}
	sort.Strings(out)
	return out
}

// timeProps have DATE or DATE-TIME (or PERIOD) values.
var timeProps = map[string]bool{ical.PropDateTimeStart: true, ical.PropDateTimeEnd: true, ical.PropRecurrenceID: true, ical.PropExceptionDates: true,
	ical.PropRecurrenceDates: true, ical.PropDue: true, ical.PropCompleted: true, ical.PropDateTimeStamp: true,
	ical.PropCreated: true, ical.PropLastModified: true}

// setProps are sets of values across all their lines.
var setProps = map[string]bool{ical.PropExceptionDates: true, ical.PropRecurrenceDates: true,
	ical.PropCategories: true, ical.PropResources: true}

var enumProps = map[string]bool{ical.PropStatus: true, ical.PropClass: true, ical.PropTransparency: true, ical.PropAction: true}

// textProps have TEXT values (RFC 5545 §3.8.1, §3.8.4).
var textProps = map[string]bool{ical.PropSummary: true, ical.PropDescription: true, ical.PropLocation: true,
	ical.PropComment: true, ical.PropContact: true, ical.PropCategories: true, ical.PropResources: true, ical.PropRequestStatus: true}

// enumParams have case-insensitive values (RFC 5545 §3.2, RFC 5646 for
// LANGUAGE, RFC 6838 for FMTTYPE).
var enumParams = map[string]bool{"CUTYPE": true, "ENCODING": true, "FBTYPE": true, "PARTSTAT": true, "RANGE": true,
	"RELATED": true, "RELTYPE": true, "ROLE": true, "RSVP": true, "VALUE": true, "FMTTYPE": true, "LANGUAGE": true,
	"SCHEDULE-AGENT": true}

// propMeaning is every value of property name in c in a form that compares
// by meaning, sorted (a multiset; a set for setProps).
func propMeaning(c *ical.Component, name string, z *ics.Zones) []string {
	var out []string
	ps := c.Props[name]
	for i := range ps {
		p := &ps[i]
		params := paramMeaning(p.Params, timeProps[name] || name == ical.PropRecurrenceRule)
		for _, v := range valueMeaning(c, p, z) {
			out = append(out, v+params)
		}
	}
	if name == ical.PropPriority && len(out) == 1 && out[0] == "0" {
		out = nil
	}
	if textProps[name] {
		// An empty text says nothing: as if absent.
		out = slices.DeleteFunc(out, func(v string) bool { return v == "" })
	}
	sort.Strings(out)
	if setProps[name] {
		out = slices.Compact(out)
	}
	return out
}

// valueMeaning is the meaning of one property line (several values for a
// list).
func valueMeaning(c *ical.Component, p *ical.Prop, z *ics.Zones) []string {
	name := strings.ToUpper(p.Name)
	raw := strings.TrimSpace(p.Value)
	switch {
	case timeProps[name]:
		var out []string
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			t, err := z.PropTime(&ical.Prop{Name: p.Name, Params: p.Params, Value: item})
			if err != nil {
				out = append(out, "?"+item+"|"+param(p.Params, ical.ParamTimezoneID))
				continue
			}
			k := timeKey(t)
			if j := strings.IndexByte(item, '/'); j >= 0 { // PERIOD: start and its end or length
				k += "/" + strings.ToUpper(strings.TrimSpace(item[j+1:]))
			}
			out = append(out, k)
		}
		return out
	case name == ical.PropRecurrenceRule || name == "EXRULE":
		return []string{ruleMeaning(raw, c, z)}
	case name == ical.PropOrganizer:
		return []string{address.Normalize(raw)}
	case name == ical.PropCategories || name == ical.PropResources:
		return textList(raw)
	case textProps[name]:
		return []string{cleanText(ics.UnescapeText(raw))}
	case enumProps[name]:
		return []string{strings.ToUpper(raw)}
	case name == ical.PropPriority || name == ical.PropSequence:
		if n, err := strconv.Atoi(raw); err == nil {
			return []string{strconv.Itoa(n)}
		}
	case name == ical.PropGeo:
		if lat, lon, ok := strings.Cut(raw, ";"); ok {
			a, e1 := strconv.ParseFloat(strings.TrimSpace(lat), 64)
			b, e2 := strconv.ParseFloat(strings.TrimSpace(lon), 64)
			if e1 == nil && e2 == nil {
				return []string{strconv.FormatFloat(a, 'g', -1, 64) + ";" + strconv.FormatFloat(b, 'g', -1, 64)}
			}
		}
	}
	return []string{raw}
}

// paramMeaning is a property's parameters as one comparable string.
func paramMeaning(ps ical.Params, timeValue bool) string {
	var keys []string
	for name, vs := range ps {
		n := strings.ToUpper(name)
		if strings.HasPrefix(n, "X-") || n == "SCHEDULE-STATUS" || timeValue && (n == ical.ParamTimezoneID || n == ical.ParamValue) {
			continue
		}
		var vals []string
		for _, v := range vs {
			v = strings.TrimSpace(v)
			if enumParams[n] {
				v = strings.ToUpper(v)
			}
			vals = append(vals, v)
		}
		sort.Strings(vals)
		keys = append(keys, n+"="+strings.Join(slices.Compact(vals), ","))
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	return "\x00" + strings.Join(keys, "\x00")
}

func cleanText(v string) string {
	return strings.TrimSpace(strings.ReplaceAll(v, "\r\n", "\n"))
}

// textList splits a list of TEXT values at the commas that are not escaped.
func textList(v string) []string {
	var out []string
	start := 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case ',':
			out = append(out, cleanText(ics.UnescapeText(v[start:i])))
			start = i + 1
		}
	}
	return append(out, cleanText(ics.UnescapeText(v[start:])))
}

// ruleMeaning is a recurrence rule (RFC 5545 §3.3.10) in a form that
// compares as a rule. UNTIL is read like DTSTART of c (its zone, when a
// client wrote it as local time).
func ruleMeaning(v string, c *ical.Component, z *ics.Zones) string {
	parts := map[string]string{}
	for _, part := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(part, "=")
		k, val = strings.ToUpper(strings.TrimSpace(k)), strings.ToUpper(strings.TrimSpace(val))
		if k == "" {
			continue
		}
		switch {
		case k == "INTERVAL" || k == "COUNT":
			if n, err := strconv.Atoi(val); err == nil {
				val = strconv.Itoa(n)
			}
			if k == "INTERVAL" && val == "1" {
				continue
			}
		case k == "UNTIL":
			u := ical.Prop{Name: "UNTIL", Value: val, Params: ical.Params{}}
			if ds := first(c, ical.PropDateTimeStart); ds != nil && !strings.HasSuffix(val, "Z") {
				if tz := param(ds.Params, ical.ParamTimezoneID); tz != "" {
					u.Params.Set(ical.ParamTimezoneID, tz)
				}
			}
			if t, err := z.PropTime(&u); err == nil {
				val = timeKey(t)
			}
		case strings.HasPrefix(k, "BY"):
			items := strings.Split(val, ",")
			for i, it := range items {
				it = strings.TrimPrefix(strings.TrimSpace(it), "+")
				// A number (BYMONTHDAY=03, BYDAY=+1MO's 1) without its
				// leading zeros.
				j := 0
				if strings.HasPrefix(it, "-") {
					j = 1
				}
				end := j
				for end < len(it) && it[end] >= '0' && it[end] <= '9' {
					end++
				}
				if end > j {
					if n, err := strconv.Atoi(it[j:end]); err == nil {
						it = it[:j] + strconv.Itoa(n) + it[end:]
					}
				}
				items[i] = it
			}
			sort.Strings(items)
			val = strings.Join(slices.Compact(items), ",")
		}
		parts[k] = val
	}
	// WKST only matters to a WEEKLY rule with INTERVAL above 1 and BYDAY,
	// and to a YEARLY rule with BYWEEKNO (RFC 5545 §3.3.10); MO is its
	// default.
	if wk, ok := parts["WKST"]; ok {
		f := parts["FREQ"]
		matters := f == "WEEKLY" && parts["INTERVAL"] != "" && parts["BYDAY"] != "" || f == "YEARLY" && parts["BYWEEKNO"] != ""
		if wk == "MO" || !matters {
			delete(parts, "WKST")
		}
	}
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + parts[k]
	}
	return strings.Join(keys, ";")
}

// endOf is the effective end of a component (ics.Zones.End: DTEND, or
// DTSTART+DURATION, or the defaults of RFC 5545 §3.6.1). An end that cannot
// be read compares by what is written: DTSTART, DTEND and DURATION as they
// stand, with their TZIDs.
func endOf(c *ical.Component, z *ics.Zones) string {
	if t, err := z.End(c); err == nil {
		return timeKey(t)
	}
	var b strings.Builder
	b.WriteByte('?')
	for _, name := range []string{ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropDuration} {
		if p := c.Props.Get(name); p != nil {
			b.WriteString(strings.TrimSpace(p.Value) + "|" + param(p.Params, ical.ParamTimezoneID))
		}
		b.WriteByte(';')
	}
	return b.String()
}

// seriesYears is how long DTSTART's zones of a recurring component must
// agree on the UTC offset to count as the same.
const seriesYears = 10

// sameSeriesZone reports whether a and b, when recurring, have DTSTARTs in
// zones with the same UTC offset at every week of the series' first
// seriesYears years: the same DTSTART instant in UTC and in
// Europe/Berlin starts different series (the UTC one moves an hour in
// local time at every DST change).
func sameSeriesZone(a, b *ical.Component, za, zb *ics.Zones) bool {
	recurs := func(c *ical.Component) bool {
		return len(c.Props[ical.PropRecurrenceRule])+len(c.Props[ical.PropRecurrenceDates])+len(c.Props["EXRULE"]) > 0
	}
	if !recurs(a) && !recurs(b) {
		return true
	}
	ta, ea := za.PropTime(first(a, ical.PropDateTimeStart))
	tb, eb := zb.PropTime(first(b, ical.PropDateTimeStart))
	if ea != nil || eb != nil || ta.AllDay || ta.Floating || tb.AllDay || tb.Floating {
		return true // compared by value alone
	}
	la, lb := ta.T.Location(), tb.T.Location()
	if la == lb {
		return true
	}
	t := ta.T
	for i := 0; i < seriesYears*53; i++ {
		_, oa := t.In(la).Zone()
		_, ob := t.In(lb).Zone()
		if oa != ob {
			return false
		}
		t = t.Add(7 * 24 * time.Hour)
	}
	return true
}
