package itip

import (
	"slices"
	"strings"

	"github.com/emersion/go-ical"

	"imipd/itip/ics"
)

// applyRequest handles PUBLISH (RFC 5546 §3.2.1, treated as REQUEST as in
// Open-Xchange, docs/rules.md "Methods") and REQUEST (§3.2.2): a new
// invitation, an update, a reschedule, or an instance (RECURRENCE-ID) of a
// recurring event, possibly before its master.
func applyRequest(in *Input) Result {
	m := in.Msg
	st := readStored(in.Stored)
	if r, ok := checkRequestSender(in, st); !ok {
		return r
	}
	if st != nil {
		if r, ok := requestOrder(st, m); !ok {
			return r
		}
	}
	if r, ok := gate(in, st != nil); !ok {
		return r
	}
	var r Result
	if st == nil {
		r = newInvitation(in)
	} else {
		r = updateRequest(in, st)
	}
	if r.Cal != nil {
		settleOrganizerSentBy(r.Cal, st, in.From)
	}
	return r
}

// newInvitation stores a first REQUEST or PUBLISH.
func newInvitation(in *Input) Result {
	m := in.Msg
	var comps []*ical.Component
	invited := false
	for _, inst := range m.Instances {
		c := cloneComp(inst.Comp)
		if p := userAttendee(c, &in.User); p != nil {
			invited = true
			if m.Method == Request {
				// docs/rules.md "Methods": a new invitation is stored with the user's
				// PARTSTAT=NEEDS-ACTION until the user answers.
				p.Params.Set(ical.ParamParticipationStatus, "NEEDS-ACTION")
			}
		}
		comps = append(comps, c)
	}
	desc := Describe(m, &in.User)
	if m.Method == Publish {
		r := result(Applied, ReasonPublished)
		r.Cal = newStoredCal(m.Cal, comps...)
		r.Note = desc
		return r
	}
	if !invited {
		// The user is not on the attendee list: a forwarded invitation.
		// Answering would make the user a party crasher (docs/rules.md "User
		// interaction"), so nothing is stored until the user decides.
		r := result(NeedsAction, ReasonNotInvited)
		r.Pending = []PendingItem{{Kind: KindInvitation, Reason: ReasonNotInvited, Summary: desc, Actions: ActionsFor(KindInvitation)}}
		r.Note = desc
		return r
	}
	r := result(NeedsAction, ReasonInvitation)
	r.Cal = newStoredCal(m.Cal, comps...)
	r.Pending = []PendingItem{{Kind: KindInvitation, Reason: ReasonInvitation, RecurrenceID: m.First().RecurrenceID, Summary: desc, Actions: ActionsFor(KindInvitation)}}
	r.Note = desc
	return r
}

// updateRequest merges a newer REQUEST into the stored copy, keeping the
// user's private data (own PARTSTAT unless rescheduled, VALARM, TRANSP, CLASS).
func updateRequest(in *Input, st *Event) Result {
	m := in.Msg
	out := cloneCal(st.Cal)
	mergeTimezones(out, m.Cal)
	o := readStored(out)
	var resched, unasked []string // RECURRENCE-IDs to ask the user about again, or for the first time
	merge := func(inst *Instance) *ical.Component {
		nc := cloneComp(inst.Comp)
		src := o.find(inst.RecurrenceID)
		if src == nil {
			src = o.master()
		}
		switch keepPrivate(nc, src, o.Zones, m.Zones, &in.User, inst.RecurrenceID) {
		case reasked:
			resched = append(resched, inst.RecurrenceID)
		case fresh:
			unasked = append(unasked, inst.RecurrenceID)
		}
		return nc
	}
	if master := m.Master(); master != nil {
		// A full update: the message's components replace the stored set.
		// Stored overrides it does not mention survive only when they are
		// not older than the new master (an instance that arrived before its
		// master, or a later instance update).
		var comps []*ical.Component
		for _, c := range out.Children {
			if c.Name != ical.CompEvent {
				comps = append(comps, c)
			}
		}
		seen := map[string]bool{}
		for _, inst := range m.Instances {
			seen[inst.RecurrenceID] = true
			comps = append(comps, merge(inst))
		}
		for _, ov := range o.Instances {
			if ov.RecurrenceID == "" || seen[ov.RecurrenceID] {
				continue
			}
			if outlives(ov, master) {
				comps = append(comps, ov.Comp)
			}
		}
		out.Children = comps
	} else {
		for _, inst := range m.Instances {
			o.replace(inst.RecurrenceID, merge(inst))
		}
	}
	sortEvents(out, readStored(out))
	desc := Describe(m, &in.User)
	if len(resched) > 0 {
		// docs/rules.md "Methods": a reschedule resets the user's answer and asks again.
		r := result(NeedsAction, ReasonRescheduled)
		r.Cal = out
		r.Obsolete = ReasonRescheduled
		r.Pending = []PendingItem{{Kind: KindRescheduled, Reason: ReasonRescheduled, RecurrenceID: resched[0], Summary: desc, Actions: ActionsFor(KindRescheduled)}}
		r.Note = "rescheduled: " + desc
		return r
	}
	if len(unasked) > 0 && m.Method == Request {
		// Components the user had no copy of (the series arriving after one
		// of its instances, another instance): a new invitation
		// (RFC 5546 §3.2.2, docs/rules.md "Methods").
		r := result(NeedsAction, ReasonInvitation)
		r.Cal = out
		r.Pending = []PendingItem{{Kind: KindInvitation, Reason: ReasonInvitation, RecurrenceID: unasked[0], Summary: desc, Actions: ActionsFor(KindInvitation)}}
		r.Supersede = supersede(in, unasked)
		r.Note = desc
		return r
	}
	r := result(Applied, ReasonUpdated)
	r.Cal = out
	r.Supersede = supersede(in, nil)
	r.Note = "updated: " + desc
	return r
}

// supersede is what an applied update asks of the user's open questions
// about the event (README "Pending items stay current"): each component
// of the message, other than skip (those get a pending item of their
// own), is described again as it is now. An open invitation the user has
// not answered would otherwise offer the old time: the user would decide
// on stale data.
func supersede(in *Input, skip []string) []PendingItem {
	var items []PendingItem
	for _, inst := range in.Msg.Instances {
		if slices.Contains(skip, inst.RecurrenceID) {
			continue
		}
		items = append(items, PendingItem{Kind: KindInvitation, RecurrenceID: inst.RecurrenceID,
			Summary: describe(in.Msg, inst, &in.User), Actions: ActionsFor(KindInvitation)})
	}
	return items
}

// carried says what keepPrivate found about the user's answer.
type carried int

const (
	kept    carried = iota // the user's answer (or NEEDS-ACTION) carries over
	reasked                // a reschedule voided the user's answer
	fresh                  // the user had no copy of this component: never asked
)

// keepPrivate carries the user's private data from the stored component old
// (nil if none) into the incoming component nc. A reschedule is a change of
// DTSTART, DTEND/DURATION, RRULE/RDATE/EXDATE, or of the user's ROLE (docs/rules.md
// "Methods"); it resets the user's PARTSTAT to NEEDS-ACTION, and when the
// user had answered, the answer must be asked again (reasked).
func keepPrivate(nc, old *ical.Component, zo, zn *ics.Zones, u *User, rid string) carried {
	np := userAttendee(nc, u)
	if old == nil {
		if np == nil {
			return kept
		}
		np.Params.Set(ical.ParamParticipationStatus, "NEEDS-ACTION")
		return fresh
	}
	var changed bool
	if rid != "" && first(old, ical.PropRecurrenceID) == nil {
		// A new override compared with the series: moved when its start is
		// not the original start, or its length differs from the series'.
		changed = !sameInstant(first(nc, ical.PropDateTimeStart), first(nc, ical.PropRecurrenceID), zn, zn) ||
			!sameLength(nc, old, zn, zo)
	} else {
		changed = timingChanged(old, nc, zo, zn)
	}
	op := userAttendee(old, u)
	if op != nil && np != nil && !strings.EqualFold(roleOf(op), roleOf(np)) {
		changed = true
	}
	if np != nil {
		ps := "NEEDS-ACTION"
		if op != nil && !changed {
			if v := param(op.Params, ical.ParamParticipationStatus); v != "" {
				ps = v
			}
		}
		np.Params.Set(ical.ParamParticipationStatus, ps)
	}
	for _, name := range ownProps {
		if p := old.Props.Get(name); p != nil {
			nc.Props.Set(&ical.Prop{Name: p.Name, Params: p.Params, Value: p.Value})
		}
	}
	var alarms []*ical.Component
	for _, c := range old.Children {
		if c.Name == ical.CompAlarm {
			alarms = append(alarms, cloneComp(c))
		}
	}
	if len(alarms) > 0 {
		kept := nc.Children[:0]
		for _, c := range nc.Children {
			if c.Name != ical.CompAlarm {
				kept = append(kept, c)
			}
		}
		nc.Children = append(kept, alarms...)
	}
	if changed && op != nil && np != nil {
		if ps := strings.ToUpper(param(op.Params, ical.ParamParticipationStatus)); ps != "" && ps != "NEEDS-ACTION" {
			return reasked
		}
	}
	return kept
}

func roleOf(p *ical.Prop) string {
	if r := param(p.Params, ical.ParamRole); r != "" {
		return r
	}
	return "REQ-PARTICIPANT"
}

// timingChanged compares the properties that make a reschedule (docs/rules.md
// "Methods"): DTSTART, the end (DTEND or DURATION), RRULE, RDATE and
// EXDATE, by meaning (compare.go).
func timingChanged(a, b *ical.Component, za, zb *ics.Zones) bool {
	return len(changedProps(a, b, za, zb, notTiming)) > 0
}

var timingProps = map[string]bool{ical.PropDateTimeStart: true, ical.PropDateTimeEnd: true, ical.PropRecurrenceRule: true,
	"EXRULE": true, ical.PropRecurrenceDates: true, ical.PropExceptionDates: true}

func notTiming(name string) bool { return !timingProps[name] }

func sameInstant(a, b *ical.Prop, za, zb *ics.Zones) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta, ea := za.PropTime(a)
	tb, eb := zb.PropTime(b)
	if ea != nil || eb != nil {
		return strings.TrimSpace(a.Value) == strings.TrimSpace(b.Value)
	}
	return ta.T.Equal(tb.T) && ta.AllDay == tb.AllDay
}

// sameLength compares the lengths of two components (DTEND-DTSTART or DURATION).
func sameLength(a, b *ical.Component, za, zb *ics.Zones) bool {
	la, oka := length(a, za)
	lb, okb := length(b, zb)
	if !oka || !okb {
		return oka == okb
	}
	return la == lb
}

func length(c *ical.Component, z *ics.Zones) (string, bool) {
	ds := first(c, ical.PropDateTimeStart)
	if ds == nil {
		return "", false
	}
	if d := first(c, ical.PropDuration); d != nil {
		dur, err := ics.ParseDuration(strings.TrimSpace(d.Value))
		if err != nil {
			return d.Value, true
		}
		return dur.String(), true
	}
	de := first(c, ical.PropDateTimeEnd)
	if de == nil {
		return "", false
	}
	ts, e1 := z.PropTime(ds)
	te, e2 := z.PropTime(de)
	if e1 != nil || e2 != nil {
		return de.Value, true
	}
	return te.T.Sub(ts.T).String(), true
}

// sortEvents orders a stored object: VTIMEZONEs, then the master, then
// overrides by RECURRENCE-ID, so stored objects are deterministic. o reads
// cal (its Instances name cal's components).
func sortEvents(cal *ical.Calendar, o *Event) {
	slices.SortStableFunc(cal.Children, func(ci, cj *ical.Component) int {
		if ei, ej := ci.Name == ical.CompEvent, cj.Name == ical.CompEvent; ei != ej {
			if ei {
				return 1
			}
			return -1
		} else if !ei {
			return 0
		}
		return strings.Compare(o.rid(ci), o.rid(cj))
	})
}
