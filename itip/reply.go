package itip

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"

	"imipd/address"
)

// applyReply handles REPLY (RFC 5546 §3.2.3) at the organizer: only the
// replying attendee's PARTSTAT and its parameters change; every other
// property of the REPLY is dropped silently (docs/rules.md
// "Methods"; RFC 5546 §3.2.3). A REPLY without
// ORGANIZER (Outlook) is matched by UID. An attendee not on the list is a
// party crasher: a pending decision for the organizer.
func applyReply(in *Input) Result {
	m := in.Msg
	st, replier, r, ok := atOrganizer(in)
	if !ok {
		return r
	}
	// What the answer may teach the organizer's copy depends on who wrote
	// it (replyParams): with Force, an unverified author teaches nothing.
	v := authorVouch(in, attendeeSpeaker(st, replier))
	crasher := false
	newer := false
	worst := 1
	for _, inst := range m.Instances {
		t := st.targetInstance(inst.RecurrenceID)
		if t == nil {
			return result(Ignored, ReasonUnknownInstance)
		}
		if inst.RecurrenceID != "" && t.RecurrenceID != inst.RecurrenceID && !st.isOccurrence(inst.RecurrenceID) {
			return result(Ignored, ReasonUnknownInstance)
		}
		if t.attendeeIndex(replier.Address) < 0 {
			crasher = true
			continue
		}
		if cmp := replyOrder(inst, t, replier.Address, in.ReplyStamps); cmp > 0 {
			newer = true
		} else {
			worst = min(worst, cmp)
		}
	}
	desc := Describe(m, &in.User)
	if crasher {
		// docs/rules.md "User interaction", as organizer: imipd cannot decide
		// whether an uninvited attendee belongs to the event.
		r := result(NeedsAction, ReasonPartyCrasher)
		r.Pending = []PendingItem{{Kind: KindPartyCrasher, Reason: ReasonPartyCrasher, RecurrenceID: m.First().RecurrenceID, Attendee: replier.Address, Summary: desc, Actions: ActionsFor(KindPartyCrasher)}}
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
	o := st.shallowCopy()
	stamps := make(map[string]time.Time, len(in.ReplyStamps)+len(m.Instances))
	for k, v := range in.ReplyStamps {
		stamps[k] = v
	}
	for _, inst := range m.Instances {
		key := replyStampKey(replier.Address, inst.RecurrenceID)
		if !replyStampNewer(stamps, key, inst.DTStamp) {
			continue
		}
		j := inst.attendeeIndex(replier.Address)
		if j < 0 {
			continue
		}
		if setAttendeeParams(o, inst, replier.Address, &inst.Comp.Props[ical.PropAttendee][j], v) {
			stamps[key] = inst.DTStamp
		}
	}
	sortEvents(o.Cal, o)
	r = result(Applied, "")
	r.Cal = o.Cal
	r.ReplyStamps = stamps
	r.Note = desc
	return r
}

// setAttendeeParams takes the parameters of attendee addr's property mp in
// a REPLY onto the stored attendee with the same address (its URI is
// kept), in the override for inst's RECURRENCE-ID, which is created from
// the master when missing; replyParams decides which (v: how the sender
// rule vouched for the author). It reports whether the stored object
// changed.
func setAttendeeParams(o *Event, inst *Instance, addr string, mp *ical.Prop, v vouch) bool {
	t := o.instance(inst.RecurrenceID)
	if t == nil {
		if inst.RecurrenceID == "" || o.shareOverride(inst) == nil {
			return false
		}
		t = o.Instances[len(o.Instances)-1]
	}
	j := t.attendeeIndex(addr)
	if j < 0 {
		return false
	}
	c := o.ownAttendees(t.Comp)
	sp := &c.Props[ical.PropAttendee][j]
	sp.Params = replyParams(sp.Params, mp.Params, v)
	return true
}

// replyParams is the one rule for what an attendee's answer may change in
// the organizer's copy of its ATTENDEE property (docs/rules.md "Methods": REPLY: as in
// Open-Xchange, attendees edit their own parameters; RFC 5545 §3.8.4.1 lists
// the ATTENDEE parameters). It returns stored's parameters with these taken
// from reply, each only with a valid value:
//
//   - PARTSTAT: NEEDS-ACTION, ACCEPTED, DECLINED, TENTATIVE or DELEGATED
//     (RFC 5545 §3.2.12, the values for VEVENT);
//   - RSVP: TRUE or FALSE (§3.2.17); the stored RSVP is dropped anyway,
//     since the answer settles the request for one unless renewed;
//   - CN (§3.2.2) and LANGUAGE (§3.2.10, an RFC 5646 tag);
//   - CUTYPE (§3.2.3) and ROLE (§3.2.16) from their registered values;
//   - DELEGATED-TO and DELEGATED-FROM (§3.2.4, §3.2.5), mailto addresses,
//     only when the author is verified for the attendee (sender.go);
//   - SENT-BY (§3.2.18), a mailto address, only when the attendee wrote the
//     answer: a SENT-BY enters the organizer's copy only from the party's
//     own mail (docs/rules.md "Sender checks").
//
// Everything else (MEMBER and DIR, RFC 6638's SCHEDULE-* server
// parameters, X- and unknown parameters) keeps its stored value, and so does
// a parameter whose value is not valid. Text values are taken only when
// they are what RFC 5545 §3.1 allows in a quoted parameter value
// (QSAFE-CHAR: no control character, no line break, no DQUOTE), so a CN
// carrying RFC 6868 ^n or ^' never becomes a line or a quote wherever the
// event is written.
func replyParams(stored, reply ical.Params, v vouch) ical.Params {
	// A shallow copy: below, a parameter's value list is only ever replaced
	// or deleted, never written into, so the lists stay shared with the
	// stored copy.
	out := maps.Clone(stored)
	if out == nil {
		out = make(ical.Params, 2)
	}
	delete(out, ical.ParamRSVP)
	// One pass over the REPLY's parameters (each name sets its own
	// parameter, so their order does not matter).
	for name, vs := range reply {
		switch name {
		case ical.ParamParticipationStatus, ical.ParamRSVP, ical.ParamCalendarUserType, ical.ParamRole:
			if len(vs) == 1 && qsafe(vs[0]) {
				if val := strings.ToUpper(vs[0]); slices.Contains(replyEnum(name), val) {
					out[name] = []string{val}
				}
			}
		case ical.ParamCommonName:
			if len(vs) == 1 && qsafe(vs[0]) {
				out[name] = []string{vs[0]}
			}
		case ical.ParamLanguage:
			if len(vs) == 1 && qsafe(vs[0]) && languageTag(vs[0]) {
				out[name] = []string{vs[0]}
			}
		case ical.ParamDelegatedTo, ical.ParamDelegatedFrom:
			if v.verified() && len(vs) > 0 {
				if addrs, ok := calAddresses(vs); ok {
					out[name] = addrs
				}
			}
		case "SENT-BY":
			if v == vouchSelf && len(vs) == 1 {
				if addrs, ok := calAddresses(vs); ok {
					out[name] = addrs[:1]
				}
			}
		}
	}
	if param(out, ical.ParamParticipationStatus) == "" {
		out[ical.ParamParticipationStatus] = []string{"NEEDS-ACTION"}
	}
	return out
}

// replyEnum lists the registered values of an enumerated ATTENDEE parameter
// a REPLY may change (RFC 5545 §3.2.12, §3.2.17, §3.2.3, §3.2.16).
func replyEnum(name string) []string {
	switch name {
	case ical.ParamParticipationStatus:
		return partStats
	case ical.ParamRSVP:
		return rsvpValues
	case ical.ParamCalendarUserType:
		return cuTypes
	case ical.ParamRole:
		return roles
	}
	return nil
}

var (
	partStats  = []string{"NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"}
	rsvpValues = []string{"TRUE", "FALSE"}
	cuTypes    = []string{"INDIVIDUAL", "GROUP", "RESOURCE", "ROOM", "UNKNOWN"}
	roles      = []string{"CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT"}
)

// qsafe reports whether v is valid UTF-8 made of RFC 5545 §3.1 QSAFE-CHAR
// (WSP, any printable character but DQUOTE, non-ASCII): a value that can be
// written as one quoted parameter value without any escape.
func qsafe(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r == '"' || r == 0x7f || r < 0x20 && r != '\t' || r >= 0x80 && r < 0xa0 {
			return false
		}
	}
	return true
}

// languageTag reports whether v has the shape of an RFC 5646 language tag:
// subtags of 1 to 8 letters or digits joined by '-'.
func languageTag(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for _, sub := range strings.Split(v, "-") {
		if sub == "" || len(sub) > 8 {
			return false
		}
		for _, c := range sub {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
				return false
			}
		}
	}
	return true
}

// calAddresses checks parameter values that must be cal-addresses (RFC 5545
// §3.3.3) and returns them as "mailto:" plus the normalised address: imipd
// only knows mailto addresses, and one without '@' or with a space, comma,
// quote or control character is not one.
func calAddresses(vs []string) ([]string, bool) {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if len(v) < 7 || !strings.EqualFold(v[:7], "mailto:") || !qsafe(v) {
			return nil, false
		}
		a := address.Normalize(v)
		if strings.Count(a, "@") != 1 || strings.HasPrefix(a, "@") || strings.HasSuffix(a, "@") || strings.ContainsAny(a, " \t,;:") {
			return nil, false
		}
		out = append(out, "mailto:"+a)
	}
	return out, true
}

// makeOverride creates the override for inst's RECURRENCE-ID from the master
// (RFC 5545 §3.8.4.4): a copy without RRULE/RDATE/EXDATE, starting at the
// recurrence instant, with the master's length.
func (o *Event) makeOverride(inst *Instance) *ical.Component {
	return o.override(inst, cloneComp)
}

// shareOverride is makeOverride for copy on write: the override shares the
// master's properties (and VALARMs), so it is changed only by replacing
// them (Props.Set, ownAttendees), never in place.
func (o *Event) shareOverride(inst *Instance) *ical.Component {
	return o.override(inst, shallowComp)
}

// override makes the override for inst from dup(master).
func (o *Event) override(inst *Instance, dup func(*ical.Component) *ical.Component) *ical.Component {
	mi := o.instance("")
	rp := first(inst.Comp, ical.PropRecurrenceID)
	if mi == nil || rp == nil {
		return nil
	}
	master := mi.Comp
	rt, err := inst.zones.PropTime(rp)
	if err != nil {
		return nil
	}
	c := dup(master)
	for _, name := range []string{ical.PropRecurrenceRule, ical.PropRecurrenceDates, ical.PropExceptionDates, "EXRULE"} {
		c.Props.Del(name)
	}
	// RECURRENCE-ID and DTSTART are written the way the master writes
	// DTSTART (its TZID or UTC or DATE), whatever zone the message used.
	var start ical.Prop
	if ds := first(master, ical.PropDateTimeStart); ds == nil {
		start = cloneProp(*rp)
		start.Name = ical.PropDateTimeStart
		delete(start.Params, "RANGE")
	} else {
		start = cloneProp(*ds)
		start.Value = formatLike(ds, rt.T, o)
		if de := first(master, ical.PropDateTimeEnd); de != nil {
			ts, e1 := o.Zones.PropTime(ds)
			te, e2 := o.Zones.PropTime(de)
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
	o.Cal.Children = append(o.Cal.Children, c)
	// The override is the master's instance (its SEQUENCE, DTSTAMP and
	// parties are the master's properties) with its RECURRENCE-ID.
	ni := *mi
	ni.Comp, ni.Range = c, ""
	if ni.RecurrenceID, err = InstanceKey(&rid, o.Zones); err != nil {
		ni.RecurrenceID = strings.TrimSpace(rid.Value)
	}
	o.Instances = append(o.Instances, &ni)
	return c
}

// formatLike formats t the way property p is written (UTC, DATE, or local
// time in p's TZID).
func formatLike(p *ical.Prop, t time.Time, o *Event) string {
	if strings.EqualFold(param(p.Params, ical.ParamValue), "DATE") || len(strings.TrimSpace(p.Value)) == 8 {
		return t.Format("20060102")
	}
	if tz := param(p.Params, ical.ParamTimezoneID); tz != "" {
		if loc, err := o.Zones.Location(tz); err == nil {
			return t.In(loc).Format("20060102T150405")
		}
	}
	if strings.HasSuffix(strings.TrimSpace(p.Value), "Z") {
		return t.UTC().Format("20060102T150405Z")
	}
	return t.Format("20060102T150405")
}
