package itip

import (
	"fmt"
	"strconv"
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

// ParseTimeframe parses the timeframe syntax (Open-Xchange's,
// docs/rules.md "Policy"): space-separated numbers
// with units W (weeks), D (days), h, m, s, ms, e.g. "4W" or "2D 1h 12ms".
// Units are case-sensitive as in Open-Xchange except that "w" and "d" are
// accepted too; "m" is minutes and "ms" milliseconds.
func ParseTimeframe(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("itip: empty timeframe")
	}
	var total time.Duration
	for _, f := range strings.Fields(s) {
		i := 0
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			i++
		}
		if i == 0 || i == len(f) {
			return 0, fmt.Errorf("itip: timeframe %q: %q is not <number><unit>", s, f)
		}
		n, err := strconv.ParseInt(f[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("itip: timeframe %q: %w", s, err)
		}
		var unit time.Duration
		switch f[i:] {
		case "W", "w":
			unit = 7 * 24 * time.Hour
		case "D", "d":
			unit = 24 * time.Hour
		case "h", "H":
			unit = time.Hour
		case "m", "M":
			unit = time.Minute
		case "s", "S":
			unit = time.Second
		case "ms":
			unit = time.Millisecond
		default:
			return 0, fmt.Errorf("itip: timeframe %q: unknown unit %q (want W D h m s ms)", s, f[i:])
		}
		if n > int64((1<<63-1)/unit) || total+time.Duration(n)*unit < total {
			return 0, fmt.Errorf("itip: timeframe %q: too large", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// FormatTimeframe writes d in the timeframe syntax ("4W", "2D 1h 12ms").
func FormatTimeframe(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	units := []struct {
		u time.Duration
		s string
	}{{7 * 24 * time.Hour, "W"}, {24 * time.Hour, "D"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}}
	var parts []string
	for _, u := range units {
		if n := d / u.u; n > 0 {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+u.s)
			d -= n * u.u
		}
	}
	if len(parts) == 0 {
		return "0s"
	}
	return strings.Join(parts, " ")
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
