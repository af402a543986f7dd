package conn

import (
	"cmp"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Connection defaults of the milter and LMTP listeners.
const (
	// defaultMaxConnections caps a listener's connections.
	defaultMaxConnections = 512
	// DefaultFirstReadTimeout bounds the wait for a new connection's
	// first packet (milter: the option negotiation) or command (LMTP:
	// LHLO). An MTA sends it at once; a connection that sends nothing is
	// not an MTA's.
	DefaultFirstReadTimeout = 10 * time.Second
)

// Evictable is a connection a Table may close to make room.
type Evictable interface {
	// EvictIdle closes the connection if no message is in progress on it
	// and reports whether it did. It must not call back into the table.
	EvictIdle() bool
}

// Table is a listener's set of live connections and its caps, the one
// place the milter and the LMTP proxy limit connections (SECURITY.md
// "Listeners"): at most max in all and perPeer from one remote address (a
// unix socket's connections are one peer). When a cap is reached, the
// oldest connection that is idle (no message in progress: an idle
// connection costs the attacker nothing, a message costs a deadline) is
// closed to make room, so idle connections can never keep the MTA's new
// ones out; when none is idle, the new connection is refused (the MTA
// applies its default action, or retries).
type Table struct {
	max, perPeer int
	what         string // "milter" or "LMTP", for the log
	log          *slog.Logger

	mu    sync.Mutex
	seq   uint64
	conns map[Evictable]connEntry
	peers map[netip.Addr]int
}

type connEntry struct {
	peer netip.Addr
	seq  uint64 // order of arrival: lower is older
}

// NewTable returns an empty table; max and perPeer of 0 (or below) are
// defaultMaxConnections and max; what names the listener in log lines.
func NewTable(what string, max, perPeer int, log *slog.Logger) *Table {
	if max <= 0 {
		max = defaultMaxConnections
	}
	if perPeer <= 0 || perPeer > max {
		perPeer = max
	}
	return &Table{max: max, perPeer: perPeer, what: what, log: log,
		conns: map[Evictable]connEntry{}, peers: map[netip.Addr]int{}}
}

// peerKey is a connection's peer for the per-peer cap: its IP address, or
// the zero Addr for a unix socket's (all one peer). A netip.Addr, not a
// string: no allocation per connection.
func peerKey(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// peerName is a peer for the log.
func peerName(p netip.Addr) string {
	if !p.IsValid() {
		return "unix"
	}
	return p.String()
}

// Add registers c, from remote, evicting the oldest idle connection when
// a cap is reached; false: refused (nothing idle to evict).
func (t *Table) Add(c Evictable, remote net.Addr) bool {
	peer := peerKey(remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.peers[peer] >= t.perPeer && !t.evictOldest(peer, true) {
		t.log.Warn(t.what+" connection refused: max_connections_per_peer reached, none idle",
			"max_connections_per_peer", t.perPeer, "remote", remote.String())
		return false
	}
	if len(t.conns) >= t.max && !t.evictOldest(netip.Addr{}, false) {
		t.log.Warn(t.what+" connection refused: max_connections reached, none idle",
			"max_connections", t.max, "remote", remote.String())
		return false
	}
	t.seq++
	t.conns[c] = connEntry{peer: peer, seq: t.seq}
	t.peers[peer]++
	return true
}

// evictOldest closes the oldest idle connection (of peer when samePeer,
// else of anyone) and forgets it.
func (t *Table) evictOldest(peer netip.Addr, samePeer bool) bool {
	type cand struct {
		c Evictable
		e connEntry
	}
	cands := make([]cand, 0, len(t.conns))
	for c, e := range t.conns {
		if !samePeer || e.peer == peer {
			cands = append(cands, cand{c, e})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.e.seq, b.e.seq) })
	for _, x := range cands {
		if x.c.EvictIdle() {
			t.log.Info(t.what+" idle connection closed to make room", "peer", peerName(x.e.peer))
			t.removeLocked(x.c)
			return true
		}
	}
	return false
}

// Remove forgets c (again: a no-op).
func (t *Table) Remove(c Evictable) {
	t.mu.Lock()
	t.removeLocked(c)
	t.mu.Unlock()
}

func (t *Table) removeLocked(c Evictable) {
	e, ok := t.conns[c]
	if !ok {
		return
	}
	delete(t.conns, c)
	if t.peers[e.peer]--; t.peers[e.peer] <= 0 {
		delete(t.peers, e.peer)
	}
}

// Each calls f for every connection (under the table's lock: f must not
// call back into the table).
func (t *Table) Each(f func(Evictable)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		f(c)
	}
}
