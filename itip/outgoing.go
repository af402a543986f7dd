package itip

import (
	"strings"

	"github.com/emersion/go-ical"

	"imipd/address"
)

// applyOutgoing teaches the calendar what the user sent (docs/rules.md "Outgoing mail
// teaches the calendar"): a local organizer's PUBLISH/REQUEST/ADD/CANCEL
// updates the organizer's own copy, a local attendee's REPLY updates the
// attendee's own PARTSTAT, a COUNTER is recorded. Nothing here touches anyone
// else's calendar. The author must be the user or one of the user's
// delegates (docs/rules.md "Working on behalf of").
func applyOutgoing(in *Input) Result {
	m := in.Msg
	if !userWrote(in) {
		return result(Ignored, ReasonNotAuthor)
	}
	st := readStored(in.Stored)
	switch m.Method {
	case Publish, Request, Add, Cancel:
		if !in.User.Is(m.Organizer().Address) {
			// e.g. the user forwards someone else's invitation
			return result(Ignored, ReasonNotOrganizer)
		}
		if st == nil {
			if m.Method != Request && m.Method != Publish {
				return result(Ignored, ReasonUnknownEvent)
			}
			var comps []*ical.Component
			for _, inst := range m.Instances {
				comps = append(comps, cloneComp(inst.Comp))
			}
			r := result(Applied, ReasonOrganizerCopy)
			r.Cal = newStoredCal(m.Cal, comps...)
			r.Note = "sent: " + Describe(m, &in.User)
			return r
		}
		switch m.Method {
		case Cancel:
			if r, ok := cancelOrder(st, m); !ok {
				return r
			}
			r := result(Applied, ReasonOrganizerCopy)
			r.Cal = cancelled(st, m)
			r.Note = "sent: " + Describe(m, &in.User)
			return r
		case Add:
			if st.master() == nil {
				return result(Ignored, ReasonUnknownEvent)
			}
			if r, ok := addOrder(st, m); !ok {
				return r
			}
			r := result(Applied, ReasonOrganizerCopy)
			r.Cal = addInstances(st, m, &in.User)
			r.Note = "sent: " + Describe(m, &in.User)
			return r
		}
		if r, ok := requestOrder(st, m); !ok {
			return r
		}
		out := organizerUpdate(st, m)
		r := result(Applied, ReasonOrganizerCopy)
		r.Cal = out
		r.Note = "sent: " + Describe(m, &in.User)
		return r
	case Reply:
		if st == nil {
			return result(Ignored, ReasonUnknownEvent)
		}
		out := cloneCal(st.Cal)
		o := readStored(out)
		changed := false
		for _, inst := range m.Instances {
			for _, a := range inst.Attendees {
				if !in.User.Is(a.Address) {
					continue
				}
				j := inst.attendeeIndex(a.Address)
				if setAttendeeParams(o, inst, a.Address, &inst.Comp.Props[ical.PropAttendee][j], vouchSelf) {
					changed = true
				}
			}
		}
		if !changed {
			return result(Ignored, ReasonNotAttendee)
		}
		sortEvents(out, o)
		r := result(Applied, ReasonAnswered)
		r.Cal = out
		r.Obsolete = ReasonAnswered
		r.Note = "sent: " + Describe(m, &in.User)
		return r
	case Counter:
		if st == nil {
			return result(Ignored, ReasonUnknownEvent)
		}
		r := result(Applied, ReasonRecorded)
		r.Note = "sent: " + Describe(m, &in.User)
		return r
	}
	return result(Ignored, ReasonNothingToDo)
}

// organizerUpdate replaces the organizer's copy with what the organizer sent,
// keeping the attendees' answers where the timing did not change (a mere
// update does not void them).
func organizerUpdate(st *Event, m *Message) *ical.Calendar {
	out := cloneCal(st.Cal)
	mergeTimezones(out, m.Cal)
	o := readStored(out)
	carry := func(nc, old *ical.Component) {
		if old == nil || timingChanged(old, nc, o.Zones, m.Zones) {
			return
		}
		for i := range nc.Props[ical.PropAttendee] {
			np := &nc.Props[ical.PropAttendee][i]
			if op := attendeeProp(old, address.Normalize(np.Value)); op != nil {
				if ps := param(op.Params, ical.ParamParticipationStatus); ps != "" && !strings.EqualFold(ps, "NEEDS-ACTION") {
					np.Params.Set(ical.ParamParticipationStatus, ps)
				}
			}
		}
	}
	if mm := m.Master(); mm != nil {
		var comps []*ical.Component
		for _, c := range out.Children {
			if c.Name != ical.CompEvent {
				comps = append(comps, c)
			}
		}
		for _, inst := range m.Instances {
			nc := cloneComp(inst.Comp)
			carry(nc, o.find(inst.RecurrenceID))
			comps = append(comps, nc)
		}
		out.Children = comps
	} else {
		for _, inst := range m.Instances {
			nc := cloneComp(inst.Comp)
			carry(nc, o.find(inst.RecurrenceID))
			o.replace(inst.RecurrenceID, nc)
		}
	}
	sortEvents(out, readStored(out))
	return out
}
