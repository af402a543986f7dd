// Package filtertest holds the fixtures the tests of filter, its adapters
// (filter/milter, filter/lmtp) and caldav share: a Processor over a fresh
// bbolt store, plain and iMIP mail, Alice's invitation, the hostile
// recipient lists and floods of issue 13's attack 11, and a reading of
// what an attack left in the store. It is test support, internal to the
// module: no production code imports it.
package filtertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
)

// NewProcessor is a Processor over a new bbolt store (no fsync) for the
// domain example.test, its clock at 25 November 2026 12:00 UTC.
func NewProcessor(t testing.TB) (*filter.Processor, *calstore.DB) {
	t.Helper()
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &filter.Processor{Store: db, Cfg: cfg, Now: func() time.Time { return now }}, db
}

// Mail is a message from from to to with Message-ID id: plain text when
// method is "", else ics (LF or CRLF) as text/calendar with that method.
func Mail(from, to, id, method, ics string) string {
	ct := "text/plain; charset=UTF-8"
	body := "hello\r\n"
	if method != "" {
		ct = "text/calendar; method=" + method + "; charset=UTF-8"
		body = strings.ReplaceAll(ics, "\n", "\r\n")
	}
	return fmt.Sprintf("From: %s\r\nTo: %s\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\nMessage-ID: <%s>\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: %s\r\n\r\n%s", from, to, id, ct, body)
}

// Invite is Alice's invitation of Bob (local) and Carol: UID, DTSTART,
// DTEND and SUMMARY to fill in.
const Invite = `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:%s
SEQUENCE:0
DTSTAMP:20261125T100000Z
DTSTART:%s
DTEND:%s
SUMMARY:%s
ORGANIZER;CN=Alice:mailto:alice@remote.test
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test
ATTENDEE;PARTSTAT=ACCEPTED:mailto:carol@remote.test
END:VEVENT
END:VCALENDAR
`

// Request is an iMIP REQUEST from alice@remote.test (after
// testdata/scenarios/request-new), CRLF line ends as a milter sees them.
func Request(msgID, uid string, seq int, rcpts []string, extraHeaders ...string) string {
	var att strings.Builder
	for _, r := range rcpts {
		fmt.Fprintf(&att, "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:%s\n", r)
	}
	h := strings.Join(extraHeaders, "\n")
	if h != "" {
		h += "\n"
	}
	msg := h + `From: Alice Organizer <alice@remote.test>
To: ` + strings.Join(rcpts, ", ") + `
Subject: Invitation: Planning
Date: Wed, 25 Nov 2026 10:00:00 +0000
Message-ID: <` + msgID + `>
MIME-Version: 1.0
Content-Type: text/calendar; method=REQUEST; charset=UTF-8

BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:` + uid + `
SEQUENCE:` + fmt.Sprint(seq) + `
DTSTAMP:20261125T100000Z
DTSTART:20261201T090000Z
DTEND:20261201T100000Z
SUMMARY:Planning
ORGANIZER;CN=Alice:mailto:alice@remote.test
` + att.String() + `END:VEVENT
END:VCALENDAR
`
	return strings.ReplaceAll(msg, "\n", "\r\n")
}

// HostileRcpts are n recipients local.part<random>@example.test.
func HostileRcpts(r *rand.Rand, local string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%08x@example.test", local, r.Uint32())
	}
	return out
}

// Flood is an invitation to every one of rcpts, each an ATTENDEE and in a
// folded To (LF line ends).
func Flood(uid string, rcpts []string) string {
	msg := strings.ReplaceAll(Request(uid, uid, 0, rcpts), "\r\n", "\n")
	return strings.Replace(msg, "To: "+strings.Join(rcpts, ", "), "To: "+strings.Join(rcpts, ",\n "), 1)
}

// ManyParts is one message carrying n calendar parts, each a new event.
func ManyParts(n int, rcpt string) string {
	var b strings.Builder
	b.WriteString("From: Alice <alice@remote.test>\r\nTo: " + rcpt + "\r\nSubject: many\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <parts-1@remote.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
	for i := range n {
		ev := Request("x", fmt.Sprintf("part-%d@remote.test", i), 0, []string{rcpt})
		_, body, _ := strings.Cut(ev, "\r\n\r\n")
		b.WriteString("--p\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + body + "\r\n")
	}
	b.WriteString("--p--\r\n")
	return b.String()
}

// StoreState is what a test checks after an attack: every user, and the
// events and open pending items of each, and the file's size.
type StoreState struct {
	Users          []string
	Events, Opened map[string]int
	Size           int64
}

// ReadState reads the StoreState of db.
func ReadState(t testing.TB, db *calstore.DB) StoreState {
	t.Helper()
	s := StoreState{Events: map[string]int{}, Opened: map[string]int{}}
	err := db.Read(context.Background(), func(tx calstore.Tx) error {
		us, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range us {
			s.Users = append(s.Users, u.Address)
			if s.Events[u.Address], s.Opened[u.Address], err = tx.Counts(u.Address); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	s.Size = fi.Size()
	return s
}
