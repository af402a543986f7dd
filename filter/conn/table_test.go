package conn

import (
	"log/slog"
	"net"
	"testing"
)

// fakeConn is an evictable whose idleness the test sets.
type fakeConn struct {
	busy, evicted bool
}

func (c *fakeConn) EvictIdle() bool {
	if c.busy {
		return false
	}
	c.evicted = true
	return true
}

// The caps of Table: per peer and in all, the oldest idle connection
// (of that peer, for the per-peer cap) makes room, a busy one never does.
func TestConnTable(t *testing.T) {
	a := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1}
	b := &net.TCPAddr{IP: net.ParseIP("192.0.2.2"), Port: 1}
	tab := NewTable("test", 4, 2, slog.New(slog.DiscardHandler))
	a1, a2, a3 := &fakeConn{busy: true}, &fakeConn{}, &fakeConn{}
	for _, c := range []*fakeConn{a1, a2} {
		if !tab.Add(c, a) {
			t.Fatal("refused under the caps")
		}
	}
	// Peer a is at its cap: its oldest idle one (a2; a1 is busy) goes.
	if !tab.Add(a3, a) || !a2.evicted || a1.evicted {
		t.Fatalf("per-peer cap: a1 evicted %v, a2 evicted %v", a1.evicted, a2.evicted)
	}
	// Another peer is not held back by a's cap.
	b1, b2 := &fakeConn{busy: true}, &fakeConn{busy: true}
	if !tab.Add(b1, b) || !tab.Add(b2, b) {
		t.Fatal("peer b refused below its cap")
	}
	// At the total cap (a1, a3, b1, b2): a3 is the only idle one.
	b3 := &fakeConn{}
	if tab.Add(b3, b) {
		t.Fatal("b over its per-peer cap with none of its own idle: accepted")
	}
	c := &net.TCPAddr{IP: net.ParseIP("192.0.2.3"), Port: 1}
	c1 := &fakeConn{}
	if !tab.Add(c1, c) || !a3.evicted {
		t.Fatal("total cap: the idle a3 did not make room")
	}
	c2 := &fakeConn{}
	c1.busy = true
	if tab.Add(c2, c) {
		t.Fatal("every connection busy: accepted over the total cap")
	}
	tab.Remove(b1)
	tab.Remove(b1) // again: nothing
	if !tab.Add(c2, c) {
		t.Fatal("refused below the cap after a removal")
	}
}
