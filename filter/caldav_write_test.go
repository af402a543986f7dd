package filter_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"imipd/calstore"
	"imipd/filter"
)

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

// What a calendar app writes is decoded with the limits of mail before
// anything happens (issue 13, attack 12): a refused PUT answers 413 or 403
// with the CalDAV precondition, leaves the store file byte for byte as it
// was, and the organizer's next update is still applied for Bob and for
// Carol, who got the same message.
func TestCalDAVPutValidatedBeforeWrite(t *testing.T) {
	e := newDAVEnv(t, filter.CalDAVOptions{})
	if err := e.db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "carol@example.test"})
	}); err != nil {
		t.Fatal(err)
	}
	both := filter.Envelope{MailFrom: "alice@remote.test", Rcpts: []string{davUser, "carol@example.test"}}
	deliver := func(seq int, loc string) *filter.Report {
		t.Helper()
		raw := mail("Alice <alice@remote.test>", davUser+", carol@example.test", fmt.Sprintf("team-%d@remote.test", seq), "REQUEST",
			fmt.Sprintf(teamInvite, seq, 5+seq, loc))
		both.Transport, both.Received = "test", e.proc.Now()
		rep, err := e.proc.Process(context.Background(), strings.NewReader(raw), both)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	deliver(0, "Room 1")
	teamPath := calPath + "team-1@remote.test.ics"
	data, _ := e.fetch(t, teamPath)
	withAlarm := func(alarm string) string {
		return strings.Replace(data, "END:VEVENT", alarm+"END:VEVENT", 1)
	}
	accept := func(s string) string {
		return strings.Replace(s, "PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob", "PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:bob", 1)
	}
	longLine := "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:" + strings.Repeat("x", 70<<10) + "\r\nEND:VALARM\r\n"
	var manyAlarms strings.Builder
	for i := 0; i < 1001; i++ {
		fmt.Fprintf(&manyAlarms, "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT%dM\r\nEND:VALARM\r\n", i+1)
	}
	big := "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\n" + strings.Repeat("X-PAD:"+strings.Repeat("y", 70)+"\r\n", 15000) + "END:VALARM\r\n"
	tests := []struct {
		name, body, ctype string
		code              int
		cond              string
	}{
		{"a VALARM with a 70 KB line", withAlarm(longLine), "text/calendar", 403, "valid-calendar-data"},
		{"the same, answering ACCEPTED", accept(withAlarm(longLine)), "text/calendar", 403, "valid-calendar-data"},
		{"a VALARM nested 250,000 deep", withAlarm(strings.Repeat("BEGIN:VALARM\r\n", 250000)), "text/calendar", 413, "max-resource-size"},
		{"a VALARM nested 50,000 deep", withAlarm(strings.Repeat("BEGIN:VALARM\r\n", 50000)), "text/calendar", 403, "valid-calendar-data"},
		{"1,001 VALARMs", withAlarm(manyAlarms.String()), "text/calendar", 403, "valid-calendar-data"},
		{"over calendar_bytes", withAlarm(big), "text/calendar", 413, "max-resource-size"},
		{"a parameter without a value", withAlarm("BEGIN:VALARM\r\nX;A=b\r\nEND:VALARM\r\n"), "text/calendar", 403, "valid-calendar-data"},
		{"not text/calendar", accept(data), "text/plain", 403, "supported-calendar-data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := os.ReadFile(e.db.Path())
			if err != nil {
				t.Fatal(err)
			}
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			resp, body := e.do(t, "PUT", teamPath, davUser, davPass, tt.body, map[string]string{"Content-Type": tt.ctype})
			runtime.ReadMemStats(&m1)
			if resp.StatusCode != tt.code || !strings.Contains(body, "<C:"+tt.cond+"/>") {
				t.Errorf("%d %.300s, want %d with %s", resp.StatusCode, body, tt.code, tt.cond)
			}
			after, err := os.ReadFile(e.db.Path())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("the refused write changed the store file")
			}
			if alloc := (m1.TotalAlloc - m0.TotalAlloc) >> 20; alloc > 8*uint64(len(tt.body)>>20)+16 {
				t.Errorf("the refused write allocated %d MB for a %d byte body", alloc, len(tt.body))
			}
		})
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Errorf("refused writes sent %d messages", n)
	}
	// An allowed write still works, and the next update reaches both.
	if resp, body := e.do(t, "PUT", teamPath, davUser, davPass, withAlarm("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"),
		map[string]string{"Content-Type": "text/calendar"}); resp.StatusCode != 204 {
		t.Fatalf("a small alarm: %d %s", resp.StatusCode, body)
	}
	rep := deliver(1, "Room 2")
	if len(rep.Results) != 2 {
		t.Fatalf("update: %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Outcome == "error" || r.Outcome == "rejected" {
			t.Errorf("update for %s: %s %s", r.User, r.Outcome, r.Reason)
		}
	}
	if s, _ := e.fetch(t, teamPath); !strings.Contains(s, "Room 2") || !strings.Contains(s, "TRIGGER:-PT5M") {
		t.Errorf("after the update:\n%s", s)
	}
}

// A user's stored copy that no longer decodes (written before writes were
// checked) costs that user one `error` result; the other recipients of the
// same message are processed (issue 13, attack 12: the whole message failed,
// forwarded untagged, or refused for ever with on_error = tempfail), and
// the user's export and feed go on without it.
func TestDamagedCopyIsolated(t *testing.T) {
	p, db := newProc(t)
	ctx := context.Background()
	err := db.Write(ctx, func(tx calstore.Tx) error {
		for _, u := range []string{davUser, "carol@example.test"} {
			if err := tx.PutUser(calstore.User{Address: u}); err != nil {
				return err
			}
		}
		return tx.PutEvent(davUser, calstore.Event{UID: "team-1@remote.test",
			Data: []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + strings.Repeat("BEGIN:VALARM\r\n", 20) + "END:VEVENT\r\n")})
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := mail("Alice <alice@remote.test>", davUser+", carol@example.test", "team-upd@remote.test", "REQUEST", fmt.Sprintf(teamInvite, 1, 6, "Room 2"))
	rep, err := p.Process(ctx, strings.NewReader(raw), filter.Envelope{MailFrom: "alice@remote.test", Rcpts: []string{davUser, "carol@example.test"}, Transport: "test"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		got[r.User] = string(r.Outcome) + "/" + r.Reason
	}
	if got[davUser] != "error/stored-unreadable" || got["carol@example.test"] == "" || strings.HasPrefix(got["carol@example.test"], "error") {
		t.Errorf("results %v", got)
	}
	var data []byte
	db.Read(ctx, func(tx calstore.Tx) error {
		ev, err := tx.Event(davUser, "team-1@remote.test")
		data = ev.Data
		return err
	})
	if !strings.HasPrefix(string(data), "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nBEGIN:VALARM") {
		t.Errorf("Bob's damaged copy changed:\n%.200s", data)
	}
	// Bob's export (and so his feed) leaves the damaged copy out.
	var buf bytes.Buffer
	if err := p.Export(ctx, davUser, &buf); err != nil || !strings.Contains(buf.String(), "BEGIN:VCALENDAR") {
		t.Errorf("export: %v\n%s", err, buf.String())
	}
}
