package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/outbox"
)

// escapedInvitation has a SUMMARY with TEXT escapes (RFC 5545 §3.3.11).
const escapedInvitation = "From: Alice Organizer <alice@remote.test>\r\n" +
	"To: bob@example.test\r\n" +
	"Subject: Invitation\r\n" +
	"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
	"Message-ID: <escaped-1@remote.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n" +
	"\r\n" +
	"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\n" +
	"BEGIN:VEVENT\r\nUID:escaped-1@remote.test\r\nSEQUENCE:0\r\nDTSTAMP:20261125T100000Z\r\n" +
	"DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n" +
	"SUMMARY:Budget review\\, Q1\\; room 2\r\n" +
	"ORGANIZER;CN=Alice:mailto:alice@remote.test\r\n" +
	"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test\r\n" +
	"END:VEVENT\r\nEND:VCALENDAR\r\n"

// TestTextUnescaped: a TEXT value is shown and exported as JSON as the
// text it stands for, in every output of imipctl and in the mail imipd
// sends (issue 14, item 3); the stored calendar keeps the escapes.
func TestTextUnescaped(t *testing.T) {
	const title = "Budget review, Q1; room 2"
	data := t.TempDir()
	msg := filepath.Join(t.TempDir(), "escaped.eml")
	if err := os.WriteFile(msg, []byte(escapedInvitation), 0o600); err != nil {
		t.Fatal(err)
	}
	_, ctl := cli(t, "-data", data)
	ctl("user", "add", "-policy", "always", "bob@example.test")
	for _, c := range []struct{ name, out string }{
		{"check", ctl("check", "-user", "bob@example.test", msg)},
	} {
		if !strings.Contains(c.out, title) || strings.Contains(c.out, `\`) {
			t.Errorf("%s shows the escaped text:\n%s", c.name, c.out)
		}
	}
	ctl("process", "-user", "bob@example.test", msg)
	for _, c := range []struct{ name, out string }{
		{"events", ctl("events", "bob@example.test")},
		{"pending", ctl("pending", "bob@example.test")},
		// imipctl event ends with the stored iCalendar data, escaped.
		{"event (history)", strings.Split(ctl("event", "bob@example.test", "escaped-1@remote.test"), "\ndata:\n")[0]},
	} {
		if !strings.Contains(c.out, title) || strings.Contains(c.out, `\`) {
			t.Errorf("%s shows the escaped text:\n%s", c.name, c.out)
		}
	}
	var evs []struct {
		Summary string `json:"summary"`
	}
	if out := ctl("events", "-json", "bob@example.test"); json.Unmarshal([]byte(out), &evs) != nil || len(evs) != 1 || evs[0].Summary != title {
		t.Errorf("events -json: %s", out)
	}
	var pend []struct {
		Summary string `json:"summary"`
	}
	if out := ctl("pending", "-json", "bob@example.test"); json.Unmarshal([]byte(out), &pend) != nil || len(pend) != 1 || !strings.Contains(pend[0].Summary, title) || strings.Contains(pend[0].Summary, `\`) {
		t.Errorf("pending -json: %s", out)
	}
	var ev struct {
		History []struct {
			Summary string `json:"summary"`
		} `json:"history"`
	}
	if out := ctl("event", "-json", "bob@example.test", "escaped-1@remote.test"); json.Unmarshal([]byte(out), &ev) != nil || len(ev.History) == 0 || !strings.Contains(ev.History[0].Summary, title) {
		t.Errorf("event -json history: %s", out)
	}
	ctl("respond", "bob@example.test", "1", "accept")

	// The REPLY imipd sends: subject and text unescaped, the iCalendar
	// part escaped as it must be.
	db, err := calstore.Open(filepath.Join(data, "imipd.db"), calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var items []calstore.OutboxItem
	if err := db.Read(context.Background(), func(tx calstore.Tx) error {
		items, err = tx.Outbox()
		return err
	}); err != nil || len(items) != 1 {
		t.Fatalf("outbox: %v, %d items", err, len(items))
	}
	if want := "Reply: " + title; items[0].Subject != want {
		t.Errorf("outbox subject %q, want %q", items[0].Subject, want)
	}
	_, raw, err := outbox.Compose(items[0], time.Now(), "imipd.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	text, cal, _ := strings.Cut(string(raw), "text/calendar")
	if !strings.Contains(text, title) || strings.Contains(text, `\`) {
		t.Errorf("outbox text:\n%s", text)
	}
	if !strings.Contains(cal, `SUMMARY:Budget review\, Q1\; room 2`) {
		t.Errorf("the REPLY's iCalendar lost its escapes:\n%s", cal)
	}
}
