package filter

import (
	"strings"
	"testing"

	"imipd/itip/ics"
)

// sameParties lets learnParties skip its work only when it would add
// nobody: every party of the new calendar is one of the old's.
func TestSameParties(t *testing.T) {
	ev := func(parties ...string) string {
		return "BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20260101T000000Z\r\n" + strings.Join(parties, "\r\n") + "\r\nEND:VEVENT\r\n"
	}
	cal := func(events ...string) string {
		return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + strings.Join(events, "") + "END:VCALENDAR\r\n"
	}
	org := "ORGANIZER:mailto:org@example.test"
	a := "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:a@remote.test"
	aAccepted := "ATTENDEE;PARTSTAT=ACCEPTED;CN=A:mailto:a@remote.test"
	b := "ATTENDEE:mailto:b@remote.test"
	bUpper := "ATTENDEE:mailto:B@Remote.test"
	cases := []struct {
		name     string
		old, cur string
		same     bool
	}{
		{"identical", cal(ev(org, a, b)), cal(ev(org, a, b)), true},
		{"partstat and params changed", cal(ev(org, a, b)), cal(ev(org, aAccepted, b)), true},
		{"attendee added", cal(ev(org, a)), cal(ev(org, a, b)), false},
		{"attendee removed", cal(ev(org, a, b)), cal(ev(org, a)), false},
		{"reordered", cal(ev(org, a, b)), cal(ev(org, b, a)), false},
		{"same address, other spelling", cal(ev(org, b)), cal(ev(org, bUpper)), false},
		{"organizer changed", cal(ev(org, a)), cal(ev("ORGANIZER:mailto:x@example.test", a)), false},
		{"exception added", cal(ev(org, a)), cal(ev(org, a), ev(org, a, b)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, err := ics.Decode([]byte(tc.old), ics.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			cur, err := ics.Decode([]byte(tc.cur), ics.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := sameParties(cur, old); got != tc.same {
				t.Fatalf("sameParties = %v, want %v", got, tc.same)
			}
			if !tc.same {
				return
			}
			known := map[string]bool{}
			eachParty(old, func(addr, _ string) { known[addr] = true })
			eachParty(cur, func(addr, _ string) {
				if !known[addr] {
					t.Errorf("sameParties, but %s is new", addr)
				}
			})
		})
	}
}
