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
	return held(in, "sender-mismatch"), false
}

// organizerSpeaker is the organizer as the sender rule sees it: the stored
// organizer's address when there is a stored copy (never the one the message
// claims), the SENT-BY values stored for it, and the message's claim.
func organizerSpeaker(st *object, m *Message) speaker {
	org := m.Organizer()
	s := speaker{Address: org.Address, Claimed: org.SentBy}
	if st != nil {
		s.Address = st.organizer().Address
		s.Known = st.sentBys(ical.PropOrganizer, s.Address)
	}
	return s
}

// sentBys lists the SENT-BY values the stored copy holds for party addr in
// properties named prop (ORGANIZER or ATTENDEE), in any component.
func (o *object) sentBys(prop, addr string) []string {
	var out []string
	if o == nil || addr == "" {
		return nil
	}
	for _, c := range o.events() {
		for _, p := range c.Props[prop] {
			if address.Normalize(p.Value) != addr {
				continue
			}
			if sb := sentByOf(&p); sb != "" && !slices.Contains(out, sb) {
				out = append(out, sb)
			}
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
func settleOrganizerSentBy(cal *ical.Calendar, prev *object, from string) {
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
