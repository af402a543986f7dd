package caldav

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Login throttling for CalDAV basic auth (SECURITY.md "Logins"). Failed
// logins are counted per (source, user name) and per source, where the
// source is the client's address: the peer's, or, when the peer is a
// trusted proxy, the one the proxy wrote into X-Forwarded-For. So a
// stranger who guesses Bob's password from one source blocks that source,
// not Bob's own apps elsewhere; and an app already logged in with the right
// password (the success cache) is let in even from a blocked source, since
// that costs no bcrypt. Unknown user names share one budget of password
// checks across all sources, so they cannot cost unbounded bcrypt.

// Defaults of Options' throttling fields.
const (
	defaultMaxFailures       = 10 // per (source, user) in window
	defaultMaxSourceFailures = 50 // per source in window, all user names
	defaultWindow            = time.Minute
	defaultUnknownLogins     = 60 // password checks for unknown names per minute, all sources
	unknownBurst             = 20
	maxLoginKeys             = 100000
)

// defaultTrustedProxies are the peers whose X-Forwarded-For is believed
// when none are configured: loopback, where contrib/nginx runs.
var defaultTrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// loginGuard counts failed logins in a sliding window and holds the budget
// of password checks for unknown user names (a token bucket).
type loginGuard struct {
	mu            sync.Mutex
	maxPair       int
	maxSource     int
	window        time.Duration
	fails         map[string][]time.Time
	unknownRate   float64 // tokens per second
	unknownTokens float64
	unknownAt     time.Time
}

func newLoginGuard(opt Options) *loginGuard {
	return &loginGuard{maxPair: opt.maxFailures, maxSource: opt.maxSourceFailures, window: opt.window,
		fails: map[string][]time.Time{}, unknownRate: float64(opt.unknownLogins) / 60, unknownTokens: unknownBurst}
}

func pairKey(source, user string) string { return "u\x00" + source + "\x00" + user }
func sourceKey(source string) string     { return "s\x00" + source }

func (g *loginGuard) recent(key string, now time.Time) []time.Time {
	ts := g.fails[key]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= g.window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(g.fails, key)
	} else {
		g.fails[key] = ts
	}
	return ts
}

// wait is how long key must wait with max failures allowed, 0 if none.
func (g *loginGuard) wait(key string, max int, now time.Time) time.Duration {
	ts := g.recent(key, now)
	if len(ts) < max {
		return 0
	}
	return g.window - now.Sub(ts[len(ts)-max])
}

// blocked returns how long a password check for user from source must
// wait, 0 if it may run.
func (g *loginGuard) blocked(source, user string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(g.wait(pairKey(source, user), g.maxPair, now), g.wait(sourceKey(source), g.maxSource, now))
}

// cacheOpen reports whether a blocked source may still have a password
// compared with the success cache: while its failures in the window are
// fewer than twice the cap (the guesses it made while blocked count too).
func (g *loginGuard) cacheOpen(source, user string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.recent(pairKey(source, user), now)) < 2*g.maxPair &&
		len(g.recent(sourceKey(source), now)) < 2*g.maxSource
}

// fail records a failed login of user from source. Each key keeps at most
// twice its cap of timestamps (all wait and cacheOpen look at), so a
// source that goes on failing while blocked costs no more memory.
func (g *loginGuard) fail(source, user string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.fails) > maxLoginKeys {
		for k := range g.fails {
			g.recent(k, now)
		}
	}
	for k, max := range map[string]int{pairKey(source, user): g.maxPair, sourceKey(source): g.maxSource} {
		ts := append(g.recent(k, now), now)
		if len(ts) > 2*max {
			ts = ts[len(ts)-2*max:]
		}
		g.fails[k] = ts
	}
}

// unknownCheck takes one password check for an unknown user name from the
// global budget; false when it is spent.
func (g *loginGuard) unknownCheck(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.unknownAt.IsZero() && now.After(g.unknownAt) {
		g.unknownTokens = min(unknownBurst, g.unknownTokens+now.Sub(g.unknownAt).Seconds()*g.unknownRate)
	}
	if now.After(g.unknownAt) {
		g.unknownAt = now
	}
	if g.unknownTokens < 1 {
		return false
	}
	g.unknownTokens--
	return true
}

// clientAddr is the source failed logins are counted against: the peer's
// address, or, when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For (read from the right, as each proxy appends the peer it
// saw) that is not itself a trusted proxy.
func (s *Server) clientAddr(r *http.Request) string {
	peer := peerIP(r)
	ip, err := netip.ParseAddr(peer)
	if err != nil || !s.trustedProxy(ip) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // garbage from beyond the proxy: count it as the proxy
			}
			if !s.trustedProxy(a) {
				return a.Unmap().String()
			}
		}
	}
	return peer
}

func (s *Server) trustedProxy(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range s.opt.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
