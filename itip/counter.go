package itip

// applyCounter handles COUNTER (RFC 5546 §3.2.7) at the organizer: a
// proposal from an attendee is always the organizer's decision (docs/rules.md
// "Policy": pending under every policy), so it becomes a pending item with
// accept / decline.
func applyCounter(in *Input) Result {
	m := in.Msg
	st, who, r, ok := atOrganizer(in)
	if !ok {
		return r
	}
	if !st.hasParty(who.Address) {
		return result(Ignored, ReasonNotAttendee)
	}
	if answersOlder(st, m) {
		return result(Outdated, "")
	}
	if !in.Force && in.AuthFail != "" {
		return held(in, Reason(in.AuthFail))
	}
	desc := Describe(m, &in.User)
	r = result(NeedsAction, ReasonCounter)
	r.Pending = []PendingItem{{Kind: KindCounter, Reason: ReasonCounter, RecurrenceID: m.First().RecurrenceID, Attendee: who.Address, Summary: desc, Actions: ActionsFor(KindCounter)}}
	r.Note = desc
	return r
}

// applyDeclineCounter handles DECLINECOUNTER (RFC 5546 §3.2.8) at the
// attendee: recorded on the event's history, nothing changes.
func applyDeclineCounter(in *Input) Result {
	m := in.Msg
	st := readStored(in.Stored)
	if st == nil {
		return result(Ignored, ReasonUnknownEvent)
	}
	if r, ok := checkSender(in, organizerSpeaker(st, m)); !ok {
		return r
	}
	if answersOlder(st, m) {
		return result(Outdated, "")
	}
	r := result(Applied, ReasonRecorded)
	r.Note = Describe(m, &in.User)
	return r
}

// atOrganizer is the common start of the methods an attendee sends to the
// organizer (REPLY §3.2.3, REFRESH §3.2.6, COUNTER §3.2.7): the event must be
// stored with the user as its organizer (a REPLY without ORGANIZER, as
// Outlook sends it, is matched by UID), and the author must be the attendee
// the message speaks for. ok is false when r is the result.
func atOrganizer(in *Input) (st *Event, who Party, r Result, ok bool) {
	st = readStored(in.Stored)
	if st == nil {
		return nil, Party{}, result(Ignored, ReasonUnknownEvent), false
	}
	if !in.User.Is(st.organizer().Address) {
		return nil, Party{}, result(Ignored, ReasonNotOrganizer), false
	}
	if mo := in.Msg.Organizer().Address; mo != "" && !in.User.Is(mo) {
		return nil, Party{}, result(Ignored, ReasonNotOrganizer), false
	}
	who, r, ok = checkAttendeeSender(in, st)
	if !ok {
		return nil, Party{}, r, false
	}
	return st, who, Result{}, true
}
