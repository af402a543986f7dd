package milter_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"imipd/filter"
	"imipd/filter/milter"
	"imipd/internal/filtertest"
)

// TestMilterCalendarParts: one message with 150 calendar parts stored 150
// events; now it is rejected whole (calendar-parts), and a message within
// the cap is applied.
func TestMilterCalendarParts(t *testing.T) {
	f := newMilterFixture(t, "tcp", milter.Options{}, nil)
	s := f.session("")
	ops, code := sendMessage(t, s, envelope{from: "alice@remote.test", rcpts: []string{"bob@example.test"}}, manyParts(150, "bob@example.test"))
	wantOps(t, ops, code, "add "+hdr+": rejected; reason=calendar-parts")
	if st := readState(t, f.db); st.Events["bob@example.test"] != 0 || st.Opened["bob@example.test"] != 0 {
		t.Errorf("bob after 150 parts: %d events, %d pending", st.Events["bob@example.test"], st.Opened["bob@example.test"])
	}
	sendMessage(t, s, envelope{from: "alice@remote.test", rcpts: []string{"bob@example.test"}}, manyParts(filter.DefaultCalendarParts, "bob@example.test"))
	if st := readState(t, f.db); st.Events["bob@example.test"] != filter.DefaultCalendarParts {
		t.Errorf("%d parts: %d events stored, want all", filter.DefaultCalendarParts, st.Events["bob@example.test"])
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
	if len(st.Users) != 3 || st.Events["bob@example.test"] != 1 {
		t.Errorf("users %v, bob's events %d: want the 3 fixture users and one event for Bob", st.Users, st.Events["bob@example.test"])
	}
}

// Fixtures shared with the other packages' tests (internal/filtertest).
var (
	hostileRcpts = filtertest.HostileRcpts
	request      = filtertest.Request
	flood        = filtertest.Flood
	readState    = filtertest.ReadState
	manyParts    = filtertest.ManyParts
)
