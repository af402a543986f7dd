package itip

import "github.com/emersion/go-ical"

// applyRefresh handles REFRESH (RFC 5546 §3.2.6) at the organizer: an
// attendee asking for the current event gets it back as REQUEST,
// automatically; anyone else gets nothing and a pending item is recorded
// (RFC 5546 §6.1.5, unauthorized REFRESH).
func applyRefresh(in *Input) Result {
	m := in.Msg
	st, asker, r, ok := atOrganizer(in)
	if !ok {
		return r
	}
	if !st.hasParty(asker.Address) {
		r = result(NeedsAction, "not-attendee")
		r.Pending = []PendingItem{{Kind: KindRefresh, Reason: "not-attendee", Attendee: asker.Address, Summary: Describe(m, in.User.Address), Actions: ActionsFor(KindRefresh)}}
		return r
	}
	if r, ok := gate(in, true); !ok {
		return r
	}
	if in.AutoSubmitted {
		// Loop protection: never answer an automatic message automatically.
		return result(Ignored, "auto-submitted")
	}
	r = result(Applied, "refresh-answered")
	r.Send = []Outgoing{{Method: Request, From: in.User.Address, To: []string{asker.Address}, Cal: stamped(asMethod(st.cal, Request), in.Now), Auto: true}}
	r.Note = Describe(m, in.User.Address)
	return r
}

// asMethod returns a copy of a stored object as an iTIP message.
func asMethod(cal *ical.Calendar, m Method) *ical.Calendar {
	out := cloneCal(cal)
	out.Props.SetText(ical.PropMethod, string(m))
	return out
}
