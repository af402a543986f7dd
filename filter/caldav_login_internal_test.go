package filter

import (
	"testing"
	"time"
)

// Unknown user names share one budget of bcrypt compares: a burst of 20,
// then UnknownLogins per minute, whoever asks.
func TestUnknownLoginBudget(t *testing.T) {
	g := newLoginGuard(CalDAVOptions{MaxFailures: 10, MaxSourceFailures: 50, Window: time.Minute, UnknownLogins: 60})
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

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"127.0.0.1", "10.1.2.3/8", "::1", "::ffff:192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1/32", "10.0.0.0/8", "::1/128", "192.0.2.1/32"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%d: %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := ParseTrustedProxies([]string{"proxy.example"}); err == nil {
		t.Error("a host name was accepted")
	}
}
