package itip

import (
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// applyReply handles REPLY (RFC 5546 §3.2.3) at the organizer: only the
// replying attendee's PARTSTAT and its parameters change; every other
// property of the REPLY is dropped silently (seed, RFC 6047). A REPLY without
// ORGANIZER (Outlook) is matched by UID. An attendee not on the list is a
// party crasher: a pending decision for the organizer.
func applyReply(in *Input) Result {
	m := in.Msg
	st, replier, r, ok := atOrganizer(in)
	if !ok {
		return r
	}
	crasher := false
	newer := false
	worst := 1
	for _, inst := range m.Instances {
		t := st.find(inst.RecurrenceID)
		if t == nil {
			t = st.master()
		}
		if t == nil {
			return result(Ignored, "unknown-instance")
		}
		if inst.RecurrenceID != "" && st.find(inst.RecurrenceID) == nil && !st.isOccurrence(inst.RecurrenceID) {
			return result(Ignored, "unknown-instance")
		}
		if attendeeProp(t, replier.Address) == nil {
			crasher = true
			continue
		}
		// SPEC "Ordering": a REPLY to an older SEQUENCE answers a version
		// that no longer exists.
		if seq, _ := st.version(t); inst.Sequence < seq {
			worst = min(worst, -1)
			continue
		}
		last, seen := in.ReplyStamps[replyStampKey(replier.Address, inst.RecurrenceID)]
		if !seen {
			newer = true
			continue
		}
		cmp := compareVersion(0, inst.DTStamp, 0, last)
		if cmp > 0 {
			newer = true
		} else {
			worst = min(worst, cmp)
		}
	}
	desc := Describe(m, in.User.Address)
	if crasher {
		// Seed, "As organizer": the system cannot decide whether an uninvited
		// attendee belongs to the event.
		r := result(NeedsAction, "party-crasher")
		r.Pending = []PendingItem{{Kind: KindPartyCrasher, Reason: "party-crasher", RecurrenceID: m.First().RecurrenceID, Attendee: replier.Address, Summary: desc, Actions: ActionsFor(KindPartyCrasher)}}
		r.Note = "party crasher: " + desc
		return r
	}
	if !newer {
		o, _ := versionOutcome(worst)
		return result(o, "")
	}
	if r, ok := gate(in, true); !ok {
		return r
	}
	// Copy on write: setAttendeeParams copies the component and the
	// attendee it changes; the rest is shared with the stored copy, which
	// nobody changes (a REPLY to a big meeting changes one PARTSTAT of
	// hundreds).
	out := shallowCal(st.cal)
	o := newObject(out)
	stamps := make(map[string]time.Time, len(in.ReplyStamps)+1)
	for k, v := range in.ReplyStamps {
		stamps[k] = v
	}
	for _, inst := range m.Instances {
		key := replyStampKey(replier.Address, inst.RecurrenceID)
		if last, seen := stamps[key]; seen && !inst.DTStamp.After(last) {
			continue
		}
		mp := attendeeProp(inst.Comp, replier.Address)
		if mp == nil {
			continue
		}
		if setAttendeeParams(o, inst, mp) {
			stamps[key] = inst.DTStamp
		}
	}
	sortEvents(out, newObject(out))
	r = result(Applied, "")
	r.Cal = out
	r.ReplyStamps = stamps
	r.Note = desc
	return r
}

// answeringAttendee picks the attendee a REPLY, REFRESH or COUNTER speaks
// for: RFC 5546 wants exactly one, but some clients send the whole list, so
// the one matching the author (or their SENT-BY) is taken; failing that, a
// lone attendee.
func answeringAttendee(m *Message, from, sender string) (Party, bool) {
	for _, inst := range m.Instances {
		for _, a := range inst.Attendees {
			if senderIs(a, from, sender) {
				return a, true
			}
		}
	}
	if len(m.First().Attendees) == 1 {
		return m.First().Attendees[0], true
	}
	return Party{}, false
}

// setAttendeeParams copies the parameters of the answering attendee mp onto
// the stored attendee with the same address (its URI is kept), in the
// override for inst's RECURRENCE-ID, which is created from the master when
// missing. It reports whether the stored object changed.
func setAttendeeParams(o *object, inst *Instance, mp *ical.Prop) bool {
	addr := NormAddr(mp.Value)
	t := o.find(inst.RecurrenceID)
	if t == nil {
		if inst.RecurrenceID == "" {
			return false
		}
		t = o.makeOverride(inst)
		if t == nil {
			return false
		}
	}
	if attendeeProp(t, addr) == nil {
		return false
	}
	t = o.ownAttendees(t)
	sp := attendeeProp(t, addr)
	sp.Params = cloneParams(sp.Params)
	// RSVP asked for this answer; the answer settles it unless renewed.
	sp.Params.Del(ical.ParamRSVP)
	for k, v := range mp.Params {
		switch k {
		case "SCHEDULE-STATUS", "SCHEDULE-FORCE-SEND":
			continue // RFC 6638 server-side parameters, never taken from mail
		}
		sp.Params[k] = append([]string(nil), v...)
	}
	if sp.Params.Get(ical.ParamParticipationStatus) == "" {
		sp.Params.Set(ical.ParamParticipationStatus, "NEEDS-ACTION")
	}
	return true
}

// makeOverride creates the override for inst's RECURRENCE-ID from the master
// (RFC 5545 §3.8.4.4): a copy without RRULE/RDATE/EXDATE, starting at the
// recurrence instant, with the master's length.
func (o *object) makeOverride(inst *Instance) *ical.Component {
	master := o.master()
	rp := inst.Comp.Props.Get(ical.PropRecurrenceID)
	if master == nil || rp == nil {
		return nil
	}
	c := cloneComp(master)
	for _, name := range []string{ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates, "EXRULE"} {
		c.Props.Del(name)
	}
	rt, err := inst.zones.PropTime(rp)
	if err != nil {
		return nil
	}
	// RECURRENCE-ID and DTSTART are written the way the master writes
	// DTSTART (its TZID or UTC or DATE), whatever zone the message used.
	start := cloneProp(*rp)
	start.Name = ical.PropDateTimeStart
	delete(start.Params, "RANGE")
	if ds := master.Props.Get(ical.PropDateTimeStart); ds != nil {
		start = cloneProp(*ds)
		start.Value = formatLike(ds, rt.T, o)
		if de := master.Props.Get(ical.PropDateTimeEnd); de != nil {
			ts, e1 := o.zones.PropTime(ds)
			te, e2 := o.zones.PropTime(de)
			if e1 == nil && e2 == nil {
				end := cloneProp(*de)
				end.Value = formatLike(de, rt.T.Add(te.T.Sub(ts.T)), o)
				c.Props.Set(&end)
			}
		}
	}
	rid := cloneProp(start)
	rid.Name = ical.PropRecurrenceID
	c.Props.Set(&rid)
	c.Props.Set(&start)
	o.cal.Children = append(o.cal.Children, c)
	return c
}

// formatLike formats t the way property p is written (UTC, DATE, or local
// time in p's TZID).
func formatLike(p *ical.Prop, t time.Time, o *object) string {
	if strings.EqualFold(p.Params.Get(ical.ParamValue), "DATE") || len(strings.TrimSpace(p.Value)) == 8 {
		return t.Format("20060102")
	}
	if tz := p.Params.Get(ical.ParamTimezoneID); tz != "" {
		if loc, err := o.zones.Location(tz); err == nil {
			return t.In(loc).Format("20060102T150405")
		}
	}
	if strings.HasSuffix(strings.TrimSpace(p.Value), "Z") {
		return t.UTC().Format("20060102T150405Z")
	}
	return t.Format("20060102T150405")
}
