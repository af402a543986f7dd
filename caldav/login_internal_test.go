package caldav

import (
	"testing"
	"time"
)

// Unknown user names share one budget of bcrypt compares: a burst of 20,
// then UnknownLogins per minute, whoever asks.
func TestUnknownLoginBudget(t *testing.T) {
	g := newLoginGuard(Options{maxFailures: 10, maxSourceFailures: 50, window: time.Minute, unknownLogins: 60})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	n := 0
	for i := 0; i < 100; i++ {
		if g.unknownCheck(now) {
			n++
		}
	}
	if n != unknownBurst {
		t.Fatalf("%d checks at one instant, want %d", n, unknownBurst)
	}
	now = now.Add(10 * time.Second) // 60 a minute: 10 more
	for n = 0; g.unknownCheck(now); n++ {
	}
	if n != 10 {
		t.Fatalf("%d checks after 10 s, want 10", n)
	}
	if g.unknownCheck(now.Add(-time.Hour)) {
		t.Fatal("a clock going back gave a check")
	}
}
