package itip

import (
	"strings"

	"github.com/emersion/go-ical"
)

// applyCancel handles CANCEL (RFC 5546 §3.2.5) with Open-Xchange's two extra
// conditions (docs/rules.md "Methods"): SEQUENCE ≥ the stored one, and the
// sender is the organizer or its known SENT-BY (sender.go). A whole-event
// cancel keeps the event visible with STATUS:CANCELLED; an instance cancel
// cancels that instance; RANGE=THISANDFUTURE ends the series before it.
func applyCancel(in *Input) Result {
	m := in.Msg
	st := readStored(in.Stored)
	if st == nil {
		return cancelUnknown(in)
	}
	if r, ok := checkOrganizerSender(in, st); !ok {
		return r
	}
	if r, ok := cancelOrder(st, m); !ok {
		return r
	}
	if r, ok := gate(in, true); !ok {
		return r
	}
	out := cancelled(st, m)
	reason := ReasonCancelled
	if mm := m.Master(); mm != nil && len(mm.Attendees) > 0 && mm.Attendee(in.User.Address) != nil {
		if t := st.master(); t != nil && len(t.Props[ical.PropAttendee]) > len(mm.Attendees) {
			reason = ReasonRemoved // the organizer took the user off the list
		}
	}
	r := result(Applied, reason)
	r.Cal = out
	if m.Master() != nil {
		r.Obsolete = reason
	}
	r.Note = Describe(m, &in.User)
	return r
}

// cancelUnknown handles a CANCEL for an event the user has no copy of. Mail
// is often delivered out of order (Exchange sends a cancellation and a new
// invitation within seconds): when the sender is the organizer and the
// message passes the policy gates, the cancellation is stored as the
// event's first known state (STATUS:CANCELLED), so an older REQUEST that
// arrives later is outdated by RFC 5546 §2.1.5 instead of resurrecting the
// meeting. Only the organizer's own mail does that: with no stored copy, no
// SENT-BY is known (docs/rules.md "Sender checks"). Otherwise nothing is stored and
// nobody is asked.
func cancelUnknown(in *Input) Result {
	m := in.Msg
	if !organizerWrote(in) || in.User.Is(m.Organizer().Address) {
		return result(Ignored, ReasonUnknownEvent)
	}
	if _, ok := gate(in, false); !ok {
		return result(Ignored, ReasonUnknownEvent)
	}
	var comps []*ical.Component
	for _, inst := range m.Instances {
		c := cloneComp(inst.Comp)
		c.Props.SetText(ical.PropStatus, "CANCELLED")
		comps = append(comps, c)
	}
	r := result(Applied, ReasonCancelledUnknown)
	r.Cal = newStoredCal(m.Cal, comps...)
	r.Note = Describe(m, &in.User)
	return r
}

// cancelled returns a copy of the stored object with m's cancellation applied.
func cancelled(st *Event, m *Message) *ical.Calendar {
	out := cloneCal(st.Cal)
	o := readStored(out)
	if mm := m.Master(); mm != nil {
		for _, c := range o.events() {
			setStatusCancelled(c, mm)
		}
		return out
	}
	for _, inst := range m.Instances {
		if inst.Range == "THISANDFUTURE" {
			endSeriesBefore(o, inst)
			continue
		}
		c := o.find(inst.RecurrenceID)
		if c == nil {
			c = o.makeOverride(inst)
		}
		if c != nil {
			setStatusCancelled(c, inst)
		}
	}
	sortEvents(out, readStored(out))
	return out
}

func setStatusCancelled(c *ical.Component, inst *Instance) {
	c.Props.SetText(ical.PropStatus, "CANCELLED")
	setInt(c, ical.PropSequence, inst.Sequence)
	if p := first(inst.Comp, ical.PropDateTimeStamp); p != nil {
		ds := cloneProp(*p)
		c.Props.Set(&ds)
	}
}

// endSeriesBefore applies RANGE=THISANDFUTURE (RFC 5545 §3.2.13): the series
// ends before the instance; later overrides are cancelled.
func endSeriesBefore(o *Event, inst *Instance) {
	t, ok := parseKey(inst.RecurrenceID)
	if !ok {
		return
	}
	if mc := o.master(); mc != nil {
		for i := range mc.Props[ical.PropRecurrenceRule] {
			p := &mc.Props[ical.PropRecurrenceRule][i]
			var parts []string
			for _, part := range strings.Split(p.Value, ";") {
				up := strings.ToUpper(part)
				if strings.HasPrefix(up, "UNTIL=") || strings.HasPrefix(up, "COUNT=") {
					continue
				}
				parts = append(parts, part)
			}
			until := t.Add(-1e9).UTC().Format("20060102T150405Z")
			if len(inst.RecurrenceID) == 8 {
				until = t.AddDate(0, 0, -1).Format("20060102")
			}
			p.Value = strings.Join(append(parts, "UNTIL="+until), ";")
		}
		setInt(mc, ical.PropSequence, inst.Sequence)
	}
	for _, c := range o.events() {
		if rid := o.rid(c); rid != "" && rid >= inst.RecurrenceID {
			setStatusCancelled(c, inst)
		}
	}
}
