package itip

import (
	"github.com/emersion/go-ical"
)

// applyAdd handles ADD (RFC 5546 §3.2.4): new instances of a known recurring
// event. For an unknown event the attendee asks the organizer for the whole
// event with REFRESH (§3.2.4: "the Attendee SHOULD send a REFRESH").
func applyAdd(in *Input) Result {
	m := in.Msg
	st := readStored(in.Stored)
	if st == nil {
		return addUnknown(in)
	}
	if r, ok := checkOrganizerSender(in, st); !ok {
		return r
	}
	if st.master() == nil {
		return result(Ignored, ReasonUnknownEvent)
	}
	if r, ok := addOrder(st, m); !ok {
		return r
	}
	if r, ok := gate(in, true); !ok {
		return r
	}
	out := addInstances(st, m, &in.User)
	settleOrganizerSentBy(out, st, in.From)
	r := result(Applied, ReasonAdded)
	r.Cal = out
	r.Note = Describe(m, &in.User)
	return r
}

// addUnknown answers an ADD for an event the user has no copy of. RFC 5546
// §3.2.4 says the attendee SHOULD send a REFRESH to the organizer; but mail
// imipd sends on its own must not make it a relay for whoever writes an ADD
// (issue 13; docs/rules.md "Sender checks"). So the REFRESH goes out only
//
//   - to the organizer, and only when the organizer wrote the ADD (From is
//     the ORGANIZER's address: with no stored copy no SENT-BY is known, and
//     a SENT-BY is never written to); else ignored, reason unknown-event;
//   - when the organizer is not a local address (the user's own, or
//     Input.LocalAddress): else ignored, unknown-event;
//   - when the ADD is not itself automatic (Auto-Submitted): else ignored,
//     auto-submitted;
//   - after the gates that apply any message (gate: an authentication
//     failure, a method mismatch or policy never holds it for the user,
//     policy known needs a known author, an old message is ignored, too-old).
//
// Then the outcome is ignored, reason refresh-sent (nothing is stored; the
// organizer's answer is a REQUEST). How many REFRESHes go out per target
// and hour is filter's budget.
func addUnknown(in *Input) Result {
	org := in.Msg.Organizer()
	if !organizerWrote(in) || in.User.Is(org.Address) ||
		in.LocalAddress != nil && in.LocalAddress(org.Address) {
		return result(Ignored, ReasonUnknownEvent)
	}
	if in.AutoSubmitted {
		return result(Ignored, ReasonAutoSubmitted)
	}
	if r, ok := gate(in, false); !ok {
		return r
	}
	r := result(Ignored, ReasonRefreshSent)
	r.Send = []Outgoing{refreshFor(in, org.Address)}
	r.Note = Describe(in.Msg, &in.User)
	return r
}

// refreshFor builds the REFRESH an attendee sends to ask for the current
// event (RFC 5546 §3.2.6).
func refreshFor(in *Input, organizer string) Outgoing {
	m := in.Msg
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, ProdID)
	cal.Props.SetText(ical.PropMethod, string(Refresh))
	ev := ical.NewComponent(ical.CompEvent)
	ev.Props.SetText(ical.PropUID, m.UID)
	ev.Props.SetDateTime(ical.PropDateTimeStamp, in.Now.UTC())
	op := ical.NewProp(ical.PropOrganizer)
	op.Value = "mailto:" + organizer
	ev.Props.Set(op)
	ap := ical.NewProp(ical.PropAttendee)
	ap.Value = "mailto:" + in.User.Address
	ev.Props.Set(ap)
	cal.Children = append(cal.Children, ev)
	return Outgoing{Method: Refresh, From: in.User.Address, To: []string{organizer}, Cal: cal, Auto: true}
}

// addInstances returns a copy of the stored object with the ADD's instances:
// each becomes an RDATE of the master and an override carrying its data.
func addInstances(st *Event, m *Message, u *User) *ical.Calendar {
	out := cloneCal(st.Cal)
	mergeTimezones(out, m.Cal)
	o := readStored(out)
	om := o.master()
	for _, inst := range m.Instances {
		ds := first(inst.Comp, ical.PropDateTimeStart)
		if ds == nil {
			continue
		}
		nc := cloneComp(inst.Comp)
		rid := cloneProp(*ds)
		rid.Name = ical.PropRecurrenceID
		nc.Props.Set(&rid)
		key, err := InstanceKey(&rid, o.Zones)
		if err != nil {
			continue
		}
		keepPrivate(nc, om, o.Zones, m.Zones, u, "")
		rdate := cloneProp(*ds)
		rdate.Name = ical.PropRecurrenceDates
		om.Props.Add(&rdate)
		o.replace(key, nc)
	}
	setInt(om, ical.PropSequence, m.Sequence())
	if p := first(m.First().Comp, ical.PropDateTimeStamp); p != nil {
		ds := cloneProp(*p)
		om.Props.Set(&ds)
	}
	sortEvents(out, readStored(out))
	return out
}
