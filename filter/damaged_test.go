package filter_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"imipd/calstore"
	"imipd/filter"
)

// teamInvite is Alice's team meeting for Bob and Carol: SEQUENCE, DTSTAMP's
// day (2026-11-2x) and LOCATION to fill in.
const teamInvite = `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:team-1@remote.test
SEQUENCE:%d
DTSTAMP:2026112%dT100000Z
DTSTART:20261203T090000Z
DTEND:20261203T100000Z
SUMMARY:Team
LOCATION:%s
ORGANIZER;CN=Alice:mailto:alice@remote.test
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:carol@example.test
END:VEVENT
END:VCALENDAR
`

// A user's stored copy that no longer decodes (written before writes were
// checked) costs that user one `error` result; the other recipients of the
// same message are processed (issue 13, attack 12: the whole message failed,
// forwarded untagged, or refused for ever with on_error = tempfail), and
// the user's export and feed go on without it.
func TestDamagedCopyIsolated(t *testing.T) {
	p, db := newProc(t)
	ctx := context.Background()
	err := db.Write(ctx, func(tx calstore.Tx) error {
		for _, u := range []string{bobAddr, "carol@example.test"} {
			if err := tx.PutUser(calstore.User{Address: u}); err != nil {
				return err
			}
		}
		return tx.PutEvent(bobAddr, calstore.Event{UID: "team-1@remote.test",
			Data: []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + strings.Repeat("BEGIN:VALARM\r\n", 20) + "END:VEVENT\r\n")})
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := mail("Alice <alice@remote.test>", bobAddr+", carol@example.test", "team-upd@remote.test", "REQUEST", fmt.Sprintf(teamInvite, 1, 6, "Room 2"))
	rep, err := p.Process(ctx, filter.Delivery{MailFrom: "alice@remote.test", Rcpts: []string{bobAddr, "carol@example.test"}, Transport: "test", Message: strings.NewReader(raw)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		got[r.User] = string(r.Outcome) + "/" + string(r.Reason)
	}
	if got[bobAddr] != "error/stored-unreadable" || got["carol@example.test"] == "" || strings.HasPrefix(got["carol@example.test"], "error") {
		t.Errorf("results %v", got)
	}
	var data []byte
	db.Read(ctx, func(tx calstore.Tx) error {
		ev, err := tx.Event(bobAddr, "team-1@remote.test")
		data = ev.Data
		return err
	})
	if !strings.HasPrefix(string(data), "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:VALARM") {
		t.Errorf("Bob's damaged copy changed:\n%.200s", data)
	}
	// Bob's export (and so his feed) leaves the damaged copy out.
	var buf bytes.Buffer
	if err := p.Export(ctx, bobAddr, &buf); err != nil || !strings.Contains(buf.String(), "BEGIN:VCALENDAR") {
		t.Errorf("export: %v\n%s", err, buf.String())
	}
}
