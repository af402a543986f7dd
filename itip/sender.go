package itip

import (
	"slices"

	"github.com/emersion/go-ical"

	"imipd/address"
)

// The sender rule (docs/rules.md "Sender checks"; RFC 5545 §3.2.18 SENT-BY, RFC 5546
// §6.1 and RFC 6047 §3 on who may send which method). It is the only place
// that decides whether a message's author may speak for a party.
//
// The author is the From address (Input.From). The party is the ORGANIZER
// for REQUEST, ADD, CANCEL, DECLINECOUNTER and PUBLISH, and the answering
// ATTENDEE for REPLY, REFRESH and COUNTER. The author speaks for the party
// when
//
//   - the author is the party's address (vouchSelf), or
//   - the author is a SENT-BY already known for that party (vouchKnown): it
//     stands on that party (the ORGANIZER, or that ATTENDEE) in the user's
//     stored copy of the event, where only the party's own mail or the
//     user's own mail put it (see settleOrganizerSentBy and replyParams), or
//     the party is a local user and the author is one of that user's
//     configured delegates (User.IsDelegate for the recipient,
//     Input.DelegateFor for other local users).
//
// A SENT-BY that only the incoming message names is a claim (vouchClaimed),
// not a proof: anyone can write ORGANIZER;SENT-BY="mailto:me@evil":mailto:boss.
// A claim is enough for nothing but a new invitation, which the user decides
// on anyway ("Sam on behalf of Carol invites you"); everything that changes a
// stored event or makes imipd send mail needs a verified author. A Sender
// header neither vouches for anyone nor makes a mismatch (Google sends
// Sender: calendar-notification@google.com with the organizer in From).

// vouch is how the author of a message relates to the party it speaks for.
type vouch uint8

const (
	vouchNone    vouch = iota // the author is not the party and no SENT-BY names them
	vouchClaimed              // the author is the SENT-BY the incoming message claims
	vouchKnown                // the author is a SENT-BY known for the party
	vouchSelf                 // the author is the party
)

// verified reports whether the author counts as the party itself.
func (v vouch) verified() bool { return v >= vouchKnown }

// speaker is a party a message speaks for, with what the rule may use.
type speaker struct {
	Address string   // the party's address, normalised
	Claimed string   // SENT-BY the incoming message names for the party, "" if none
	Known   []string // SENT-BY values the user's stored copy holds for the party
}

// authorVouch applies the sender rule to the author of in's message and
// party s.
func authorVouch(in *Input, s speaker) vouch {
	from := in.From
	switch {
	case from == "" || s.Address == "":
		return vouchNone
	case from == s.Address:
		return vouchSelf
	case slices.Contains(s.Known, from):
		return vouchKnown
	case in.User.Is(s.Address) && in.User.IsDelegate(from), slices.Contains(in.DelegateFor, s.Address):
		return vouchKnown
	case s.Claimed != "" && from == s.Claimed:
		return vouchClaimed
	}
	return vouchNone
}

// checkSender holds a message whose author is not verified for party s
// (reason sender-mismatch), unless the user forces it.
func checkSender(in *Input, s speaker) (Result, bool) {
	if in.Force || authorVouch(in, s).verified() {
		return Result{}, true
	}
	return held(in, ReasonSenderMismatch), false
}

// checkOrganizerSender is the sender rule for a message from the organizer
// to an event the user has a copy of (st; ADD, CANCEL, REQUEST, PUBLISH):
// another ORGANIZER than the stored one is never auto-applied (the same UID
// from another organizer is how forged updates look), and the author must
// speak for the stored organizer.
func checkOrganizerSender(in *Input, st *Event) (Result, bool) {
	if so := st.organizer(); so.Address != "" && so.Address != in.Msg.Organizer().Address && !in.Force {
		return held(in, ReasonOrganizerChanged), false
	}
	return checkSender(in, organizerSpeaker(st, in.Msg))
}

// checkRequestSender is the sender rule for a REQUEST or PUBLISH (st: the
// stored copy, nil for a new event). The user's own invitation coming back
// (they were a recipient too) is ignored when the user or their delegate
// wrote it: the submission path already recorded it. For a new event a
// SENT-BY only the message names may introduce an invitation, which the
// user decides on anyway; a PUBLISH would be stored without the user, so it
// waits for them.
func checkRequestSender(in *Input, st *Event) (Result, bool) {
	m := in.Msg
	if in.User.Is(m.Organizer().Address) {
		if userWrote(in) {
			return result(Ignored, ReasonOwnMessage), false
		}
		return held(in, ReasonSenderMismatch), false
	}
	if st != nil {
		return checkOrganizerSender(in, st)
	}
	if in.Force {
		return Result{}, true
	}
	switch authorVouch(in, organizerSpeaker(nil, m)) {
	case vouchNone:
		return held(in, ReasonSenderMismatch), false
	case vouchClaimed:
		if m.Method == Publish {
			return held(in, ReasonSenderMismatch), false
		}
	}
	return Result{}, true
}

// checkAttendeeSender is the sender rule for a REPLY, REFRESH or COUNTER to
// the user's event st: the attendee it speaks for (answeringAttendee), whom
// the author must speak for.
func checkAttendeeSender(in *Input, st *Event) (Party, Result, bool) {
	who, found := answeringAttendee(in, st)
	if !found {
		return Party{}, held(in, ReasonSenderMismatch), false
	}
	if r, ok := checkSender(in, attendeeSpeaker(st, who)); !ok {
		return Party{}, r, false
	}
	return who, Result{}, true
}

// userWrote reports whether the user or one of the user's delegates wrote
// the message (docs/rules.md "Working on behalf of"): the only authors of
// the user's own outgoing mail (applyOutgoing) and of the user's own
// invitation coming back.
func userWrote(in *Input) bool {
	return in.User.Is(in.From) || in.User.IsDelegate(in.From)
}

// organizerWrote reports whether the author is the organizer the message
// names (with no stored copy, no SENT-BY is known): the only author whose
// message about an unknown event imipd acts on (cancelUnknown, addUnknown).
func organizerWrote(in *Input) bool {
	return authorVouch(in, organizerSpeaker(nil, in.Msg)) == vouchSelf
}

// organizerSpeaker is the organizer as the sender rule sees it: the stored
// organizer's address when there is a stored copy (never the one the message
// claims), the SENT-BY values stored for it, and the message's claim.
func organizerSpeaker(st *Event, m *Message) speaker {
	org := m.Organizer()
	s := speaker{Address: org.Address, Claimed: org.SentBy}
	if st != nil {
		s.Address = st.organizer().Address
		s.Known = st.sentBys(ical.PropOrganizer, s.Address)
	}
	return s
}

// answeringAttendee picks the attendee a REPLY, REFRESH or COUNTER speaks
// for: RFC 5546 wants exactly one, but some clients send the whole list, so
// the one the sender rule ranks highest for the author is taken (the
// attendee who wrote it, else one the author is a known SENT-BY of in the
// stored copy st, else one the author only claims to be SENT-BY of: then
// checkSender holds the message); failing that, a lone attendee.
func answeringAttendee(in *Input, st *Event) (Party, bool) {
	from := in.From
	best, found := vouchNone, Party{}
	for _, inst := range in.Msg.Instances {
		for _, a := range inst.Attendees {
			s := speaker{Address: a.Address, Claimed: a.SentBy}
			if from != "" && st.hasSentBy(a.Address, from) {
				s.Known = []string{from}
			}
			if v := authorVouch(in, s); v > best {
				best, found = v, a
				if v == vouchSelf {
					return a, true
				}
			}
		}
	}
	if best != vouchNone {
		return found, true
	}
	if len(in.Msg.First().Attendees) == 1 {
		return in.Msg.First().Attendees[0], true
	}
	return Party{}, false
}

// attendeeSpeaker is attendee a of a message as the sender rule sees it:
// the SENT-BY values the stored copy holds for that attendee, and the
// message's claim.
func attendeeSpeaker(st *Event, a Party) speaker {
	return speaker{Address: a.Address, Claimed: a.SentBy, Known: st.sentBys(ical.PropAttendee, a.Address)}
}

// hasSentBy reports whether the stored copy names sb as SENT-BY of
// attendee addr in any component.
func (e *Event) hasSentBy(addr, sb string) bool {
	if e == nil {
		return false
	}
	for _, in := range e.Instances {
		for i := range in.Attendees {
			if a := &in.Attendees[i]; a.Address == addr && a.SentBy == sb {
				return true
			}
		}
	}
	return false
}

// sentBys lists the SENT-BY values the stored copy holds for party addr in
// properties named prop (ORGANIZER or ATTENDEE), in any component.
func (e *Event) sentBys(prop, addr string) []string {
	if e == nil || addr == "" {
		return nil
	}
	var out []string
	add := func(p *Party) {
		if p.Address == addr && p.SentBy != "" && !slices.Contains(out, p.SentBy) {
			out = append(out, p.SentBy)
		}
	}
	for _, in := range e.Instances {
		if prop == ical.PropOrganizer {
			add(&in.Organizer)
			continue
		}
		for i := range in.Attendees {
			add(&in.Attendees[i])
		}
	}
	return out
}

// sentByOf returns the normalised SENT-BY of a property, "" if none.
func sentByOf(p *ical.Prop) string {
	return partyOf(p).SentBy
}

// settleOrganizerSentBy makes the ORGANIZER properties of a copy about to be
// stored hold only verified SENT-BY values (prev is the stored copy before,
// nil for a new one; from the message's author): the SENT-BY the message
// names is kept when the organizer wrote the message or when it is already
// known; otherwise the organizer keeps the SENT-BY the stored copy held for
// it, or none. So a SENT-BY enters a stored copy only through the party's
// own mail (or the user's own, which does not come here), a held message
// the user applies anyway (Input.Force) teaches none, and the organizer's
// own update that names no SENT-BY does not unlearn the known one.
func settleOrganizerSentBy(cal *ical.Calendar, prev *Event, from string) {
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		for i := range c.Props[ical.PropOrganizer] {
			p := &c.Props[ical.PropOrganizer][i]
			addr := address.Normalize(p.Value)
			known := prev.sentBys(ical.PropOrganizer, addr)
			sb := sentByOf(p)
			if sb != "" && (from == addr || slices.Contains(known, sb)) || sb == "" && len(known) == 0 {
				continue
			}
			p.Params = cloneParams(p.Params)
			p.Params.Del("SENT-BY")
			if len(known) > 0 {
				p.Params.Set("SENT-BY", "mailto:"+known[0])
			}
		}
	}
}
