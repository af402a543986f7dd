package itip

import (
	"fmt"
	"strings"

	"github.com/emersion/go-ical"

	"imipd/itip/ics"
)

// Describe says in a person's terms what a message is about: who asks what
// of whom, for which event, when. user is the reader's address ("you").
func Describe(m *Message, user string) string {
	if m == nil || len(m.Instances) == 0 {
		return "a calendar message without events"
	}
	first := m.First()
	title := ics.Line(first.Comp.Props.Get(ical.PropSummary))
	if title == "" {
		title = "(no title)"
	}
	title = fmt.Sprintf("%q", title)
	who := func(p Party) string {
		if p.Address == "" {
			return "someone"
		}
		if user != "" && p.Address == user {
			return "you"
		}
		s := p.Address
		if p.CN != "" {
			s = p.CN + " <" + p.Address + ">"
		}
		if p.SentBy != "" && p.SentBy != p.Address {
			// RFC 5545 §3.2.18: a claim the reader weighs (SPEC "Sender
			// checks": "Sam on behalf of Carol invites you").
			s = p.SentBy + " on behalf of " + s
		}
		return s
	}
	org := who(m.Organizer())
	var att Party
	if len(first.Attendees) > 0 {
		att = first.Attendees[0]
	}
	when := describeWhen(m, first)
	switch m.Method {
	case Publish:
		return fmt.Sprintf("%s published %s%s", org, title, when)
	case Request:
		n := len(first.Attendees)
		return fmt.Sprintf("%s invites %s to %s%s (%d attendee%s)", org, invitees(first, user), title, when, n, plural(n))
	case Reply:
		return fmt.Sprintf("%s %s %s%s", who(att), partstatVerb(att.PartStat), title, when)
	case Add:
		return fmt.Sprintf("%s adds occurrences to %s%s", org, title, when)
	case Cancel:
		return fmt.Sprintf("%s cancelled %s%s", org, title, when)
	case Refresh:
		return fmt.Sprintf("%s asks for the current version of %s", who(att), title)
	case Counter:
		return fmt.Sprintf("%s proposes a change to %s%s", who(att), title, when)
	case DeclineCounter:
		return fmt.Sprintf("%s declined the proposed change to %s", org, title)
	}
	return string(m.Method) + " " + title
}

func invitees(in *Instance, user string) string {
	for _, a := range in.Attendees {
		if a.Address == user {
			return "you"
		}
	}
	if len(in.Attendees) == 1 {
		return in.Attendees[0].Address
	}
	return "attendees"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func partstatVerb(ps string) string {
	switch ps {
	case "ACCEPTED":
		return "accepted"
	case "DECLINED":
		return "declined"
	case "TENTATIVE":
		return "tentatively accepted"
	case "DELEGATED":
		return "delegated"
	}
	return "has not yet answered"
}

// describeWhen renders the start (and end) of the instance in the time zone
// it was written in, and the recurrence.
func describeWhen(m *Message, in *Instance) string {
	var b strings.Builder
	if in.RecurrenceID != "" {
		if t, ok := parseKey(in.RecurrenceID); ok {
			b.WriteString(" for the occurrence of " + t.Format("Mon 2 Jan 2006"))
		}
	}
	ds := in.Comp.Props.Get(ical.PropDateTimeStart)
	if ds == nil {
		return b.String()
	}
	st, err := m.Zones.PropTime(ds)
	if err != nil {
		return b.String() + " at " + ds.Value
	}
	if st.AllDay {
		b.WriteString(" on " + st.T.Format("Mon 2 Jan 2006") + " (all day)")
	} else {
		b.WriteString(" on " + st.T.Format("Mon 2 Jan 2006 15:04"))
		if de := in.Comp.Props.Get(ical.PropDateTimeEnd); de != nil {
			if et, err := m.Zones.PropTime(de); err == nil {
				et.T = et.T.In(st.T.Location())
				if et.T.YearDay() == st.T.YearDay() && et.T.Year() == st.T.Year() {
					b.WriteString("–" + et.T.Format("15:04"))
				} else {
					b.WriteString(" – " + et.T.Format("Mon 2 Jan 2006 15:04"))
				}
			}
		}
		switch {
		case st.Floating:
			b.WriteString(" (local time)")
		case ds.Params.Get(ical.ParamTimezoneID) != "":
			b.WriteString(" (" + st.T.Location().String() + ")")
		default:
			b.WriteString(" (UTC)")
		}
	}
	if rr := in.Comp.Props.Get(ical.PropRecurrenceRule); rr != nil {
		b.WriteString(", repeating " + describeRule(rr.Value))
	}
	return b.String()
}

func describeRule(r string) string {
	freq := ""
	for _, part := range strings.Split(strings.ToUpper(r), ";") {
		if v, ok := strings.CutPrefix(part, "FREQ="); ok {
			freq = strings.ToLower(v)
		}
	}
	if freq == "" {
		return r
	}
	return freq
}
