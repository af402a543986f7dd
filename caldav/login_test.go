package caldav_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"imipd/caldav"
)

// Failed logins are counted per (source, user) and per source, the source
// taken from X-Forwarded-For when the peer is a trusted proxy (issue 13,
// attack 6: behind contrib/nginx every peer was 127.0.0.1, and ten wrong
// passwords for Bob from anywhere locked Bob out everywhere).
func TestCalDAVLoginThrottle(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	e.proc.Now = func() time.Time { return now }
	plain := newServer(e.proc, caldav.Options{})
	h := plain
	login := func(peer, xff, user, pass string) int {
		t.Helper()
		req := httptest.NewRequest("GET", planPath, nil)
		req.RemoteAddr = peer + ":40000"
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		req.SetBasicAuth(user, pass)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	const proxy = "127.0.0.1"
	const a, b = "198.51.100.1", "198.51.100.2"
	for i := 0; i < 10; i++ {
		if c := login(proxy, a, davUser, "guess"); c != 401 {
			t.Fatalf("wrong password %d from A: %d", i+1, c)
		}
	}
	if c := login(proxy, a, davUser, "guess"); c != 429 {
		t.Errorf("11th wrong password from A: %d, want 429", c)
	}
	if c := login(proxy, a, davUser, davPass); c != 429 {
		t.Errorf("right password from A, never logged in: %d, want 429 (A is blocked for Bob)", c)
	}
	if c := login(proxy, "203.0.113.9, "+b, davUser, davPass); c != 200 {
		t.Errorf("right password from B: %d, want 200", c)
	}
	// Logged in once, the password works from A as well (no bcrypt: the
	// success cache), and A's failures go on being refused.
	if c := login(proxy, a, davUser, davPass); c != 200 {
		t.Errorf("right password from A after B logged in: %d, want 200", c)
	}
	if c := login(proxy, a, davUser, "guess"); c != 429 {
		t.Errorf("wrong password from A: %d, want 429", c)
	}
	// A peer that is not a trusted proxy (here on a TLS listener, which
	// takes passwords from anywhere) cannot choose its source.
	h = newServer(e.proc, caldav.Options{TLS: true})
	for i := 0; i < 10; i++ {
		login("192.0.2.7", "198.51.100.1"+string(rune('0'+i)), "carol@example.test", "x")
	}
	if c := login("192.0.2.7", "198.51.100.99", "carol@example.test", "x"); c != 429 {
		t.Errorf("X-Forwarded-For from an untrusted peer was believed: %d", c)
	}
	h = plain
	// One source trying many names is stopped after 50 failures; another
	// source is not.
	const c1, c2 = "198.51.100.30", "198.51.100.31"
	for i := 0; i < 50; i++ {
		if c := login(proxy, c1, "user"+string(rune('A'+i))+"@example.test", "x"); c != 401 {
			t.Fatalf("name %d from C: %d", i, c)
		}
	}
	if c := login(proxy, c1, "new@example.test", "x"); c != 429 {
		t.Errorf("51st failure from C: %d, want 429", c)
	}
	if c := login(proxy, c2, "new@example.test", "x"); c != 401 {
		t.Errorf("first failure from D: %d, want 401", c)
	}
	// The window passes on the injected clock.
	now = now.Add(61 * time.Second)
	if c := login(proxy, a, davUser, "guess"); c != 401 {
		t.Errorf("A after the window: %d, want 401", c)
	}
}

// A blocked source cannot go on guessing against the success cache: once
// Bob's app has logged in (its password cached), a stranger's guesses from
// a blocked source were still compared with the cache, so the one 200
// among the 429s told the password, unthrottled (issue 13, attack 6,
// found replaying it against a running imipd). The guesses count as
// failures; after twice the cap the cache is not consulted either, while
// Bob's own source stays open.
func TestCalDAVLoginBlockedSourceNoOracle(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	e.proc.Now = func() time.Time { return now }
	h := newServer(e.proc, caldav.Options{})
	login := func(xff, pass string) int {
		t.Helper()
		req := httptest.NewRequest("GET", planPath, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("X-Forwarded-For", xff)
		req.SetBasicAuth(davUser, pass)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	const bob, mallory = "198.51.100.1", "203.0.113.50"
	if c := login(bob, davPass); c != 200 {
		t.Fatalf("Bob's app: %d", c)
	}
	for i := 0; i < 200; i++ {
		login(mallory, fmt.Sprintf("guess%d", i))
	}
	if c := login(mallory, davPass); c != 429 {
		t.Errorf("the right password guessed from a blocked source after 200 guesses: %d, want 429", c)
	}
	if c := login(bob, davPass); c != 200 {
		t.Errorf("Bob's app after the guesses: %d, want 200", c)
	}
	now = now.Add(61 * time.Second)
	if c := login(mallory, davPass); c != 200 {
		t.Errorf("the right password from the source after the window: %d, want 200", c)
	}
}
