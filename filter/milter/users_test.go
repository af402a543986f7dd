package milter_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
	"imipd/filter/milter"
)

// hostileRcpts are n recipients local.part<random>@example.test.
func hostileRcpts(r *rand.Rand, local string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%08x@example.test", local, r.Uint32())
	}
	return out
}

// flood is an invitation to every one of rcpts, each an ATTENDEE and in a
// folded To (LF line ends).
func flood(uid string, rcpts []string) string {
	msg := strings.ReplaceAll(request(uid, uid, 0, rcpts), "\r\n", "\n")
	return strings.Replace(msg, "To: "+strings.Join(rcpts, ", "), "To: "+strings.Join(rcpts, ",\n "), 1)
}

// storeState is what a test checks after an attack: every user, and the
// events and open pending items of each, and the file's size.
type storeState struct {
	users          []string
	events, opened map[string]int
	size           int64
}

func readState(t *testing.T, db *calstore.DB) storeState {
	t.Helper()
	s := storeState{events: map[string]int{}, opened: map[string]int{}}
	err := db.Read(context.Background(), func(tx calstore.Tx) error {
		us, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range us {
			s.users = append(s.users, u.Address)
			if s.events[u.Address], s.opened[u.Address], err = tx.Counts(u.Address); err != nil {
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
	s.size = fi.Size()
	return s
}

// manyParts is one message carrying n calendar parts, each a new event.
func manyParts(n int, rcpt string) string {
	var b strings.Builder
	b.WriteString("From: Alice <alice@remote.test>\r\nTo: " + rcpt + "\r\nSubject: many\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <parts-1@remote.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
	for i := range n {
		ev := request("x", fmt.Sprintf("part-%d@remote.test", i), 0, []string{rcpt})
		_, body, _ := strings.Cut(ev, "\r\n\r\n")
		b.WriteString("--p\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n" + body + "\r\n")
	}
	b.WriteString("--p--\r\n")
	return b.String()
}

// TestMilterCalendarParts: one message with 150 calendar parts stored 150
// events; now it is rejected whole (calendar-parts), and a message within
// the cap is applied.
func TestMilterCalendarParts(t *testing.T) {
	f := newMilterFixture(t, "tcp", milter.Options{}, nil)
	s := f.session("")
	ops, code := sendMessage(t, s, envelope{from: "alice@remote.test", rcpts: []string{"bob@example.test"}}, manyParts(150, "bob@example.test"))
	wantOps(t, ops, code, "add "+hdr+": rejected; reason=calendar-parts")
	if st := readState(t, f.db); st.events["bob@example.test"] != 0 || st.opened["bob@example.test"] != 0 {
		t.Errorf("bob after 150 parts: %d events, %d pending", st.events["bob@example.test"], st.opened["bob@example.test"])
	}
	sendMessage(t, s, envelope{from: "alice@remote.test", rcpts: []string{"bob@example.test"}}, manyParts(filter.DefaultCalendarParts, "bob@example.test"))
	if st := readState(t, f.db); st.events["bob@example.test"] != filter.DefaultCalendarParts {
		t.Errorf("%d parts: %d events stored, want all", filter.DefaultCalendarParts, st.events["bob@example.test"])
	}
}

// TestMilterSubaddressFlood is the attack through the milter: Postfix with
// recipient_delimiter = + accepts bob+<random>; go-milter's client wraps
// each recipient in angle brackets once more than the server strips.
func TestMilterSubaddressFlood(t *testing.T) {
	f := newMilterFixture(t, "tcp", milter.Options{}, nil)
	s := f.session("")
	rcpts := hostileRcpts(rand.New(rand.NewPCG(3, 11)), "bob+", 500)
	wrapped := make([]string, len(rcpts))
	for i, r := range rcpts {
		wrapped[i] = "<" + r + ">"
	}
	start := time.Now()
	ops, code := sendMessage(t, s, envelope{from: "mallory@remote.test", rcpts: wrapped}, strings.ReplaceAll(flood("mflood-1@remote.test", rcpts), "\n", "\r\n"))
	t.Logf("500 subaddresses through the milter: %v", time.Since(start))
	wantOps(t, ops, code, "add "+hdr+": needs-action; method=REQUEST; uid=mflood-1@remote.test; reason=invitation")
	st := readState(t, f.db)
	if len(st.users) != 3 || st.events["bob@example.test"] != 1 {
		t.Errorf("users %v, bob's events %d: want the 3 fixture users and one event for Bob", st.users, st.events["bob@example.test"])
	}
}
