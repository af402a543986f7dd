// Package icstest compares iCalendar objects semantically for tests:
// components matched by name and RECURRENCE-ID, properties compared without
// regard to order, date-times with a TZID compared as instants, "**ANY**"
// in the expected value matching anything (the sabre/vobject convention).
package icstest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-ical"

	"imipd/itip/ics"
)

// Options tune the comparison.
type Options struct {
	IgnoreProps  []string // property names not compared anywhere (PRODID, DTSTAMP, ...)
	IgnoreParams []string // parameter names not compared (e.g. SCHEDULE-STATUS)
}

// Diff returns "" when got matches want, else a readable difference.
func Diff(got, want *ical.Calendar, opt Options) string {
	g := canon(got, opt)
	w := canon(want, opt)
	var diffs []string
	keys := map[string]bool{}
	for k := range g {
		keys[k] = true
	}
	for k := range w {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		gl, gok := g[k]
		wl, wok := w[k]
		if !gok {
			diffs = append(diffs, "missing component "+k)
			continue
		}
		if !wok {
			diffs = append(diffs, "unexpected component "+k)
			continue
		}
		if d := diffLines(gl, wl); d != "" {
			diffs = append(diffs, k+":\n"+d)
		}
	}
	return strings.Join(diffs, "\n")
}

func diffLines(got, want []string) string {
	used := make([]bool, len(got))
	var miss []string
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && lineMatch(g, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			miss = append(miss, "  - want "+w)
		}
	}
	for i, g := range got {
		if !used[i] {
			miss = append(miss, "  + got  "+g)
		}
	}
	return strings.Join(miss, "\n")
}

func lineMatch(g, w string) bool {
	if g == w {
		return true
	}
	if i := strings.Index(w, "**ANY**"); i >= 0 {
		return strings.HasPrefix(g, w[:i])
	}
	return false
}

// canon maps "NAME[rid]#n" paths to sorted property lines.
func canon(cal *ical.Calendar, opt Options) map[string][]string {
	out := map[string][]string{}
	z := ics.NewZones(cal)
	ignP := set(opt.IgnoreProps)
	ignQ := set(opt.IgnoreParams)
	var walk func(c *ical.Component, path string)
	walk = func(c *ical.Component, path string) {
		var lines []string
		for name, ps := range c.Props {
			if ignP[name] {
				continue
			}
			for i := range ps {
				lines = append(lines, propLine(&ps[i], z, ignQ))
			}
		}
		sort.Strings(lines)
		out[path] = lines
		count := map[string]int{}
		for _, ch := range c.Children {
			key := ch.Name
			if p := ch.Props.Get(ical.PropRecurrenceID); p != nil {
				key += "[" + instant(p, z) + "]"
			}
			count[key]++
			walk(ch, fmt.Sprintf("%s/%s#%d", path, key, count[key]))
		}
	}
	walk(cal.Component, "VCALENDAR")
	return out
}

func set(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		m[strings.ToUpper(s)] = true
	}
	return m
}

func instant(p *ical.Prop, z *ics.Zones) string {
	if t, err := z.PropTime(p); err == nil && !t.Floating && !t.AllDay {
		return t.T.UTC().Format("20060102T150405Z")
	}
	return p.Value
}

func propLine(p *ical.Prop, z *ics.Zones, ignQ map[string]bool) string {
	var params []string
	val := p.Value
	switch p.Name {
	case ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropRecurrenceID, ical.PropDue:
		if p.Params.Get(ical.ParamTimezoneID) != "" {
			val = instant(p, z)
		}
	case ical.PropAttendee, ical.PropOrganizer:
		if strings.HasPrefix(strings.ToLower(val), "mailto:") {
			val = "mailto:" + strings.ToLower(val[7:])
		}
	}
	for k, vs := range p.Params {
		if ignQ[k] || (k == ical.ParamTimezoneID && val != p.Value) {
			continue
		}
		params = append(params, k+"="+strings.Join(vs, ","))
	}
	sort.Strings(params)
	if len(params) == 0 {
		return p.Name + ":" + val
	}
	return p.Name + ";" + strings.Join(params, ";") + ":" + val
}
