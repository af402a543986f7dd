package itip_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip"
	"imipd/itip/ics"
)

// The sender rule (sender.go, docs/rules.md "Sender checks") through Apply: who may
// speak for the organizer of a stored event, or for an attendee answering
// the organizer.

var senderNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// sentByParam is ";SENT-BY=..." for addr, "" for none.
func sentByParam(addr string) string {
	if addr == "" {
		return ""
	}
	return `;SENT-BY="mailto:` + addr + `"`
}

// senderStored is Bob's copy of Carol's meeting; sentBy is the SENT-BY the
// copy holds for Carol ("" for none).
func senderStored(sentBy string) string {
	sb := sentByParam(sentBy)
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:s1\r\nSEQUENCE:2\r\nDTSTAMP:20261120T100000Z\r\n" +
		"DTSTART:20261203T130000Z\r\nDTEND:20261203T140000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Board\r\n" +
		"ORGANIZER;CN=Carol" + sb + ":mailto:carol@remote.test\r\n" +
		"ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:dave@remote.test\r\n" +
		"END:VEVENT\r\nEND:VCALENDAR\r\n"
}

// senderOrgCopy is Alice's copy of her meeting; sentBy is the SENT-BY it
// holds for Dave.
func senderOrgCopy(sentBy string) string {
	sb := sentByParam(sentBy)
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:s1\r\nSEQUENCE:2\r\nDTSTAMP:20261120T100000Z\r\n" +
		"DTSTART:20261203T130000Z\r\nDTEND:20261203T140000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Board\r\n" +
		"ORGANIZER:mailto:alice@example.test\r\n" +
		"ATTENDEE;PARTSTAT=ACCEPTED:mailto:carol@remote.test\r\nATTENDEE;PARTSTAT=ACCEPTED" + sb + ":mailto:dave@remote.test\r\n" +
		"END:VEVENT\r\nEND:VCALENDAR\r\n"
}

// senderMsg is a message of method for UID s1. For organizer methods the
// ORGANIZER is Carol with SENT-BY claimed; for REPLY, REFRESH and COUNTER
// the ATTENDEE is Dave with SENT-BY claimed, and the ORGANIZER Alice.
func senderMsg(method, claimed string) string {
	sb := sentByParam(claimed)
	var parties string
	switch method {
	case "REPLY", "REFRESH", "COUNTER":
		parties = "ORGANIZER:mailto:alice@example.test\r\nATTENDEE;PARTSTAT=DECLINED" + sb + ":mailto:dave@remote.test\r\n"
	default:
		parties = "ORGANIZER;CN=Carol" + sb + ":mailto:carol@remote.test\r\n" +
			"ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:dave@remote.test\r\n"
	}
	start := "DTSTART:20261203T130000Z\r\nDTEND:20261203T140000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\n"
	if method == "ADD" {
		start = "DTSTART:20261231T130000Z\r\nDTEND:20261231T140000Z\r\n"
	}
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:" + method + "\r\nBEGIN:VEVENT\r\nUID:s1\r\nSEQUENCE:2\r\nDTSTAMP:20261125T100000Z\r\n" +
		start + "SUMMARY:Board (moved to https://evil.example/)\r\n" + parties + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

func senderCal(t testing.TB, s string) *ical.Calendar {
	cal, err := ics.Decode([]byte(s), ics.Limits{})
	if err != nil {
		t.Fatalf("decode: %v\n%s", err, s)
	}
	return cal
}

func senderParse(t testing.TB, s string) *itip.Message {
	m, err := itip.ParseMessage(senderCal(t, s))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, s)
	}
	return m
}

func TestSenderRule(t *testing.T) {
	bob := itip.User{Address: "bob@example.test", Delegates: []string{"sec@example.test"}, Policy: itip.Always}
	alice := itip.User{Address: "alice@example.test", Policy: itip.Always}
	cases := []struct {
		name, method     string
		stored           string // SENT-BY in the stored copy; "-" for no stored copy
		claimed, from    string
		outcome, reason  string
		storedSentBy     string // the organizer's (or Dave's) SENT-BY in what is stored, when something is
		wantOnBehalfDesc bool
	}{
		{"organizer itself", "REQUEST", "", "", "carol@remote.test", "applied", "updated", "", false},
		{"organizer names a SENT-BY: learned", "REQUEST", "", "sam@remote.test", "carol@remote.test", "applied", "updated", "sam@remote.test", false},
		{"known SENT-BY updates", "REQUEST", "sam@remote.test", "sam@remote.test", "sam@remote.test", "applied", "updated", "sam@remote.test", false},
		{"known SENT-BY without naming itself", "REQUEST", "sam@remote.test", "", "sam@remote.test", "applied", "updated", "sam@remote.test", false},
		{"organizer's own update keeps the known SENT-BY", "REQUEST", "sam@remote.test", "", "carol@remote.test", "applied", "updated", "sam@remote.test", false},
		{"known SENT-BY cannot teach another", "REQUEST", "sam@remote.test", "mallory@evil.test", "sam@remote.test", "applied", "updated", "sam@remote.test", false},
		{"self-declared SENT-BY update", "REQUEST", "", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"self-declared SENT-BY beside a known one", "REQUEST", "sam@remote.test", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"stranger", "REQUEST", "", "", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"self-declared SENT-BY cancel", "CANCEL", "", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"known SENT-BY cancel", "CANCEL", "sam@remote.test", "sam@remote.test", "sam@remote.test", "applied", "cancelled", "sam@remote.test", false},
		{"self-declared SENT-BY add", "ADD", "", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"self-declared SENT-BY declinecounter", "DECLINECOUNTER", "", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"new invitation vouched by a SENT-BY only", "REQUEST", "-", "sam@remote.test", "sam@remote.test", "needs-action", "invitation", "", true},
		{"new invitation from the organizer with a SENT-BY", "REQUEST", "-", "sam@remote.test", "carol@remote.test", "needs-action", "invitation", "sam@remote.test", true},
		{"new publish vouched by a SENT-BY only", "PUBLISH", "-", "sam@remote.test", "sam@remote.test", "needs-action", "sender-mismatch", "", false},
		{"new invitation from a stranger", "REQUEST", "-", "sam@remote.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"cancel of an unknown event by a SENT-BY", "CANCEL", "-", "sam@remote.test", "sam@remote.test", "ignored", "unknown-event", "", false},
		{"reply from the attendee", "REPLY", "", "", "dave@remote.test", "applied", "", "", false},
		{"reply from the attendee teaches its SENT-BY", "REPLY", "", "pa@remote.test", "dave@remote.test", "applied", "", "pa@remote.test", false},
		{"reply from a known SENT-BY", "REPLY", "pa@remote.test", "pa@remote.test", "pa@remote.test", "applied", "", "pa@remote.test", false},
		{"reply from a self-declared SENT-BY", "REPLY", "", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"reply: known SENT-BY cannot teach another", "REPLY", "pa@remote.test", "mallory@evil.test", "pa@remote.test", "applied", "", "pa@remote.test", false},
		{"refresh from a self-declared SENT-BY", "REFRESH", "", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
		{"counter from a self-declared SENT-BY", "COUNTER", "", "mallory@evil.test", "mallory@evil.test", "needs-action", "sender-mismatch", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			atOrg := c.method == "REPLY" || c.method == "REFRESH" || c.method == "COUNTER"
			in := itip.Input{User: bob, From: c.from, Sender: c.claimed, Now: senderNow}
			in.Msg = senderParse(t, senderMsg(c.method, c.claimed))
			if atOrg {
				in.User = alice
			}
			if c.stored != "-" {
				s := senderStored(c.stored)
				if atOrg {
					s = senderOrgCopy(c.stored)
				}
				in.Stored = senderCal(t, s)
			}
			r := itip.Apply(in)
			if string(r.Outcome) != c.outcome || string(r.Reason) != c.reason {
				t.Fatalf("got %s/%s, want %s/%s", r.Outcome, r.Reason, c.outcome, c.reason)
			}
			if r.Cal != nil {
				prop, addr := ical.PropOrganizer, "carol@remote.test"
				if atOrg {
					prop, addr = ical.PropAttendee, "dave@remote.test"
				}
				for _, got := range sentBysIn(r.Cal, prop, addr) {
					if got != c.storedSentBy {
						t.Errorf("stored SENT-BY %q, want %q:\n%s", got, c.storedSentBy, ics.Marshal(r.Cal))
					}
				}
			}
			if c.wantOnBehalfDesc {
				if len(r.Pending) != 1 || !strings.Contains(r.Pending[0].Summary, "sam@remote.test on behalf of Carol <carol@remote.test> invites you") {
					t.Errorf("pending %+v: want the summary to say who sends on whose behalf", r.Pending)
				}
			}
		})
	}
}

// TestSenderRuleDelegate: a delegate configured for the local user speaks
// for the user; the user's own invitation sent by the delegate is the
// user's own message.
func TestSenderRuleDelegate(t *testing.T) {
	s := strings.ReplaceAll(senderMsg("REQUEST", "sec@example.test"), "carol@remote.test", "bob@example.test")
	m := senderParse(t, s)
	for _, c := range []struct{ from, reason string }{
		{"sec@example.test", "own-message"},
		{"bob@example.test", "own-message"},
		{"mallory@evil.test", "sender-mismatch"},
	} {
		r := itip.Apply(itip.Input{Msg: m, User: itip.User{Address: "bob@example.test", Delegates: []string{"sec@example.test"}, Policy: itip.Always}, From: c.from, Now: senderNow})
		if string(r.Reason) != c.reason {
			t.Errorf("from %s: %s/%s, want reason %s", c.from, r.Outcome, r.Reason, c.reason)
		}
	}
}

// sentBysIn lists the SENT-BY of every prop property for addr in cal ("" for
// one without).
func sentBysIn(cal *ical.Calendar, prop, addr string) []string {
	var out []string
	for _, c := range cal.Children {
		for _, p := range c.Props[prop] {
			if address.Normalize(p.Value) == addr {
				out = append(out, address.Normalize(p.Params.Get("SENT-BY")))
			}
		}
	}
	return out
}

// FuzzSenderRule checks the sender rule's promises whatever the addresses
// (docs/rules.md "Sender checks"): a stored event changes, or mail is sent about it,
// only when the author is the party itself or a SENT-BY the stored copy
// already names for it (or, for the local user, a configured delegate); a
// SENT-BY enters a stored copy only from the party's own message; a Sender
// header never matters.
func FuzzSenderRule(f *testing.F) {
	methods := []string{"REQUEST", "CANCEL", "ADD", "DECLINECOUNTER", "PUBLISH", "REPLY", "REFRESH", "COUNTER"}
	for i := range methods {
		f.Add(uint8(i), uint8(1), uint8(1), uint8(1), uint8(0), "x@y.test", uint8(0))
		f.Add(uint8(i), uint8(2), uint8(0), uint8(2), uint8(2), "x@y.test", uint8(3))
		f.Add(uint8(i), uint8(3), uint8(3), uint8(3), uint8(4), "Sam@Remote.Test", uint8(16))
	}
	f.Fuzz(func(t *testing.T, method, fromI, claimedI, storedI, senderI uint8, extra string, flags uint8) {
		if !utf8.ValidString(extra) || strings.ContainsAny(extra, "\"\\;:,^") || strings.IndexFunc(extra, func(r rune) bool { return r < 0x21 || r == 0x7f }) >= 0 || len(extra) > 64 {
			return // a SENT-BY value must be writable as a quoted cal-address
		}
		pool := []string{"", "carol@remote.test", "dave@remote.test", "sam@remote.test", "mallory@evil.test", "sec@example.test", "bob@example.test", "alice@example.test", extra}
		pick := func(i uint8) string { return pool[int(i)%len(pool)] }
		meth := methods[int(method)%len(methods)]
		atOrg := meth == "REPLY" || meth == "REFRESH" || meth == "COUNTER"
		party, local := "carol@remote.test", "bob@example.test"
		if atOrg {
			party, local = "dave@remote.test", "alice@example.test"
		}
		claimed, stored := pick(claimedI), pick(storedI)
		if address.Normalize(stored) == party {
			stored = "" // a party's SENT-BY is never the party itself
		}
		in := itip.Input{
			User:   itip.User{Address: local, Delegates: []string{"sec@example.test"}, Policy: []itip.Policy{itip.Always, itip.Known, itip.Never}[int(flags)%3]},
			From:   address.Normalize(pick(fromI)),
			Sender: address.Normalize(pick(senderI)),
			Known:  flags&4 != 0,
			Force:  flags&16 != 0,
			Now:    senderNow,
		}
		in.Msg = senderParse(t, senderMsg(meth, claimed))
		noStored := flags&8 != 0
		if !noStored {
			s := senderStored(stored)
			if atOrg {
				s = senderOrgCopy(stored)
			}
			in.Stored = senderCal(t, s)
		}
		r := itip.Apply(in)
		// The same message with another Sender header decides the same.
		in2 := in
		in2.Sender = "carol@remote.test"
		if r2 := itip.Apply(in2); r2.Outcome != r.Outcome || r2.Reason != r.Reason {
			t.Fatalf("Sender %q gives %s/%s, Sender %q gives %s/%s", in.Sender, r.Outcome, r.Reason, in2.Sender, r2.Outcome, r2.Reason)
		}
		self := in.From == party
		known := !noStored && stored != "" && in.From == address.Normalize(stored)
		if !noStored && !in.Force && !self && !known {
			if r.Cal != nil || len(r.Send) > 0 {
				t.Fatalf("%s from %s (claimed SENT-BY %q, stored %q): %s/%s changed the event or sent %d messages",
					meth, in.From, claimed, stored, r.Outcome, r.Reason, len(r.Send))
			}
		}
		if r.Cal == nil {
			return
		}
		prop := ical.PropOrganizer
		if atOrg {
			prop = ical.PropAttendee
		}
		allowed := map[string]bool{"": true}
		if !noStored {
			allowed[address.Normalize(stored)] = true
		}
		if self {
			allowed[address.Normalize(claimed)] = true
		}
		for _, got := range sentBysIn(r.Cal, prop, party) {
			if !allowed[got] {
				t.Fatalf("%s from %s (claimed %q, stored %q, force %v): stored SENT-BY %q is unverified:\n%s",
					meth, in.From, claimed, stored, in.Force, got, fmt.Sprint(string(ics.Marshal(r.Cal))))
			}
		}
	})
}

// TestAddUnknownRefresh: an ADD for an event the user does not have makes
// imipd ask the organizer with a REFRESH only when the organizer wrote it,
// is not local, the ADD is not automatic, and the gates pass (add.go
// addUnknown; issue 13: ADD was an open relay).
func TestAddUnknownRefresh(t *testing.T) {
	add := func(org, sentBy string) *itip.Message {
		return senderParse(t, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:ADD\r\nBEGIN:VEVENT\r\nUID:u-add\r\nSEQUENCE:1\r\nDTSTAMP:20261125T100000Z\r\n"+
			"DTSTART:20261210T100000Z\r\nORGANIZER"+sentByParam(sentBy)+":mailto:"+org+"\r\nATTENDEE:mailto:bob@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	}
	local := func(a string) bool { return strings.HasSuffix(a, "@example.test") }
	cases := []struct {
		name            string
		msg             *itip.Message
		from            string
		policy          itip.Policy
		known, auto     bool
		authFail        string
		sent            time.Time
		force           bool
		outcome, reason string
		to              string // the REFRESH's recipient, "" for none
	}{
		{"organizer", add("carol@remote.test", ""), "carol@remote.test", itip.Known, true, false, "", time.Time{}, false, "ignored", "refresh-sent", "carol@remote.test"},
		{"organizer with a SENT-BY", add("carol@remote.test", "sam@remote.test"), "carol@remote.test", itip.Always, false, false, "", time.Time{}, false, "ignored", "refresh-sent", "carol@remote.test"},
		{"self-declared SENT-BY", add("victim@third.example", "mallory@evil.test"), "mallory@evil.test", itip.Always, true, false, "", time.Time{}, false, "ignored", "unknown-event", ""},
		{"self-declared SENT-BY, forced", add("victim@third.example", "mallory@evil.test"), "mallory@evil.test", itip.Always, true, false, "", time.Time{}, true, "ignored", "unknown-event", ""},
		{"stranger", add("victim@third.example", ""), "mallory@evil.test", itip.Always, true, false, "", time.Time{}, false, "ignored", "unknown-event", ""},
		{"local organizer", add("alice@example.test", ""), "alice@example.test", itip.Always, true, false, "", time.Time{}, false, "ignored", "unknown-event", ""},
		{"the user as organizer", add("bob@example.test", ""), "bob@example.test", itip.Always, true, false, "", time.Time{}, false, "ignored", "unknown-event", ""},
		{"auto-submitted", add("carol@remote.test", ""), "carol@remote.test", itip.Always, true, true, "", time.Time{}, false, "ignored", "auto-submitted", ""},
		{"dmarc fail", add("victim@third.example", ""), "victim@third.example", itip.Always, true, false, "dmarc-fail", time.Time{}, false, "needs-action", "dmarc-fail", ""},
		{"policy never", add("carol@remote.test", ""), "carol@remote.test", itip.Never, true, false, "", time.Time{}, false, "needs-action", "policy-never", ""},
		{"policy never, the user applies it", add("carol@remote.test", ""), "carol@remote.test", itip.Never, true, false, "", time.Time{}, true, "ignored", "refresh-sent", "carol@remote.test"},
		{"unknown sender", add("carol@remote.test", ""), "carol@remote.test", itip.Known, false, false, "", time.Time{}, false, "needs-action", "unknown-sender", ""},
		{"too old", add("carol@remote.test", ""), "carol@remote.test", itip.Always, true, false, "", senderNow.AddDate(0, -2, 0), false, "ignored", "too-old", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := itip.Apply(itip.Input{Msg: c.msg, User: itip.User{Address: "bob@example.test", Policy: c.policy}, From: c.from,
				Known: c.known, AutoSubmitted: c.auto, AuthFail: c.authFail, Sent: c.sent, Timeframe: 28 * 24 * time.Hour,
				Force: c.force, LocalAddress: local, Now: senderNow})
			if string(r.Outcome) != c.outcome || string(r.Reason) != c.reason {
				t.Errorf("got %s/%s, want %s/%s", r.Outcome, r.Reason, c.outcome, c.reason)
			}
			var to []string
			for _, s := range r.Send {
				to = append(to, s.To...)
			}
			if want := strings.Fields(c.to); strings.Join(to, " ") != strings.Join(want, " ") {
				t.Errorf("sent to %v, want %v", to, want)
			}
			if r.Cal != nil {
				t.Error("an ADD for an unknown event stores nothing")
			}
		})
	}
}

// TestRefreshSendToNonAttendee: when the organizer chooses "send" on a
// pending REFRESH from someone not on the event, the whole event goes, but
// still without the organizer's own data (refresh.go refreshAnswer).
func TestRefreshSendToNonAttendee(t *testing.T) {
	stored := strings.Replace(senderOrgCopy(""), "END:VEVENT", "TRANSP:TRANSPARENT\r\nX-MOZ-SNOOZE-TIME:20261203T120000Z\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT", 1)
	r, err := itip.Respond(itip.Decision{Kind: itip.KindRefresh, Action: "send", Attendee: "zoe@else.test",
		Msg: senderParse(t, senderMsg("REFRESH", "")), Stored: senderCal(t, stored), User: itip.User{Address: "alice@example.test"}, Now: senderNow})
	if err != nil || len(r.Send) != 1 {
		t.Fatalf("%v, %d messages", err, len(r.Send))
	}
	body := string(ics.Marshal(r.Send[0].Cal))
	for _, want := range []string{"METHOD:REQUEST", "RRULE:FREQ=WEEKLY", "SUMMARY:Board", "DTSTAMP:20261125T120000Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %q:\n%s", want, body)
		}
	}
	for _, not := range []string{"VALARM", "TRANSP", "X-MOZ-"} {
		if strings.Contains(body, not) {
			t.Errorf("answer carries the organizer's %s:\n%s", not, body)
		}
	}
}

// TestRespondStoresNoUnverifiedData: what the user's decisions store from a
// message passes the same rules as what Apply stores: a forwarded
// invitation the user accepts keeps no SENT-BY it names, and a party
// crasher the organizer adds gets only the REPLY's valid known parameters.
func TestRespondStoresNoUnverifiedData(t *testing.T) {
	// Bob is not on the list: a forwarded invitation, nothing stored yet.
	inv := strings.ReplaceAll(senderMsg("REQUEST", "mallory@evil.test"), "mailto:bob@example.test", "mailto:zoe@example.test")
	r, err := itip.Respond(itip.Decision{Kind: itip.KindInvitation, Action: "accept", Msg: senderParse(t, inv),
		User: itip.User{Address: "bob@example.test"}, Now: senderNow})
	if err != nil || r.Cal == nil {
		t.Fatalf("accept: %v", err)
	}
	if got := sentBysIn(r.Cal, ical.PropOrganizer, "carol@remote.test"); len(got) == 0 || got[0] != "" {
		t.Errorf("stored organizer SENT-BY %q, want none:\n%s", got, ics.Marshal(r.Cal))
	}
	crash := strings.Replace(senderMsg("REPLY", "mallory@evil.test"), "ATTENDEE;PARTSTAT=DECLINED", "ATTENDEE;CN=\"Zoe^nDESCRIPTION:evil\";X-EVIL=1;PARTSTAT=ACCEPTED", 1)
	crash = strings.ReplaceAll(crash, "dave@remote.test", "zoe@else.test")
	r, err = itip.Respond(itip.Decision{Kind: itip.KindPartyCrasher, Action: "add", Attendee: "zoe@else.test", Msg: senderParse(t, crash),
		Stored: senderCal(t, senderOrgCopy("")), User: itip.User{Address: "alice@example.test"}, Now: senderNow})
	if err != nil || r.Cal == nil {
		t.Fatalf("add: %v", err)
	}
	for _, c := range r.Cal.Children {
		for _, p := range c.Props[ical.PropAttendee] {
			if address.Normalize(p.Value) != "zoe@else.test" {
				continue
			}
			if len(p.Params) != 1 || p.Params.Get(ical.ParamParticipationStatus) != "ACCEPTED" {
				t.Errorf("added attendee's parameters %v, want PARTSTAT=ACCEPTED only", p.Params)
			}
		}
	}
}
