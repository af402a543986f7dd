//go:build unix

package lmtp_test

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"imipd/filter/conn"
	"imipd/filter/lmtp"
)

// TestLMTPNonPeerRefused: a listener's peers (conn.Listen) through the LMTP
// proxy: a forged Authentication-Results with the trusted authserv-id,
// delivered straight to imipd's LMTP by someone who is not the MTA, reaches
// neither the calendar nor the mailbox.
func TestLMTPNonPeerRefused(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.p.Cfg.TrustedAuthServIDs = []string{"mx.example.test"}
	e.proxy.Shutdown(t.Context())
	ln, err := conn.Listen("inet:127.0.0.1:0", conn.ListenOptions{Peers: []netip.Prefix{netip.MustParsePrefix("192.0.2.25/32")}})
	if err != nil {
		t.Fatal(err)
	}
	proxy := lmtp.NewProxy(e.p, lmtp.Options{Forward: e.ds.addr}, nil)
	go proxy.Serve(ln)
	t.Cleanup(func() { proxy.Shutdown(t.Context()) })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := bufio.NewReader(c).ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("a non-peer was served: %q %v", l, err)
	}
	if n := len(e.ds.transactions()); n != 0 {
		t.Errorf("%d downstream transactions, want none", n)
	}
}
