package itip

import (
	"fmt"
	"strings"
	"time"

	"imipd/address"
)

// Policy is a user's autoProcessIMip setting (docs/rules.md "Policy").
type Policy string

// The three policies; the server default is Known.
const (
	Always Policy = "always" // apply whatever is applicable
	Known  Policy = "known"  // apply when the sender is known to the user
	Never  Policy = "never"  // apply nothing; every message waits for the user
)

// ParsePolicy accepts the three words in any case.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(strings.ToLower(strings.TrimSpace(s))); p {
	case Always, Known, Never:
		return p, nil
	}
	return "", fmt.Errorf("itip: policy %q: want always, known or never", s)
}

// User is the calendar user a message is applied for.
type User struct {
	Address   string   // primary address, normalised
	Aliases   []string // further addresses, normalised
	Delegates []string // may act on the user's behalf (docs/rules.md "Working on behalf of")
	Policy    Policy   // effective policy (the caller resolves the server default)
	// Delimiter is the configured recipient delimiter (address.Base): the
	// user's subaddresses are the user's own addresses. "" = none.
	Delimiter string
	// Zone is the time zone the user reads times in: descriptions
	// (Describe) show every time in it. nil = UTC. The caller loads it
	// (filter: the user's time zone, else default_timezone).
	Zone *time.Location
}

// Is reports whether addr (normalised) is one of the user's calendar
// addresses, or a subaddress of one: an invitation sent to
// bob+team@example.test names ATTENDEE bob+team@example.test, and that is
// Bob (docs/rules.md "Users and addresses"). This gives a sender nothing it did not
// have: whoever writes ORGANIZER bob+x@ could as well write bob@.
func (u *User) Is(addr string) bool {
	if addr == "" {
		return false
	}
	if u.isExactly(addr) {
		return true
	}
	b := address.Base(addr, u.Delimiter)
	return b != addr && u.isExactly(b)
}

func (u *User) isExactly(addr string) bool {
	if addr == u.Address {
		return true
	}
	for _, a := range u.Aliases {
		if a == addr {
			return true
		}
	}
	return false
}

// IsDelegate reports whether addr may act for the user.
func (u *User) IsDelegate(addr string) bool {
	for _, d := range u.Delegates {
		if d == addr && addr != "" {
			return true
		}
	}
	return false
}
