package itip

// applyCounter handles COUNTER (RFC 5546 §3.2.7) at the organizer: a
// proposal from an attendee is always the organizer's decision (SPEC
// "Policy": pending under every policy), so it becomes a pending item with
// accept / decline.
func applyCounter(in *Input) Result {
	m := in.Msg
	st := newObject(in.Stored)
	if st == nil {
		return result(Ignored, "unknown-event")
	}
	if !in.User.Is(st.organizer().Address) {
		return result(Ignored, "not-organizer")
	}
	who, ok := answeringAttendee(m, in.From, in.Sender)
	if !ok {
		return held(in, "sender-mismatch")
	}
	if r, ok := checkSender(in, who); !ok {
		return r
	}
	if !st.hasParty(who.Address) {
		return result(Ignored, "not-attendee")
	}
	if t := st.target(m.First().RecurrenceID); t != nil {
		if seq, _ := st.version(t); m.Sequence() < seq {
			return result(Outdated, "")
		}
	}
	if !in.Force && in.AuthFail != "" {
		return held(in, in.AuthFail)
	}
	desc := Describe(m, in.User.Address)
	r := result(NeedsAction, "counter")
	r.Pending = []PendingItem{{Kind: KindCounter, Reason: "counter", RecurrenceID: m.First().RecurrenceID, Attendee: who.Address, Summary: desc, Actions: ActionsFor(KindCounter)}}
	r.Note = desc
	return r
}

// applyDeclineCounter handles DECLINECOUNTER (RFC 5546 §3.2.8) at the
// attendee: recorded on the event's history, nothing changes.
func applyDeclineCounter(in *Input) Result {
	m := in.Msg
	st := newObject(in.Stored)
	if st == nil {
		return result(Ignored, "unknown-event")
	}
	so := st.organizer()
	if r, ok := checkSender(in, Party{Address: so.Address, SentBy: m.Organizer().SentBy}); !ok {
		return r
	}
	// RFC 5546 §3.2.8 and §2.1.5: a DECLINECOUNTER carries the SEQUENCE of
	// the version whose counter it declines; for an older one it answers a
	// version that no longer exists (SPEC "Ordering": outdated).
	if t := st.target(m.First().RecurrenceID); t != nil {
		if seq, _ := st.version(t); m.Sequence() < seq {
			return result(Outdated, "")
		}
	}
	r := result(Applied, "recorded")
	r.Note = Describe(m, in.User.Address)
	return r
}
