package itip

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"

	"imipd/itip/ics"
)

// maxTitleRunes bounds the title in a description; a longer SUMMARY is cut
// with "…".
const maxTitleRunes = 120

// Describe says in one English sentence, for reader, what a message is
// about: who asks what of whom, for which event, when (README "How imipd
// describes a message" is the grammar). reader is the person the sentence
// speaks to: their addresses are "you", and times are shown in their Zone
// (nil or a nil Zone: UTC). Pending items, the history, imipctl check and
// the text part of the mail imipd sends all use it, so a description reads
// the same everywhere.
func Describe(m *Message, reader *User) string {
	if m == nil || len(m.Instances) == 0 {
		return "A calendar message without events"
	}
	return describe(m, m.First(), reader)
}

// describe is Describe for one instance of m (a pending item about one
// occurrence).
func describe(m *Message, in *Instance, reader *User) string {
	d := describer{m: m, reader: reader, zone: time.UTC}
	if reader != nil && reader.Zone != nil {
		d.zone = reader.Zone
	}
	what := title(in)
	if in.RecurrenceID != "" {
		what = "the occurrence of " + what
	}
	when := d.when(in)
	if more := len(m.Instances) - 1; more > 0 && in.RecurrenceID != "" && in == m.First() {
		when += fmt.Sprintf(", and %d more occurrence%s", more, plural(more))
	}
	org := d.who(m.Organizer())
	var att Party
	if len(in.Attendees) > 0 {
		att = in.Attendees[0]
	}
	var s string
	switch m.Method {
	case Publish:
		s = org + " published " + what + when
	case Request:
		if whom := d.invitees(in, org); whom != "" {
			s = org + verb(org, " invites ", " invite ") + whom + " to " + what + when
		} else {
			s = org + verb(org, " schedules ", " schedule ") + what + when
		}
	case Reply:
		a := d.who(att)
		s = a + " " + answerVerb(a, att.PartStat) + " " + what + when
	case Add:
		n := len(m.Instances)
		occ := "an occurrence"
		if n > 1 {
			occ = strconv.Itoa(n) + " occurrences"
			when = ", the first" + when
		}
		s = org + verb(org, " adds ", " add ") + occ + " to " + title(in) + when
	case Cancel:
		s = org + " cancelled " + what + when
	case Refresh:
		a := d.who(att)
		s = a + verb(a, " asks ", " ask ") + "for the current version of " + what
	case Counter:
		a := d.who(att)
		s = a + verb(a, " proposes ", " propose ") + "a change to " + what
		if when != "" {
			s += ":" + when
		}
	case DeclineCounter:
		s = org + " declined the proposed change to " + what
	default:
		s = string(m.Method) + " " + what
	}
	return capitalize(s)
}

// describer holds what one description needs.
type describer struct {
	m      *Message
	reader *User
	zone   *time.Location
}

// who names a party: "you" for the reader, else the common name and the
// address ("Carol Example <carol@example.com>"), the address alone when
// there is no name or the name is the address; a SENT-BY is a claim the
// reader weighs (RFC 5545 §3.2.18; docs/rules.md "Sender checks": "Sam on behalf of
// Carol invites you").
func (d *describer) who(p Party) string {
	if p.Address == "" {
		return "someone"
	}
	if d.reader != nil && d.reader.Is(p.Address) {
		return "you"
	}
	s := p.Address
	if cn := ics.OneLine(p.CN); cn != "" && !strings.EqualFold(strings.TrimPrefix(strings.ToLower(cn), "mailto:"), p.Address) {
		s = cn + " <" + p.Address + ">"
	}
	if p.SentBy != "" && p.SentBy != p.Address {
		by := p.SentBy
		if d.reader != nil && d.reader.Is(by) {
			by = "you"
		}
		s = by + " on behalf of " + s
	}
	return s
}

// invitees is whom a REQUEST invites, as the reader sees it: "you", "you
// and 2 others", the one attendee, "3 people"; "" when nobody. When the
// reader is the organizer ("You invite …"), the reader is not counted.
func (d *describer) invitees(in *Instance, org string) string {
	var others []Party
	reader := false
	for _, a := range in.Attendees {
		if d.reader != nil && d.reader.Is(a.Address) {
			reader = true
			continue
		}
		others = append(others, a)
	}
	n := len(others)
	if reader && verb(org, "", "you") == "" {
		switch n {
		case 0:
			return "you"
		case 1:
			return "you and 1 other"
		}
		return fmt.Sprintf("you and %d others", n)
	}
	switch n {
	case 0:
		return ""
	case 1:
		return d.who(others[0])
	}
	return fmt.Sprintf("%d people", n)
}

// when is the instance's time in the reader's zone: " on DAY, HH:MM–HH:MM
// (ZONE)", " from DAY, HH:MM to DAY, HH:MM (ZONE)", " on DAY (all day)",
// " from DAY to DAY (all day)"; an occurrence that moved adds ", moved
// from …"; a recurrence adds ", repeating …".
func (d *describer) when(in *Instance) string {
	ds := first(in.Comp, ical.PropDateTimeStart)
	if ds == nil {
		return ""
	}
	st, err := d.m.Zones.PropTime(ds)
	if err != nil {
		return " at " + ics.OneLine(ds.Value)
	}
	// An end that cannot be read is no end (ics.Zones.End): the start
	// alone is said.
	end := st.T
	if e, err := d.m.Zones.End(in.Comp); err == nil {
		end = e.T
	}
	var b strings.Builder
	if st.AllDay {
		last := end.AddDate(0, 0, -1)
		if !last.After(st.T) {
			b.WriteString(" on " + day(st.T) + " (all day)")
		} else {
			b.WriteString(" from " + day(st.T) + " to " + day(last) + " (all day)")
		}
	} else {
		start := d.local(st.T, st.Floating)
		switch {
		case !end.After(st.T):
			b.WriteString(" on " + day(start) + ", " + start.Format("15:04"))
		case sameDay(start, d.local(end, st.Floating)):
			b.WriteString(" on " + day(start) + ", " + start.Format("15:04") + "–" + d.local(end, st.Floating).Format("15:04"))
		default:
			b.WriteString(" from " + day(start) + ", " + start.Format("15:04") + " to " + dayTime(d.local(end, st.Floating)))
		}
		b.WriteString(" (" + d.zoneName(st.Floating) + ")")
	}
	if in.RecurrenceID != "" {
		if rid, ok := parseKey(in.RecurrenceID); ok && !rid.Equal(st.T) && !(st.AllDay && sameDay(rid, st.T)) {
			switch from := d.local(rid, !strings.HasSuffix(in.RecurrenceID, "Z")); {
			case len(in.RecurrenceID) == len("20060102"):
				b.WriteString(", moved from " + day(rid))
			case !st.AllDay && sameDay(from, d.local(st.T, st.Floating)):
				b.WriteString(", moved from " + from.Format("15:04"))
			default:
				b.WriteString(", moved from " + dayTime(from))
			}
		}
	}
	if rr := first(in.Comp, ical.PropRecurrenceRule); rr != nil {
		b.WriteString(", repeating " + d.rule(rr.Value, st))
	}
	return b.String()
}

// local is t in the reader's zone; a floating time is the same wall clock
// wherever the reader is.
func (d *describer) local(t time.Time, floating bool) time.Time {
	if floating {
		return t
	}
	return t.In(d.zone)
}

func (d *describer) zoneName(floating bool) string {
	if floating {
		return "local time"
	}
	return d.zone.String()
}

// rule says a recurrence rule in words: "daily", "every 2 weeks", "weekly
// on Tue and Thu", with ", 8 times" or ", until Tue 29 Apr 2025".
func (d *describer) rule(r string, st ics.Time) string {
	parts := map[string]string{}
	for _, p := range strings.Split(strings.ToUpper(strings.TrimSpace(r)), ";") {
		if k, v, ok := strings.Cut(p, "="); ok {
			parts[k] = v
		}
	}
	unit, ok := map[string][2]string{
		"SECONDLY": {"every second", "seconds"}, "MINUTELY": {"every minute", "minutes"}, "HOURLY": {"hourly", "hours"},
		"DAILY": {"daily", "days"}, "WEEKLY": {"weekly", "weeks"}, "MONTHLY": {"monthly", "months"}, "YEARLY": {"yearly", "years"},
	}[parts["FREQ"]]
	if !ok {
		return "by a rule imipd does not read"
	}
	s := unit[0]
	if n, err := strconv.Atoi(parts["INTERVAL"]); err == nil && n > 1 && n < 1000 {
		s = "every " + strconv.Itoa(n) + " " + unit[1]
	}
	if parts["FREQ"] == "WEEKLY" && parts["BYDAY"] != "" {
		var days []string
		for _, wd := range strings.Split(parts["BYDAY"], ",") {
			if name, ok := weekdayNames[wd]; ok {
				days = append(days, name)
			}
		}
		if len(days) > 0 {
			s += " on " + joinAnd(days)
		}
	}
	if n, err := strconv.Atoi(parts["COUNT"]); err == nil && n > 0 {
		if n == 1 {
			s += ", once"
		} else {
			s += ", " + strconv.Itoa(n) + " times"
		}
	} else if u := parts["UNTIL"]; u != "" {
		if t, ok := parseKey(u); ok {
			if len(u) == len("20060102") || st.AllDay {
				// An all-day series is dated, not timed: its UNTIL
				// (RFC 5545 §3.3.10 wants a DATE; senders write the
				// instant that ends the last day) is read on the same
				// calendar as the dates, in UTC.
				s += ", until " + day(t)
			} else {
				s += ", until " + day(d.local(t, !strings.HasSuffix(u, "Z") || st.Floating))
			}
		}
	}
	return s
}

var weekdayNames = map[string]string{"MO": "Mon", "TU": "Tue", "WE": "Wed", "TH": "Thu", "FR": "Fri", "SA": "Sat", "SU": "Sun"}

// title is the quoted SUMMARY on one line (its TEXT escapes undone), cut
// at maxTitleRunes; "an untitled event" when it has none.
func title(in *Instance) string {
	t := ics.Line(first(in.Comp, ical.PropSummary))
	if t == "" {
		return "an untitled event"
	}
	if utf8.RuneCountInString(t) > maxTitleRunes {
		r := []rune(t)
		t = strings.TrimSpace(string(r[:maxTitleRunes])) + "…"
	}
	return "“" + t + "”"
}

// verb picks the form that agrees with the subject: the second person for
// "you" (and "you on behalf of …"), else the third.
func verb(subject, third, second string) string {
	if subject == "you" || strings.HasPrefix(subject, "you ") {
		return second
	}
	return third
}

func answerVerb(subject, ps string) string {
	switch strings.ToUpper(ps) {
	case "ACCEPTED":
		return "accepted"
	case "DECLINED":
		return "declined"
	case "TENTATIVE":
		return "tentatively accepted"
	case "DELEGATED":
		return "delegated"
	}
	return strings.TrimSpace(verb(subject, " has ", " have ")) + " not yet answered"
}

func capitalize(s string) string {
	for _, w := range []string{"you", "someone"} {
		if strings.HasPrefix(s, w+" ") {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return s
}

func joinAnd(l []string) string {
	if len(l) == 1 {
		return l[0]
	}
	return strings.Join(l[:len(l)-1], ", ") + " and " + l[len(l)-1]
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func day(t time.Time) string     { return t.Format("Mon 2 Jan 2006") }
func dayTime(t time.Time) string { return t.Format("Mon 2 Jan 2006, 15:04") }

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}
