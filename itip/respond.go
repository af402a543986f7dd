package itip

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip/ics"
)

// Decision is a user's answer to a pending item (docs/rules.md "Admin CLI": pending
// respond). Held items ("apply") are not decided here: the caller runs Apply
// again with Input.Force, so the ordering rules still hold.
type Decision struct {
	Kind         Kind
	Action       string
	RecurrenceID string
	Attendee     string         // party crasher, counter proposer, refresh asker
	Msg          *Message       // the message that caused the item
	Stored       *ical.Calendar // the user's current copy, nil if none
	User         User
	Now          time.Time
	// SentBy is the delegate deciding on the user's behalf (docs/rules.md "Working
	// on behalf of"), "" when the user decides. The messages sent carry it
	// as SENT-BY of the user's ATTENDEE or ORGANIZER and as their Sender.
	SentBy string
}

// ErrAction is returned for an action the item does not allow.
var ErrAction = fmt.Errorf("itip: action not allowed")

// Respond applies the decision and returns the new stored object and the
// iTIP messages the decision sends (RFC 5546 §3.2).
func Respond(d Decision) (Result, error) {
	if d.SentBy != "" && !d.User.IsDelegate(d.SentBy) {
		return Result{}, fmt.Errorf("%w: %s is not a delegate of %s", ErrAction, d.SentBy, d.User.Address)
	}
	r, err := respond(d)
	if err == nil && d.SentBy != "" {
		for i := range r.Send {
			r.Send[i].SentBy = d.SentBy
			markSentBy(r.Send[i].Cal, r.Send[i].Method, &d.User, d.SentBy)
		}
	}
	return r, err
}

// markSentBy sets SENT-BY (RFC 5545 §3.2.18) on the user's ATTENDEE of a
// REPLY, or on the ORGANIZER of what the organizer sends.
func markSentBy(cal *ical.Calendar, m Method, u *User, delegate string) {
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		if m == Reply {
			if p := userAttendee(c, u); p != nil {
				p.Params.Set("SENT-BY", "mailto:"+delegate)
			}
			continue
		}
		if p := first(c, ical.PropOrganizer); p != nil {
			p.Params.Set("SENT-BY", "mailto:"+delegate)
		}
	}
}

func respond(d Decision) (Result, error) {
	valid := ActionsFor(d.Kind)
	if !slices.Contains(valid, "ignore") {
		valid = append(valid, "ignore")
	}
	if !slices.Contains(valid, d.Action) || d.Kind == KindHeld && d.Action == "apply" {
		article := "a"
		if d.Kind != "" && strings.ContainsRune("aeiou", rune(d.Kind[0])) {
			article = "an"
		}
		return Result{}, fmt.Errorf("%w: %q on %s %s item: want %s or %s", ErrAction, d.Action, article, d.Kind,
			strings.Join(valid[:len(valid)-1], ", "), valid[len(valid)-1])
	}
	if d.Action == "ignore" {
		return Result{Outcome: Ignored, Reason: ReasonIgnored}, nil
	}
	if d.Msg == nil {
		return Result{}, fmt.Errorf("itip: pending item without its message")
	}
	switch d.Kind {
	case KindInvitation, KindRescheduled:
		return answer(d)
	case KindPartyCrasher:
		return addCrasher(d)
	case KindCounter:
		if d.Action == "accept" {
			return acceptCounter(d)
		}
		return declineCounter(d)
	case KindRefresh:
		if d.Stored == nil {
			return Result{}, fmt.Errorf("itip: event %s no longer stored", d.Msg.UID)
		}
		r := Result{Outcome: Applied, Reason: ReasonRefreshAnswered}
		r.Send = []Outgoing{{Method: Request, From: d.User.Address, To: []string{d.Attendee}, Cal: refreshAnswer(readStored(d.Stored), d.Attendee, d.Now)}}
		return r, nil
	}
	return Result{}, fmt.Errorf("%w: unknown kind %q", ErrAction, d.Kind)
}

var partstatOf = map[string]string{"accept": "ACCEPTED", "tentative": "TENTATIVE", "decline": "DECLINED"}

// answer sets the user's PARTSTAT and sends the REPLY to the organizer
// (RFC 5546 §3.2.3): only the user's ATTENDEE, nothing else changed.
func answer(d Decision) (Result, error) {
	ps := partstatOf[d.Action]
	var out *ical.Calendar
	if d.Stored == nil {
		// Not invited (forwarded invitation): answering adds the user, who
		// becomes a party crasher at the organizer (docs/rules.md "User interaction").
		var comps []*ical.Component
		for _, inst := range d.Msg.Instances {
			comps = append(comps, cloneComp(inst.Comp))
		}
		out = newStoredCal(d.Msg.Cal, comps...)
		// Who wrote the invitation is not known here: a SENT-BY it names
		// stays out of the stored copy (sender.go, settleOrganizerSentBy).
		settleOrganizerSentBy(out, nil, "")
	} else {
		out = cloneCal(d.Stored)
	}
	o := readStored(out)
	reply := ical.NewCalendar()
	reply.Props.SetText(ical.PropVersion, "2.0")
	reply.Props.SetText(ical.PropProductID, ProdID)
	reply.Props.SetText(ical.PropMethod, string(Reply))
	var org string
	// docs/rules.md "Sender checks": the author of a REPLY is the answering
	// attendee, so it comes from the user's address as the invitation
	// named it (an alias or a subaddress, docs/rules.md "Users and addresses"),
	// else the primary address; an organizer's check then finds it.
	from := d.User.Address
	// RFC 5546 §3.2.3: ORGANIZER is required (1) in every component of a
	// REPLY; an override stored without one takes the event's organizer.
	var orgProp *ical.Prop
	for _, c := range o.events() {
		if orgProp = first(c, ical.PropOrganizer); orgProp != nil {
			break
		}
	}
	if d.RecurrenceID != "" && o.find(d.RecurrenceID) == nil && d.Stored != nil {
		// One occurrence of the series: it gets its override (RFC 5546
		// §3.2.3, a REPLY with RECURRENCE-ID for one instance).
		if err := o.addOverride(d.RecurrenceID); err != nil {
			return Result{}, err
		}
	}
	for _, c := range o.events() {
		rid := o.rid(c)
		if d.RecurrenceID != "" && rid != d.RecurrenceID {
			continue
		}
		p := userAttendee(c, &d.User)
		if p == nil {
			np := ical.NewProp(ical.PropAttendee)
			np.Value = "mailto:" + d.User.Address
			c.Props.Add(np)
			p = &c.Props[ical.PropAttendee][len(c.Props[ical.PropAttendee])-1]
		}
		p.Params.Set(ical.ParamParticipationStatus, ps)
		p.Params.Del(ical.ParamRSVP)
		if a := address.Normalize(p.Value); a != "" {
			from = a
		}
		rc := ical.NewComponent(ical.CompEvent)
		for _, name := range []string{ical.PropUID, ical.PropSequence, ical.PropRecurrenceID, ical.PropOrganizer, ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropDuration, ical.PropSummary} {
			if v := c.Props.Get(name); v != nil {
				cp := cloneProp(*v)
				rc.Props.Set(&cp)
			}
		}
		if first(rc, ical.PropOrganizer) == nil && orgProp != nil {
			cp := cloneProp(*orgProp)
			rc.Props.Set(&cp)
		}
		ap := cloneProp(*p)
		rc.Props.Set(&ap)
		rc.Props.SetDateTime(ical.PropDateTimeStamp, d.Now.UTC())
		reply.Children = append(reply.Children, rc)
		if op := first(rc, ical.PropOrganizer); op != nil {
			org = address.Normalize(op.Value)
		}
	}
	if len(reply.Children) == 0 {
		return Result{}, fmt.Errorf("itip: no component %q in event %s", d.RecurrenceID, d.Msg.UID)
	}
	// RFC 5546 §3.2.3: VTIMEZONE "MUST be present if any date/time refers
	// to a timezone" (0 or 1); only the zones the REPLY uses, not every
	// zone of the stored copy.
	usedTimezones(reply, out)
	r := Result{Outcome: Applied, Reason: answerReason[ps], Cal: out,
		Obsolete: ReasonAnswered, ObsoleteInstance: d.RecurrenceID}
	if org != "" && !d.User.Is(org) {
		r.Send = []Outgoing{{Method: Reply, From: from, To: []string{org}, Cal: reply}}
	}
	return r, nil
}

// answerReason is the reason of the user's answer by its PARTSTAT.
var answerReason = map[string]Reason{"ACCEPTED": "accepted", "TENTATIVE": "tentative", "DECLINED": "declined"}

// ErrNoInstance is returned for an answer to an instance the event does not
// have.
var ErrNoInstance = errors.New("itip: no such occurrence")

// addOverride adds the override of the occurrence rid (a RECURRENCE-ID
// key, Instance.RecurrenceID) made from the master (RFC 5545 §3.8.4.4);
// an instant the series does not make is ErrNoInstance, naming the event.
func (o *Event) addOverride(rid string) error {
	m := o.master()
	if m == nil || !o.isOccurrence(rid) {
		return fmt.Errorf("%w: %s is not an occurrence of %q (UID %s)", ErrNoInstance, rid, o.summary(), o.uid())
	}
	p := ical.Prop{Name: ical.PropRecurrenceID, Value: rid, Params: ical.Params{}}
	if len(rid) == 8 {
		p.Params.Set(ical.ParamValue, "DATE")
	}
	c := ical.NewComponent(ical.CompEvent)
	c.Props.Set(&p)
	if o.makeOverride(&Instance{Comp: c, zones: o.Zones}) == nil {
		return fmt.Errorf("%w: %s of %q (UID %s)", ErrNoInstance, rid, o.summary(), o.uid())
	}
	return nil
}

// addCrasher puts an uninvited attendee on the list (docs/rules.md "User
// interaction"): the newcomer gets the event, the others an update.
func addCrasher(d Decision) (Result, error) {
	if d.Stored == nil {
		return Result{}, fmt.Errorf("itip: event %s no longer stored", d.Msg.UID)
	}
	out := cloneCal(d.Stored)
	o := readStored(out)
	var ap *ical.Prop
	for _, inst := range d.Msg.Instances {
		if p := attendeeProp(inst.Comp, d.Attendee); p != nil {
			ap = p
		}
	}
	if ap == nil {
		return Result{}, fmt.Errorf("itip: attendee %s not in the reply", d.Attendee)
	}
	for _, c := range o.events() {
		if attendeeProp(c, d.Attendee) == nil && (d.RecurrenceID == "" || o.rid(c) == d.RecurrenceID) {
			// The newcomer's parameters pass the REPLY rule (replyParams),
			// as an answer that vouches for nothing: no SENT-BY, no
			// DELEGATED-*.
			np := ical.Prop{Name: ical.PropAttendee, Value: "mailto:" + d.Attendee, Params: replyParams(nil, ap.Params, vouchNone)}
			c.Props.Add(&np)
		}
	}
	r := Result{Outcome: Applied, Reason: ReasonAdded, Cal: out}
	r.Send = []Outgoing{{Method: Request, From: d.User.Address, To: []string{d.Attendee}, Cal: stamped(asMethod(out, Request), d.Now)}}
	if others := otherAttendees(o, &d.User, d.Attendee); len(others) > 0 {
		r.Send = append(r.Send, Outgoing{Method: Request, From: d.User.Address, To: others, Cal: stamped(asMethod(out, Request), d.Now)})
	}
	return r, nil
}

// acceptCounter takes the proposal into the event, SEQUENCE+1, and sends the
// update to every attendee (RFC 5546 §3.2.7).
func acceptCounter(d Decision) (Result, error) {
	if d.Stored == nil {
		return Result{}, fmt.Errorf("itip: event %s no longer stored", d.Msg.UID)
	}
	out := cloneCal(d.Stored)
	mergeTimezones(out, d.Msg.Cal)
	o := readStored(out)
	prop := d.Msg.First()
	t := o.find(prop.RecurrenceID)
	if t == nil {
		if t = o.makeOverride(prop); t == nil {
			return Result{}, fmt.Errorf("itip: event %s has no component %q", d.Msg.UID, prop.RecurrenceID)
		}
	}
	before := cloneComp(t)
	for _, name := range []string{ical.PropDateTimeStart, ical.PropDateTimeEnd, ical.PropDuration, ical.PropLocation, ical.PropSummary, ical.PropDescription} {
		if p := prop.Comp.Props.Get(name); p != nil {
			cp := cloneProp(*p)
			t.Props.Set(&cp)
			if name == ical.PropDateTimeEnd {
				t.Props.Del(ical.PropDuration)
			} else if name == ical.PropDuration {
				t.Props.Del(ical.PropDateTimeEnd)
			}
		}
	}
	moved := timingChanged(before, t, o.Zones, o.Zones)
	for _, c := range o.events() {
		seq, _ := o.version(c)
		setInt(c, ical.PropSequence, seq+1)
		c.Props.SetDateTime(ical.PropDateTimeStamp, d.Now.UTC())
	}
	for i := range t.Props[ical.PropAttendee] {
		p := &t.Props[ical.PropAttendee][i]
		switch a := address.Normalize(p.Value); {
		case a == d.Attendee:
			p.Params.Set(ical.ParamParticipationStatus, "ACCEPTED")
		case moved && !d.User.Is(a):
			p.Params.Set(ical.ParamParticipationStatus, "NEEDS-ACTION")
		}
	}
	r := Result{Outcome: Applied, Reason: ReasonCounterAccepted, Cal: out}
	if to := otherAttendees(o, &d.User, ""); len(to) > 0 {
		r.Send = []Outgoing{{Method: Request, From: d.User.Address, To: to, Cal: asMethod(out, Request)}}
	}
	return r, nil
}

// declineCounter answers a COUNTER with DECLINECOUNTER (RFC 5546 §3.2.8).
func declineCounter(d Decision) (Result, error) {
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, ProdID)
	cal.Props.SetText(ical.PropMethod, string(DeclineCounter))
	in := d.Msg.First()
	c := ical.NewComponent(ical.CompEvent)
	c.Props.SetText(ical.PropUID, d.Msg.UID)
	seq := in.Sequence
	if st := readStored(d.Stored); st != nil {
		if t := st.target(in.RecurrenceID); t != nil {
			seq, _ = st.version(t)
		}
	}
	setInt(c, ical.PropSequence, seq)
	c.Props.SetDateTime(ical.PropDateTimeStamp, d.Now.UTC())
	op := ical.NewProp(ical.PropOrganizer)
	op.Value = "mailto:" + d.User.Address
	c.Props.Set(op)
	ap := ical.NewProp(ical.PropAttendee)
	ap.Value = "mailto:" + d.Attendee
	c.Props.Set(ap)
	if p := first(in.Comp, ical.PropRecurrenceID); p != nil {
		cp := cloneProp(*p)
		c.Props.Set(&cp)
	}
	cal.Children = append(cal.Children, c)
	// RFC 5546 §3.2.8: VTIMEZONE only if a date/time refers to it (here at
	// most the RECURRENCE-ID), not the zones of the proposal.
	usedTimezones(cal, d.Msg.Cal)
	r := Result{Outcome: Applied, Reason: ReasonCounterDeclined}
	r.Send = []Outgoing{{Method: DeclineCounter, From: d.User.Address, To: []string{d.Attendee}, Cal: cal}}
	return r, nil
}

// usedTimezones adds to dst the VTIMEZONEs of src that a property of dst's
// components refers to by TZID.
func usedTimezones(dst, src *ical.Calendar) {
	used := map[string]bool{}
	for _, c := range dst.Children {
		for _, ps := range c.Props {
			for _, p := range ps {
				if tz := param(p.Params, ical.ParamTimezoneID); tz != "" {
					used[tz] = true
				}
			}
		}
	}
	var tz []*ical.Component
	for _, c := range src.Children {
		if id := propValue(c, ical.PropTimezoneID); c.Name == ical.CompTimezone && used[id] {
			tz = append(tz, cloneComp(c))
			used[id] = false
		}
	}
	dst.Children = append(tz, dst.Children...)
}

// otherAttendees lists the attendees of the object other than the user and
// skip, once each.
func otherAttendees(o *Event, u *User, skip string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range o.events() {
		for _, p := range c.Props[ical.PropAttendee] {
			a := address.Normalize(p.Value)
			if a == "" || a == skip || u.Is(a) || seen[a] {
				continue
			}
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// stamped sets DTSTAMP of every component to now (a message being sent).
func stamped(cal *ical.Calendar, now time.Time) *ical.Calendar {
	for _, c := range cal.Children {
		if c.Name == ical.CompEvent {
			c.Props.SetDateTime(ical.PropDateTimeStamp, now.UTC())
		}
	}
	return cal
}

// instanceLayouts are the forms ParseInstance reads as a wall time in the
// event's zone (the second and third as a day), after the UTC and RFC 3339
// forms.
var instanceLayouts = []string{"20060102T150405", "2006-01-02T15:04:05", "2006-01-02T15:04", "20060102", "2006-01-02"}

// ParseInstance reads an occurrence of the stored event as a user types it
// (`imipctl respond -instance`) and returns its RECURRENCE-ID key
// (Instance.RecurrenceID):
//
//   - an instant: `20250311T130000Z`, `2025-03-11T14:00:00+01:00`;
//   - a wall time in the zone of the event's DTSTART: `20250311T140000`,
//     `2025-03-11T14:00` (the RECURRENCE-ID as the event writes it);
//   - a day: `20250311`, `2025-03-11`: the occurrence that day at the time
//     of day the series starts (for an all-day event, that day).
//
// An instant the series does not make (RFC 5545 §3.8.5.1 EXDATE
// included) and no override has is ErrNoInstance, naming the event.
func ParseInstance(s string, stored *ical.Calendar) (string, error) {
	o := readStored(stored)
	if o == nil || len(o.events()) == 0 {
		return "", fmt.Errorf("%w: no event", ErrNoInstance)
	}
	ref := o.master()
	if ref == nil {
		ref = o.events()[0]
	}
	ds, err := o.Zones.PropTime(first(ref, ical.PropDateTimeStart))
	if err != nil {
		return "", fmt.Errorf("%w: %q (UID %s) has no start to count occurrences from: %v", ErrNoInstance, o.summary(), o.uid(), err)
	}
	s = strings.TrimSpace(s)
	var t time.Time
	ok := false
	if u, err := time.Parse("20060102T150405Z", strings.ToUpper(s)); err == nil {
		t, ok = u, true
	} else if u, err := time.Parse(time.RFC3339, s); err == nil {
		t, ok = u, true
	}
	for i, layout := range instanceLayouts {
		if ok {
			break
		}
		w, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if i >= 3 { // a day
			w = w.Add(time.Duration(ds.T.Hour())*time.Hour + time.Duration(ds.T.Minute())*time.Minute + time.Duration(ds.T.Second())*time.Second)
		}
		if ds.AllDay || ds.Floating {
			t = w
		} else {
			t = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, ds.T.Location())
		}
		ok = true
	}
	if !ok {
		return "", fmt.Errorf("%w: %q is not a date or time: write 20250311T140000 (in the event's zone), 20250311T130000Z or 2025-03-11", ErrNoInstance, s)
	}
	if ds.AllDay {
		t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	key := timeKey(ics.Time{T: t, AllDay: ds.AllDay, Floating: ds.Floating})
	if _, ok := parseKey(key); !ok {
		return "", fmt.Errorf("%w: %s is out of range", ErrNoInstance, s)
	}
	if o.find(key) == nil && (o.master() == nil || !o.isOccurrence(key)) {
		return "", fmt.Errorf("%w: %s is not an occurrence of %q (UID %s)", ErrNoInstance, s, o.summary(), o.uid())
	}
	return key, nil
}
