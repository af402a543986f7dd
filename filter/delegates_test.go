package filter_test

import (
	"context"
	"strings"
	"testing"

	"imipd/calstore"
	"imipd/filter"
)

// A delegate configured for a local user answers for that user at another
// local user's meeting (docs/rules.md "Sender checks": "a delegate configured for a
// local user"); someone else naming themselves that user's SENT-BY is held.
func TestDelegateOfAnotherLocalUser(t *testing.T) {
	p, db := newProc(t)
	const stored = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:m1@example.test\r\nSEQUENCE:0\r\nDTSTAMP:20261120T100000Z\r\n" +
		"DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nSUMMARY:Review\r\nORGANIZER:mailto:alice@example.test\r\n" +
		"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	err := db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "bob@example.test", Delegates: []string{"sec@example.test"}}); err != nil {
			return err
		}
		if err := tx.PutUser(calstore.User{Address: "alice@example.test", Policy: "always"}); err != nil {
			return err
		}
		return tx.PutEvent("alice@example.test", calstore.Event{UID: "m1@example.test", Data: []byte(stored)})
	})
	if err != nil {
		t.Fatal(err)
	}
	reply := func(sentBy, partstat string) string {
		return "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REPLY\nBEGIN:VEVENT\nUID:m1@example.test\nSEQUENCE:0\nDTSTAMP:20261125T110000Z\n" +
			"ORGANIZER:mailto:alice@example.test\nATTENDEE;PARTSTAT=" + partstat + ";SENT-BY=\"mailto:" + sentBy + "\":mailto:bob@example.test\nEND:VEVENT\nEND:VCALENDAR\n"
	}
	env := filter.Delivery{Rcpts: []string{"alice@example.test"}}
	if r := process(t, p, mail("mallory@evil.test", "alice@example.test", "r1@evil.test", "REPLY", reply("mallory@evil.test", "DECLINED")), env); r.Reason != "sender-mismatch" {
		t.Errorf("Mallory as Bob's SENT-BY: %s/%s, want needs-action/sender-mismatch", r.Outcome, r.Reason)
	}
	if r := process(t, p, mail("sec@example.test", "alice@example.test", "r2@example.test", "REPLY", reply("sec@example.test", "ACCEPTED")), env); r.Outcome != "applied" {
		t.Fatalf("Bob's delegate: %s/%s, want applied", r.Outcome, r.Reason)
	}
	var ev calstore.Event
	db.Read(context.Background(), func(tx calstore.Tx) error {
		ev, err = tx.Event("alice@example.test", "m1@example.test")
		return err
	})
	if err != nil || !strings.Contains(string(ev.Data), "PARTSTAT=ACCEPTED") {
		t.Fatalf("%v: Bob's answer not applied:\n%s", err, ev.Data)
	}
}
