package caldav_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"imipd/caldav"
	"imipd/calstore"
	"imipd/filter"
	"imipd/itip/icstest"
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
	e := newDAVEnv(t, caldav.Options{})
	if err := e.db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "carol@example.test"})
	}); err != nil {
		t.Fatal(err)
	}
	both := filter.Delivery{MailFrom: "alice@remote.test", Rcpts: []string{davUser, "carol@example.test"}}
	deliver := func(seq int, loc string) *filter.Report {
		t.Helper()
		raw := mail("Alice <alice@remote.test>", davUser+", carol@example.test", fmt.Sprintf("team-%d@remote.test", seq), "REQUEST",
			fmt.Sprintf(teamInvite, seq, 5+seq, loc))
		both.Transport, both.Received, both.Message = "test", e.proc.Now(), strings.NewReader(raw)
		rep, err := e.proc.Process(context.Background(), both)
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
	nestedAlarm := "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VALARM\r\n"
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
		{"a VALARM inside a VALARM", withAlarm(nestedAlarm), "text/calendar", 403, "valid-calendar-data"},
		{"the same, answering ACCEPTED", accept(withAlarm(nestedAlarm)), "text/calendar", 403, "valid-calendar-data"},
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

const weeklyInvite = `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
METHOD:REQUEST
` + icstest.Berlin + `BEGIN:VEVENT
UID:weekly-1@remote.test
SEQUENCE:0
DTSTAMP:20261125T100000Z
DTSTART;TZID=Europe/Berlin:20261201T140000
DTEND;TZID=Europe/Berlin:20261201T150000
RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8
EXDATE;TZID=Europe/Berlin:20261208T140000
SUMMARY:Budget review\, Q1
ORGANIZER;CN=Alice:mailto:alice@remote.test
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test
ATTENDEE;PARTSTAT=ACCEPTED:mailto:carol@remote.test
END:VEVENT
BEGIN:VEVENT
UID:weekly-1@remote.test
SEQUENCE:0
DTSTAMP:20261125T100000Z
RECURRENCE-ID;TZID=Europe/Berlin:20261210T140000
DTSTART;TZID=Europe/Berlin:20261210T150000
DTEND;TZID=Europe/Berlin:20261210T160000
SUMMARY:Budget review\, Q1
ORGANIZER;CN=Alice:mailto:alice@remote.test
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test
ATTENDEE;PARTSTAT=ACCEPTED:mailto:carol@remote.test
END:VEVENT
END:VCALENDAR
`

// A calendar app answering a recurring invitation writes the event back in
// its own words (issue 14, item 1): python3-caldav re-orders the RRULE's
// parts and bumps SEQUENCE, others write EXDATE in UTC. The answer is
// taken and sent; a new override for one occurrence answers that
// occurrence (RFC 6638 §3.2.2.1 item 11); moving the meeting is still
// refused.
func TestCalDAVAnswerRecurringRewritten(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	r := process(t, e.proc, mail("Alice <alice@remote.test>", davUser, "weekly-0@remote.test", "REQUEST", weeklyInvite),
		filter.Delivery{MailFrom: "alice@remote.test", Rcpts: []string{davUser}})
	if r.Outcome != "needs-action" {
		t.Fatalf("invitation: %s %s", r.Outcome, r.Reason)
	}
	path := calPath + "weekly-1@remote.test.ics"
	put := func(body string) (int, string) {
		t.Helper()
		resp, b := e.do(t, "PUT", path, davUser, davPass, body, map[string]string{"Content-Type": "text/calendar"})
		return resp.StatusCode, b
	}
	replace := func(s string, pairs ...string) string {
		t.Helper()
		for i := 0; i+1 < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("%q not in\n%s", pairs[i], s)
			}
			s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
		}
		return s
	}
	data, _ := e.fetch(t, path)
	accepted := replace(data, "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8", "FREQ=WEEKLY;COUNT=8;BYDAY=TU,TH",
		"SEQUENCE:0", "SEQUENCE:1",
		"EXDATE;TZID=Europe/Berlin:20261208T140000", "EXDATE:20261208T130000Z",
		"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob", "PARTSTAT=ACCEPTED:mailto:bob")
	if code, body := put(accepted); code != 204 {
		t.Fatalf("accepting, rewritten: %d %s", code, body)
	}
	ob := e.outbox(t)
	if len(ob) != 1 || ob[0].Method != "REPLY" || !strings.Contains(string(ob[0].Body), "PARTSTAT=ACCEPTED") {
		t.Fatalf("outbox after accepting: %+v", ob)
	}

	// Declining Thursday 3 December alone: the app adds an override.
	data, _ = e.fetch(t, path)
	ov := "BEGIN:VEVENT\r\nUID:weekly-1@remote.test\r\nSEQUENCE:1\r\nDTSTAMP:20261126T100000Z\r\n" +
		"RECURRENCE-ID;TZID=Europe/Berlin:20261203T140000\r\nDTSTART;TZID=Europe/Berlin:20261203T140000\r\nDTEND;TZID=Europe/Berlin:20261203T150000\r\n" +
		"SUMMARY:Budget review\\, Q1\r\nORGANIZER;CN=Alice:mailto:alice@remote.test\r\n" +
		"ATTENDEE;PARTSTAT=DECLINED:mailto:bob@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:carol@remote.test\r\nEND:VEVENT\r\n"
	if code, body := put(replace(data, "END:VCALENDAR", ov+"END:VCALENDAR")); code != 204 {
		t.Fatalf("declining one occurrence: %d %s", code, body)
	}
	ob = e.outbox(t)
	if len(ob) != 2 || !strings.Contains(string(ob[1].Body), "RECURRENCE-ID") || !strings.Contains(string(ob[1].Body), "PARTSTAT=DECLINED") {
		t.Fatalf("outbox after declining one occurrence: %d items, last:\n%s", len(ob), ob[len(ob)-1].Body)
	}
	if s := e.stored(t, "weekly-1@remote.test"); strings.Count(s, "RECURRENCE-ID") != 2 || !strings.Contains(s, "PARTSTAT=DECLINED:mailto:bob") {
		t.Errorf("stored after declining one occurrence:\n%s", s)
	}

	data, _ = e.fetch(t, path)
	if code, body := put(replace(data, "DTSTART;TZID=Europe/Berlin:20261201T140000", "DTSTART;TZID=Europe/Berlin:20261201T150000")); code != 403 || !strings.Contains(body, "DTSTART") ||
		!strings.Contains(body, "<C:allowed-attendee-scheduling-object-change/>") {
		t.Fatalf("moving the series: %d %s", code, body)
	}
	if n := len(e.outbox(t)); n != 2 {
		t.Errorf("the refused write sent something: %d outbox items", n)
	}
}
