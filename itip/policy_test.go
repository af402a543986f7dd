package itip

import (
	"testing"
	"time"
)

func TestCompareVersion(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	cases := []struct {
		sa   int
		ta   time.Time
		sb   int
		tb   time.Time
		want int
	}{
		{2, t0, 1, t1, 1},  // higher SEQUENCE wins over DTSTAMP (RFC 5546 §2.1.5)
		{1, t1, 1, t0, 1},  // equal SEQUENCE: later DTSTAMP
		{1, t0, 1, t0, 0},  // same version
		{0, t1, 1, t0, -1}, // lower SEQUENCE
	}
	for _, c := range cases {
		if got := compareVersion(c.sa, c.ta, c.sb, c.tb); got != c.want {
			t.Errorf("compareVersion(%d,%v,%d,%v) = %d, want %d", c.sa, c.ta, c.sb, c.tb, got, c.want)
		}
	}
}

// TestUserIs: a user's subaddresses are the user's (docs/rules.md "Users and
// addresses"), with the delimiter the filter configures.
func TestUserIs(t *testing.T) {
	for _, c := range []struct {
		delim, addr string
		want        bool
	}{
		{"+", "bob@example.test", true},
		{"+", "bob+team@example.test", true},
		{"+", "b@alias.test", true},
		{"+", "b+x@alias.test", true},
		{"+", "bob-team@example.test", false},
		{"-+", "bob-team@example.test", true},
		{"", "bob+team@example.test", false},
		{"+", "bobby@example.test", false},
		{"+", "bob+x@other.test", false},
		{"+", "", false},
	} {
		u := User{Address: "bob@example.test", Aliases: []string{"b@alias.test"}, Delimiter: c.delim}
		if got := u.Is(c.addr); got != c.want {
			t.Errorf("delimiter %q: Is(%q) = %v, want %v", c.delim, c.addr, got, c.want)
		}
	}
}
