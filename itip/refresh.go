package itip

import (
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-ical"
)

// applyRefresh handles REFRESH (RFC 5546 §3.2.6) at the organizer: an
// attendee asking for the current event gets it back as REQUEST,
// automatically; anyone else gets nothing and a pending item is recorded
// (RFC 5546 §6.1.6, unauthorized REFRESH). The author must be the attendee
// or a SENT-BY known for them (atOrganizer, sender.go); the answer goes to
// the attendee, never to a SENT-BY, after the gates, and carries only what
// refreshAnswer lets the attendee see.
func applyRefresh(in *Input) Result {
	m := in.Msg
	st, asker, r, ok := atOrganizer(in)
	if !ok {
		return r
	}
	if !st.hasParty(asker.Address) {
		r = result(NeedsAction, ReasonNotAttendee)
		r.Pending = []PendingItem{{Kind: KindRefresh, Reason: ReasonNotAttendee, Attendee: asker.Address, Summary: Describe(m, &in.User), Actions: ActionsFor(KindRefresh)}}
		return r
	}
	if r, ok := gate(in, true); !ok {
		return r
	}
	if in.AutoSubmitted {
		// Loop protection: never answer an automatic message automatically.
		return result(Ignored, ReasonAutoSubmitted)
	}
	r = result(Applied, ReasonRefreshAnswered)
	r.Send = []Outgoing{{Method: Request, From: in.User.Address, To: []string{asker.Address}, Cal: refreshAnswer(st, asker.Address, in.Now), Auto: true}}
	r.Note = Describe(m, &in.User)
	return r
}

// asMethod returns a copy of a stored object as an iTIP message.
func asMethod(cal *ical.Calendar, m Method) *ical.Calendar {
	out := cloneCal(cal)
	out.Props.SetText(ical.PropMethod, string(m))
	return out
}

// refreshAnswer builds the REQUEST that answers requester's REFRESH from the
// organizer's copy st: only the instances that include the requester, with
// only what they may see (docs/rules.md "Sender checks"; RFC 5546 §3.2.6).
//
//   - The master goes when the requester is on it. An override that does
//     not list the requester is an instance the organizer took them off:
//     it becomes an EXDATE of the master (RFC 5545 §3.8.5.1) rather than
//     being left out, since left out the RRULE would bring the instance
//     back with the master's data (RFC 5546 §3.2.2: a REQUEST's master
//     stands for every instance no override names).
//   - Every override that lists the requester goes, with or without the
//     master (a REQUEST may carry instances only, RFC 5546 §3.2.2).
//   - The organizer's own data stays home (ownData): alarms, TRANSP,
//     CLASS, and client state in X- properties.
//
// A requester on no component (the organizer chose "send" on a pending
// REFRESH from a non-attendee) gets every component, still without the
// organizer's own data. Only the VTIMEZONEs the answer uses go with it.
func refreshAnswer(st *Event, requester string, now time.Time) *ical.Calendar {
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, ProdID)
	cal.Props.SetText(ical.PropMethod, string(Request))
	var master *ical.Component
	var exdates []ical.Prop
	invited := false
	for _, c := range st.events() {
		if attendeeProp(c, requester) != nil {
			invited = true
		}
	}
	for _, c := range st.events() {
		on := !invited || attendeeProp(c, requester) != nil
		rid := first(c, ical.PropRecurrenceID)
		switch {
		case on:
			nc := withoutOwnData(c)
			nc.Props.SetDateTime(ical.PropDateTimeStamp, now.UTC())
			cal.Children = append(cal.Children, nc)
			if rid == nil {
				master = nc
			}
		case rid != nil:
			ex := cloneProp(*rid)
			ex.Name = ical.PropExceptionDates
			delete(ex.Params, "RANGE")
			exdates = append(exdates, ex)
		}
	}
	if master != nil {
		for i := range exdates {
			master.Props.Add(&exdates[i])
		}
	}
	usedTimezones(cal, st.Cal)
	return cal
}

// withoutOwnData returns a copy of a stored component without what is the
// calendar user's own rather than the event's: VALARMs (RFC 5545 §3.6.6, the
// user's reminders), TRANSP and CLASS (what keepPrivate carries over for an
// attendee), and X- properties in which calendar clients keep per-user state
// (ownDataPrefixes).
func withoutOwnData(c *ical.Component) *ical.Component {
	n := cloneComp(c)
	kept := n.Children[:0]
	for _, ch := range n.Children {
		if ch.Name != ical.CompAlarm {
			kept = append(kept, ch)
		}
	}
	n.Children = kept
	for name := range n.Props {
		if ownProp(name) {
			delete(n.Props, name)
		}
	}
	return n
}

// ownProps are the properties of a stored component that belong to the
// calendar user, not to the event: a REQUEST update keeps the attendee's
// (keepPrivate), a REFRESH answer leaves the organizer's out.
var ownProps = []string{ical.PropTransparency, ical.PropClass}

// ownDataPrefixes name X- properties where calendar clients keep per-user
// state: Thunderbird's X-MOZ- (acknowledged and snoozed alarms), Apple's
// X-APPLE- (travel advisories, needs-reply flags), Outlook's X-MS-OLK-
// (reminder files, inspector state).
var ownDataPrefixes = []string{"X-MOZ-", "X-APPLE-", "X-MS-OLK-"}

func ownProp(name string) bool {
	if slices.Contains(ownProps, name) {
		return true
	}
	for _, p := range ownDataPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
