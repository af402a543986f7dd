package itip_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip"
	"imipd/itip/ics"
	"imipd/itip/icstest"
)

// Every message imipd generates (issue 4, "What each action sends"),
// produced through the public API, written with ics.Marshal, read back with
// ics.Decode and itip.ParseMessage, and checked against RFC 5546's
// restriction table for its method (restrictions_test.go).

const (
	orgAddr   = "org@example.org"
	bobAddr   = "bob@example.com" // the attendee user
	carolAddr = "carol@example.net"
	daveAddr  = "dave@example.net"
	erinAddr  = "erin@example.net"
	genUID    = "gen-1@example.org"
)

var (
	genNow   = time.Date(2026, 2, 20, 8, 30, 0, 0, time.UTC)
	bobUser  = itip.User{Address: bobAddr, Policy: itip.Always}
	orgUser  = itip.User{Address: orgAddr, Policy: itip.Always}
	genStamp = genNow.Format("20060102T150405Z")
)

// berlin is the Europe/Berlin zone the fixtures here put first.
const berlin = icstest.Berlin

const newYork = `BEGIN:VTIMEZONE
TZID:America/New_York
BEGIN:STANDARD
DTSTART:19701101T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700308T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
`

// invitation is a weekly event with one moved instance (9 March), as the
// organizer sends it: SEQUENCE 2 on the series, 3 on the override, an alarm,
// three attendees, and a VTIMEZONE nothing refers to.
const invitation = `BEGIN:VCALENDAR
PRODID:-//Example//Organizer//EN
VERSION:2.0
METHOD:REQUEST
` + berlin + newYork + `BEGIN:VEVENT
UID:` + genUID + `
SEQUENCE:2
DTSTAMP:20260210T100000Z
DTSTART;TZID=Europe/Berlin:20260302T100000
DTEND;TZID=Europe/Berlin:20260302T110000
RRULE:FREQ=WEEKLY;COUNT=6
SUMMARY:Weekly sync
LOCATION:Room 1
DESCRIPTION:Agenda in the wiki
STATUS:CONFIRMED
ORGANIZER;CN=Org:mailto:` + orgAddr + `
ATTENDEE;CN=Org;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:` + orgAddr + `
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:` + bobAddr + `
ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:` + carolAddr + `
BEGIN:VALARM
ACTION:DISPLAY
TRIGGER:-PT15M
DESCRIPTION:Weekly sync
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:` + genUID + `
SEQUENCE:3
DTSTAMP:20260210T100000Z
RECURRENCE-ID;TZID=Europe/Berlin:20260309T100000
DTSTART;TZID=Europe/Berlin:20260309T140000
DTEND;TZID=Europe/Berlin:20260309T150000
SUMMARY:Weekly sync (moved)
ORGANIZER;CN=Org:mailto:` + orgAddr + `
ATTENDEE;CN=Org;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:` + orgAddr + `
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:` + bobAddr + `
ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:` + carolAddr + `
END:VEVENT
END:VCALENDAR
`

// movedInstance is the RECURRENCE-ID key of the override.
const movedInstance = "20260309T090000Z"

func genCal(t *testing.T, s string) *ical.Calendar {
	t.Helper()
	cal, err := ics.Decode([]byte(strings.ReplaceAll(s, "\n", "\r\n")), ics.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func genMsg(t *testing.T, s string) *itip.Message {
	t.Helper()
	m, err := itip.ParseMessage(genCal(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// organizerCopy is the organizer's stored event: the invitation without
// METHOD, Bob accepted.
func organizerCopy(t *testing.T) *ical.Calendar {
	s := strings.Replace(invitation, "METHOD:REQUEST\n", "", 1)
	s = strings.ReplaceAll(s, "CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE", "CN=Bob;PARTSTAT=ACCEPTED")
	return genCal(t, s)
}

// attendeeCopy runs the invitation through Apply for Bob and returns the
// stored copy and the pending item.
func attendeeCopy(t *testing.T, s string, stored *ical.Calendar) (*ical.Calendar, itip.PendingItem, *itip.Message) {
	t.Helper()
	m := genMsg(t, s)
	r := itip.Apply(itip.Input{Msg: m, Stored: stored, User: bobUser, From: orgAddr, Now: genNow.Add(-time.Hour)})
	if r.Cal == nil || len(r.Pending) != 1 {
		t.Fatalf("invitation: %s/%s, pending %v", r.Outcome, r.Reason, r.Pending)
	}
	return r.Cal, r.Pending[0], m
}

// atOrganizer applies an attendee's message at the organizer and returns
// the result.
func atOrganizer(t *testing.T, s, from string) (itip.Result, *itip.Message, *ical.Calendar) {
	t.Helper()
	m := genMsg(t, s)
	st := organizerCopy(t)
	r := itip.Apply(itip.Input{Msg: m, Stored: st, User: orgUser, From: from, Now: genNow.Add(-time.Hour)})
	return r, m, st
}

func decide(t *testing.T, d itip.Decision) itip.Result {
	t.Helper()
	d.Now = genNow
	r, err := itip.Respond(d)
	if err != nil {
		t.Fatalf("Respond %s/%s: %v", d.Kind, d.Action, err)
	}
	return r
}

// sent is what one generated message must look like.
type sent struct {
	method itip.Method
	to     []string
	auto   bool
	// seq maps RECURRENCE-ID value ("" for the master) to the SEQUENCE the
	// component must carry; the components of the message are exactly these.
	seq map[string]int
	// partstat is the replier's PARTSTAT in a REPLY.
	partstat string
	check    func(t *testing.T, cal *ical.Calendar)
}

func TestGeneratedMessages(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T) itip.Result
		want []sent
	}{}

	// Attendee answers an invitation (RFC 5546 §3.2.3), whole series and one
	// instance.
	for _, a := range []struct{ action, partstat string }{{"accept", "ACCEPTED"}, {"tentative", "TENTATIVE"}, {"decline", "DECLINED"}} {
		cases = append(cases, struct {
			name string
			run  func(t *testing.T) itip.Result
			want []sent
		}{
			name: "invitation-" + a.action,
			run: func(t *testing.T) itip.Result {
				st, p, m := attendeeCopy(t, invitation, nil)
				return decide(t, itip.Decision{Kind: p.Kind, Action: a.action, Msg: m, Stored: st, User: bobUser})
			},
			want: []sent{{method: itip.Reply, to: []string{orgAddr}, partstat: a.partstat,
				seq: map[string]int{"": 2, "20260309T100000": 3}}},
		}, struct {
			name string
			run  func(t *testing.T) itip.Result
			want []sent
		}{
			name: "invitation-instance-" + a.action,
			run: func(t *testing.T) itip.Result {
				st, p, m := attendeeCopy(t, invitation, nil)
				return decide(t, itip.Decision{Kind: p.Kind, Action: a.action, RecurrenceID: movedInstance, Msg: m, Stored: st, User: bobUser})
			},
			want: []sent{{method: itip.Reply, to: []string{orgAddr}, partstat: a.partstat,
				seq: map[string]int{"20260309T100000": 3}}},
		})
	}

	cases = append(cases, []struct {
		name string
		run  func(t *testing.T) itip.Result
		want []sent
	}{
		{
			// The moved instance came without ORGANIZER (ParseMessage needs
			// it in one component only): the REPLY for that instance still
			// names the organizer (§3.2.3 ORGANIZER 1) and is sent.
			name: "instance-without-organizer",
			run: func(t *testing.T) itip.Result {
				i := strings.LastIndex(invitation, "ORGANIZER;CN=Org:mailto:"+orgAddr+"\n")
				s := invitation[:i] + invitation[i+len("ORGANIZER;CN=Org:mailto:"+orgAddr+"\n"):]
				st, p, m := attendeeCopy(t, s, nil)
				return decide(t, itip.Decision{Kind: p.Kind, Action: "accept", RecurrenceID: movedInstance, Msg: m, Stored: st, User: bobUser})
			},
			want: []sent{{method: itip.Reply, to: []string{orgAddr}, partstat: "ACCEPTED",
				seq: map[string]int{"20260309T100000": 3}}},
		},
		{
			// A forwarded invitation (Bob not on the list, nothing stored):
			// answering makes Bob a party crasher at the organizer.
			name: "forwarded-accept",
			run: func(t *testing.T) itip.Result {
				s := strings.ReplaceAll(invitation, "ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:"+bobAddr+"\n", "")
				m := genMsg(t, s)
				return decide(t, itip.Decision{Kind: itip.KindInvitation, Action: "accept", Msg: m, User: bobUser})
			},
			want: []sent{{method: itip.Reply, to: []string{orgAddr}, partstat: "ACCEPTED",
				seq: map[string]int{"": 2, "20260309T100000": 3}}},
		},
		{
			// The organizer moves the series (SEQUENCE 4): Bob's answer is
			// reset and he answers again.
			name: "rescheduled-accept",
			run: func(t *testing.T) itip.Result {
				st, p, m := attendeeCopy(t, invitation, nil)
				r := decide(t, itip.Decision{Kind: p.Kind, Action: "accept", Msg: m, Stored: st, User: bobUser})
				moved := strings.Replace(strings.Replace(invitation, "SEQUENCE:2", "SEQUENCE:4", 1), "DTSTART;TZID=Europe/Berlin:20260302T100000\nDTEND;TZID=Europe/Berlin:20260302T110000", "DTSTART;TZID=Europe/Berlin:20260302T120000\nDTEND;TZID=Europe/Berlin:20260302T130000", 1)
				moved = strings.Replace(moved, "SEQUENCE:3", "SEQUENCE:4", 1)
				moved = strings.ReplaceAll(moved, "DTSTAMP:20260210T100000Z", "DTSTAMP:20260215T100000Z")
				st2, p2, m2 := attendeeCopy(t, moved, r.Cal)
				if p2.Kind != itip.KindRescheduled {
					t.Fatalf("update: pending %s, want rescheduled", p2.Kind)
				}
				return decide(t, itip.Decision{Kind: p2.Kind, Action: "accept", Msg: m2, Stored: st2, User: bobUser})
			},
			want: []sent{{method: itip.Reply, to: []string{orgAddr}, partstat: "ACCEPTED",
				seq: map[string]int{"": 4, "20260309T100000": 4},
				check: func(t *testing.T, cal *ical.Calendar) {
					for _, c := range cal.Children {
						if c.Name == ical.CompEvent && c.Props.Get(ical.PropRecurrenceID) == nil {
							if v := c.Props.Get(ical.PropDateTimeStart); v == nil || v.Value != "20260302T120000" {
								t.Errorf("REPLY DTSTART %v, want the rescheduled 20260302T120000", v)
							}
						}
					}
				}}},
		},
		{
			// Organizer adds a party crasher (docs/rules.md "User interaction";
			// RFC 5546 §3.2.2): REQUEST to the newcomer and an update to the
			// others.
			name: "party-crasher-add",
			run: func(t *testing.T) itip.Result {
				reply := `BEGIN:VCALENDAR
PRODID:-//Example//Dave//EN
VERSION:2.0
METHOD:REPLY
BEGIN:VEVENT
UID:` + genUID + `
SEQUENCE:2
DTSTAMP:20260211T100000Z
ORGANIZER:mailto:` + orgAddr + `
ATTENDEE;CN=Dave;PARTSTAT=ACCEPTED:mailto:` + daveAddr + `
END:VEVENT
END:VCALENDAR
`
				r, m, st := atOrganizer(t, reply, daveAddr)
				if len(r.Pending) != 1 || r.Pending[0].Kind != itip.KindPartyCrasher {
					t.Fatalf("crasher: %s/%s %v", r.Outcome, r.Reason, r.Pending)
				}
				p := r.Pending[0]
				return decide(t, itip.Decision{Kind: p.Kind, Action: "add", Attendee: p.Attendee, RecurrenceID: p.RecurrenceID, Msg: m, Stored: st, User: orgUser})
			},
			want: []sent{
				{method: itip.Request, to: []string{daveAddr}, seq: map[string]int{"": 2, "20260309T100000": 3}, check: hasAttendee(daveAddr)},
				{method: itip.Request, to: []string{bobAddr, carolAddr}, seq: map[string]int{"": 2, "20260309T100000": 3}, check: hasAttendee(daveAddr)},
			},
		},
		{
			// Organizer accepts Carol's COUNTER (RFC 5546 §3.2.7): the event
			// takes the proposal, SEQUENCE+1, REQUEST to all attendees.
			name: "counter-accept",
			run: func(t *testing.T) itip.Result {
				p, m, st := counterAt(t)
				return decide(t, itip.Decision{Kind: p.Kind, Action: "accept", Attendee: p.Attendee, RecurrenceID: p.RecurrenceID, Msg: m, Stored: st, User: orgUser})
			},
			want: []sent{{method: itip.Request, to: []string{bobAddr, carolAddr}, seq: map[string]int{"": 3, "20260309T100000": 4},
				check: func(t *testing.T, cal *ical.Calendar) {
					for _, c := range cal.Children {
						if c.Name != ical.CompEvent || c.Props.Get(ical.PropRecurrenceID) != nil {
							continue
						}
						if v := c.Props.Get(ical.PropDateTimeStart); v.Value != "20260302T080000" || v.Params.Get(ical.ParamTimezoneID) != "America/New_York" {
							t.Errorf("DTSTART %s %v, want the proposed America/New_York 20260302T080000", v.Value, v.Params)
						}
						if v := c.Props.Get(ical.PropDateTimeEnd); v.Value != "20260302T090000" {
							t.Errorf("DTEND %s, want the proposed 20260302T090000", v.Value)
						}
					}
				}}},
		},
		{
			// Organizer declines the COUNTER (RFC 5546 §3.2.8).
			name: "counter-decline",
			run: func(t *testing.T) itip.Result {
				p, m, st := counterAt(t)
				return decide(t, itip.Decision{Kind: p.Kind, Action: "decline", Attendee: p.Attendee, RecurrenceID: p.RecurrenceID, Msg: m, Stored: st, User: orgUser})
			},
			want: []sent{{method: itip.DeclineCounter, to: []string{carolAddr}, seq: map[string]int{"": 2}, check: hasAttendee(carolAddr)}},
		},
		{
			// A REFRESH from someone not on the list is the organizer's
			// decision; "send" answers it with the current event.
			name: "refresh-send",
			run: func(t *testing.T) itip.Result {
				r, m, st := atOrganizer(t, refreshFrom(erinAddr), erinAddr)
				if len(r.Pending) != 1 || r.Pending[0].Kind != itip.KindRefresh {
					t.Fatalf("refresh: %s/%s %v", r.Outcome, r.Reason, r.Pending)
				}
				p := r.Pending[0]
				return decide(t, itip.Decision{Kind: p.Kind, Action: "send", Attendee: p.Attendee, Msg: m, Stored: st, User: orgUser})
			},
			want: []sent{{method: itip.Request, to: []string{erinAddr}, seq: map[string]int{"": 2, "20260309T100000": 3}}},
		},
		{
			// REFRESH from an attendee: the current event as REQUEST,
			// automatically (RFC 5546 §3.2.6).
			name: "apply-refresh",
			run: func(t *testing.T) itip.Result {
				m := genMsg(t, refreshFrom(carolAddr))
				return itip.Apply(itip.Input{Msg: m, Stored: organizerCopy(t), User: orgUser, From: carolAddr, Now: genNow})
			},
			want: []sent{{method: itip.Request, to: []string{carolAddr}, auto: true, seq: map[string]int{"": 2, "20260309T100000": 3}}},
		},
		{
			// ADD for an event Bob does not have: REFRESH to the organizer
			// (RFC 5546 §3.2.4).
			name: "apply-add-unknown",
			run: func(t *testing.T) itip.Result {
				add := `BEGIN:VCALENDAR
PRODID:-//Example//Organizer//EN
VERSION:2.0
METHOD:ADD
` + berlin + `BEGIN:VEVENT
UID:` + genUID + `
SEQUENCE:5
DTSTAMP:20260212T100000Z
DTSTART;TZID=Europe/Berlin:20260420T100000
DTEND;TZID=Europe/Berlin:20260420T110000
SUMMARY:Weekly sync (extra)
ORGANIZER:mailto:` + orgAddr + `
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:` + bobAddr + `
END:VEVENT
END:VCALENDAR
`
				return itip.Apply(itip.Input{Msg: genMsg(t, add), User: bobUser, From: orgAddr, Now: genNow})
			},
			want: []sent{{method: itip.Refresh, to: []string{orgAddr}, auto: true, seq: map[string]int{"": 0},
				check: hasAttendee(bobAddr)}},
		},
	}...)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.run(t)
			if len(r.Send) != len(c.want) {
				t.Fatalf("sent %d messages, want %d: %+v", len(r.Send), len(c.want), r.Send)
			}
			for i, out := range r.Send {
				checkSent(t, out, c.want[i])
			}
		})
	}
}

// counterAt applies Carol's COUNTER (the series one hour earlier, in New
// York time, with the original Berlin zone still attached) at the organizer.
func counterAt(t *testing.T) (itip.PendingItem, *itip.Message, *ical.Calendar) {
	t.Helper()
	counter := `BEGIN:VCALENDAR
PRODID:-//Example//Carol//EN
VERSION:2.0
METHOD:COUNTER
` + berlin + newYork + `BEGIN:VEVENT
UID:` + genUID + `
SEQUENCE:2
DTSTAMP:20260211T100000Z
DTSTART;TZID=America/New_York:20260302T080000
DTEND;TZID=America/New_York:20260302T090000
SUMMARY:Weekly sync
ORGANIZER:mailto:` + orgAddr + `
ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:` + carolAddr + `
COMMENT:Can we do 8 my time?
END:VEVENT
END:VCALENDAR
`
	r, m, st := atOrganizer(t, counter, carolAddr)
	if len(r.Pending) != 1 || r.Pending[0].Kind != itip.KindCounter {
		t.Fatalf("counter: %s/%s %v", r.Outcome, r.Reason, r.Pending)
	}
	return r.Pending[0], m, st
}

func refreshFrom(addr string) string {
	return `BEGIN:VCALENDAR
PRODID:-//Example//Attendee//EN
VERSION:2.0
METHOD:REFRESH
BEGIN:VEVENT
UID:` + genUID + `
DTSTAMP:20260211T100000Z
ORGANIZER:mailto:` + orgAddr + `
ATTENDEE:mailto:` + addr + `
END:VEVENT
END:VCALENDAR
`
}

func hasAttendee(addr string) func(t *testing.T, cal *ical.Calendar) {
	return func(t *testing.T, cal *ical.Calendar) {
		t.Helper()
		for _, c := range cal.Children {
			if c.Name != ical.CompEvent {
				continue
			}
			found := false
			for _, a := range c.Props[ical.PropAttendee] {
				found = found || address.Normalize(a.Value) == addr
			}
			if !found {
				t.Errorf("component %v without ATTENDEE %s", c.Props.Get(ical.PropRecurrenceID), addr)
			}
		}
	}
}

func checkSent(t *testing.T, out itip.Outgoing, w sent) {
	t.Helper()
	if out.Method != w.method {
		t.Errorf("Outgoing.Method %s, want %s", out.Method, w.method)
	}
	to := slices.Clone(out.To)
	slices.Sort(to)
	if !slices.Equal(to, w.to) {
		t.Errorf("%s to %v, want %v", out.Method, out.To, w.to)
	}
	if out.Auto != w.auto {
		t.Errorf("%s Auto %v, want %v", out.Method, out.Auto, w.auto)
	}
	wantFrom := bobAddr
	if w.method == itip.Request || w.method == itip.DeclineCounter {
		wantFrom = orgAddr
	}
	if out.From != wantFrom {
		t.Errorf("%s from %s, want %s", out.Method, out.From, wantFrom)
	}
	if out.SentBy != "" {
		t.Errorf("%s SentBy %q without a delegate", out.Method, out.SentBy)
	}
	raw := ics.Marshal(out.Cal)
	if raw == nil {
		t.Fatalf("%s: ics.Marshal failed", out.Method)
	}
	defer func() {
		if t.Failed() {
			t.Logf("%s to %v:\n%s", out.Method, out.To, raw)
		}
	}()
	cal, err := ics.Decode(raw, ics.Limits{})
	if err != nil {
		t.Fatalf("%s: our own output does not decode: %v", out.Method, err)
	}
	m, err := itip.ParseMessage(cal)
	if err != nil {
		t.Fatalf("%s: our own output is not valid iTIP: %v", out.Method, err)
	}
	if m.Method != w.method {
		t.Errorf("METHOD %s, want %s", m.Method, w.method)
	}
	if m.UID != genUID {
		t.Errorf("UID %q, want %q", m.UID, genUID)
	}
	checkRestrictions(t, w.method, cal)
	var rids []string
	for _, c := range cal.Children {
		if c.Name != ical.CompEvent {
			continue
		}
		rid := ""
		if p := c.Props.Get(ical.PropRecurrenceID); p != nil {
			rid = p.Value
		}
		rids = append(rids, rid)
		switch p := c.Props.Get(ical.PropDateTimeStamp); {
		case p == nil:
			t.Errorf("component %q: no DTSTAMP", rid)
		case p.Value != genStamp:
			t.Errorf("component %q: DTSTAMP %s, want the time of sending %s (RFC 5545 §3.8.7.2)", rid, p.Value, genStamp)
		}
		want, ok := w.seq[rid]
		if !ok {
			t.Errorf("unexpected component %q", rid)
			continue
		}
		got := 0
		if p := c.Props.Get(ical.PropSequence); p != nil {
			got = atoi(p.Value)
		}
		if got != want {
			t.Errorf("component %q: SEQUENCE %d, want %d", rid, got, want)
		}
		if w.method == itip.Reply {
			as := c.Props[ical.PropAttendee]
			if len(as) != 1 || address.Normalize(as[0].Value) != bobAddr {
				t.Errorf("component %q: REPLY attendees %v, want only %s (RFC 5546 §3.2.3)", rid, as, bobAddr)
			} else {
				if ps := as[0].Params.Get(ical.ParamParticipationStatus); ps != w.partstat {
					t.Errorf("component %q: PARTSTAT %s, want %s", rid, ps, w.partstat)
				}
				if as[0].Params.Get(ical.ParamRSVP) != "" {
					t.Errorf("component %q: REPLY ATTENDEE keeps RSVP", rid)
				}
			}
			if o := c.Props.Get(ical.PropOrganizer); o == nil || address.Normalize(o.Value) != orgAddr {
				t.Errorf("component %q: REPLY ORGANIZER %v, want %s", rid, o, orgAddr)
			}
			for _, name := range []string{ical.PropRecurrenceRule, ical.PropExceptionDates, ical.PropRecurrenceDates, ical.PropDescription, ical.PropLocation, ical.PropStatus} {
				if c.Props.Get(name) != nil {
					t.Logf("component %q: REPLY carries %s (allowed by §3.2.3, not needed)", rid, name)
				}
			}
		}
	}
	if len(rids) != len(w.seq) {
		t.Errorf("components %q, want %d (%v)", rids, len(w.seq), w.seq)
	}
	if w.check != nil {
		w.check(t, cal)
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range strings.TrimSpace(s) {
		n = n*10 + int(r-'0')
	}
	return n
}
