package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imipd/calstore"
	"imipd/filter/admin"
)

// weeklyInvitation is a weekly meeting, Tuesdays and Thursdays at 14:00
// Berlin, with one moved occurrence and one left out.
const weeklyInvitation = "From: Alice Organizer <alice@remote.test>\r\n" +
	"To: bob@example.test\r\n" +
	"Subject: Invitation\r\n" +
	"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <weekly-0@remote.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n" +
	"\r\n" +
	"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\n" +
	"BEGIN:VEVENT\r\nUID:weekly-1@remote.test\r\nSEQUENCE:0\r\nDTSTAMP:20261125T100000Z\r\n" +
	"DTSTART;TZID=Europe/Berlin:20261201T140000\r\nDTEND;TZID=Europe/Berlin:20261201T150000\r\n" +
	"RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8\r\nEXDATE;TZID=Europe/Berlin:20261208T140000\r\n" +
	"SUMMARY:Budget review\r\nORGANIZER;CN=Alice:mailto:alice@remote.test\r\n" +
	"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test\r\n" +
	"END:VEVENT\r\n" +
	"BEGIN:VEVENT\r\nUID:weekly-1@remote.test\r\nSEQUENCE:0\r\nDTSTAMP:20261125T100000Z\r\n" +
	"RECURRENCE-ID;TZID=Europe/Berlin:20261210T140000\r\n" +
	"DTSTART;TZID=Europe/Berlin:20261210T150000\r\nDTEND;TZID=Europe/Berlin:20261210T160000\r\n" +
	"SUMMARY:Budget review\r\nORGANIZER;CN=Alice:mailto:alice@remote.test\r\n" +
	"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test\r\n" +
	"END:VEVENT\r\nEND:VCALENDAR\r\n"

// TestRespondInstance: `respond -instance` answers one occurrence (issue
// 14, item 4), by the pending item or the event's UID, in the forms the
// README lists; the stored copy gets the override, the REPLY carries its
// RECURRENCE-ID, the series' invitation stays open. An occurrence the
// series does not have is a usage error naming the event.
func TestRespondInstance(t *testing.T) {
	data := t.TempDir()
	msg := filepath.Join(t.TempDir(), "weekly.eml")
	if err := os.WriteFile(msg, []byte(weeklyInvitation), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, must := cli(t, "-data", data)
	must("user", "add", "-policy", "always", "bob@example.test")
	must("process", "-user", "bob@example.test", msg)

	// Thursday 3 December by the pending item's number and a day.
	if out := must("respond", "-instance", "2026-12-03", "bob@example.test", "1", "decline"); !strings.Contains(out, "occurrence 20261203T130000Z: applied (declined)") || !strings.Contains(out, "queued REPLY to alice@remote.test") {
		t.Errorf("respond -instance:\n%s", out)
	}
	// Thursday 17 December by the UID and the wall time.
	must("respond", "-instance", "20261217T140000", "bob@example.test", "weekly-1@remote.test", "tentative")
	// The moved one by its RECURRENCE-ID in UTC.
	must("respond", "-instance", "20261210T130000Z", "bob@example.test", "weekly-1@remote.test", "accept")

	for _, tt := range []struct{ instance, ref, action string }{
		{"2026-12-08", "1", "decline"},                    // left out (EXDATE)
		{"2026-12-09", "weekly-1@remote.test", "decline"}, // a Wednesday
		{"2026-12-03T15:00", "1", "decline"},              // another time
		{"2026-12-03", "weekly-1@remote.test", "frobnicate"},
	} {
		_, err := ctl("respond", "-instance", tt.instance, "bob@example.test", tt.ref, tt.action)
		var ue admin.UsageError
		if !errors.As(err, &ue) || tt.action != "frobnicate" && !strings.Contains(err.Error(), `"Budget review" (UID weekly-1@remote.test)`) {
			t.Errorf("-instance %s %s %s: %v, want a usage error naming the event", tt.instance, tt.ref, tt.action, err)
		}
	}
	if _, err := ctl("respond", "-instance", "2026-12-03", "bob@example.test", "nosuch@remote.test", "decline"); err == nil || !strings.Contains(err.Error(), "nosuch@remote.test") {
		t.Errorf("an unknown event: %v", err)
	}
	// Bob's own meeting has nothing to answer.
	own := filepath.Join(t.TempDir(), "own.ics")
	os.WriteFile(own, []byte(strings.NewReplacer("weekly-1@", "own-1@", "mailto:alice@remote.test", "mailto:bob@example.test").Replace(
		weeklyInvitation[strings.Index(weeklyInvitation, "BEGIN:VCALENDAR"):])), 0o600)
	must("import", "bob@example.test", own)
	if _, err := ctl("respond", "-instance", "2026-12-03", "bob@example.test", "own-1@remote.test", "decline"); !errors.As(err, new(admin.UsageError)) || !strings.Contains(err.Error(), "organize") {
		t.Errorf("Bob's own meeting: %v", err)
	}

	var pend []struct {
		Kind string `json:"kind"`
	}
	if out := must("pending", "-json", "bob@example.test"); json.Unmarshal([]byte(out), &pend) != nil || len(pend) != 1 || pend[0].Kind != "invitation" {
		t.Errorf("the series' invitation must stay open: %s", out)
	}
	db, err := calstore.Open(filepath.Join(data, "imipd.db"), calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ev calstore.Event
	var items []calstore.OutboxItem
	db.Read(context.Background(), func(tx calstore.Tx) error {
		ev, _ = tx.Event("bob@example.test", "weekly-1@remote.test")
		items, err = tx.Outbox()
		return err
	})
	stored := string(ev.Data)
	for _, want := range []string{"RECURRENCE-ID;TZID=Europe/Berlin:20261203T140000", "RECURRENCE-ID;TZID=Europe/Berlin:20261217T140000"} {
		if !strings.Contains(stored, want) {
			t.Errorf("stored copy lacks %s:\n%s", want, stored)
		}
	}
	if strings.Count(stored, "BEGIN:VEVENT") != 4 || !strings.Contains(stored, "PARTSTAT=DECLINED") || !strings.Contains(stored, "PARTSTAT=TENTATIVE") ||
		!strings.Contains(stored, "PARTSTAT=ACCEPTED") || !strings.Contains(stored, "PARTSTAT=NEEDS-ACTION") {
		t.Errorf("stored copy:\n%s", stored)
	}
	if len(items) != 3 {
		t.Fatalf("%d outbox items, want 3", len(items))
	}
	for i, rid := range []string{"20261203T140000", "20261217T140000", "20261210T140000"} {
		body := string(items[i].Body)
		if items[i].Method != "REPLY" || !strings.Contains(body, "RECURRENCE-ID;TZID=Europe/Berlin:"+rid) || strings.Count(body, "BEGIN:VEVENT") != 1 {
			t.Errorf("REPLY %d:\n%s", i, body)
		}
	}
}
