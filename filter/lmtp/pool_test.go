package lmtp_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"imipd/filter/lmtp"
)

// The downstream connection pool of the LMTP proxy, against the real go-smtp
// downstream of lmtp_test.go. lmtpDeliver's NOOP after DATA makes the pool's
// state settled when it returns.

func (d *lmtpDS) counts() (opened, live int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opened, len(d.live)
}

// closeConns closes the downstream's side of every open connection, after a
// 421 when say421 (as Dovecot does on its idle timeout). d.mu is held.
func (d *lmtpDS) closeConns(say421 bool) {
	for c := range d.live {
		if say421 {
			c.Conn().Write([]byte("421 4.4.2 dovecot.test Disconnected client for inactivity\r\n"))
		}
		c.Conn().Close()
	}
}

// waitLogouts waits until n more downstream connections have ended.
func (d *lmtpDS) waitLogouts(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-d.loggedOut:
		case <-timeout:
			_, live := d.counts()
			t.Fatalf("downstream connections did not end (%d still open)", live)
		}
	}
}

// lmtpDeliverAll starts n deliveries of lmtpPlain at once; the function
// returned waits for them.
func lmtpDeliverAll(t *testing.T, addr string, n int, rcpts []string) func() []lmtpDelivery {
	var wg sync.WaitGroup
	results := make([]lmtpDelivery, n)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = lmtpDeliver(t, addr, "alice@remote.test", rcpts, lmtpPlain)
		}()
	}
	return func() []lmtpDelivery {
		wg.Wait()
		return results
	}
}

func wantOpened(t *testing.T, ds *lmtpDS, want int) {
	t.Helper()
	if opened, _ := ds.counts(); opened != want {
		t.Errorf("downstream connections opened: %d, want %d", opened, want)
	}
}

func TestLMTPPoolReuse(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	for range 3 {
		d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test", "carol@example.test"}, lmtpPlain)
		lmtpWantOK(t, d, "bob@example.test", "carol@example.test")
	}
	wantOpened(t, e.ds, 1)
	if n := e.proxy.IdleDownstream(); n != 1 {
		t.Errorf("idle downstream connections %d, want 1", n)
	}
	if n := len(e.ds.transactions()); n != 3 {
		t.Errorf("%d downstream transactions, want 3", n)
	}
}

// A pooled connection the downstream has closed, or that dies when used
// before any recipient was accepted on it, is replaced: the delivery
// succeeds, on a new connection.
func TestLMTPPoolLostIdleConnection(t *testing.T) {
	cases := []struct {
		name  string
		fault func(ds *lmtpDS)
	}{
		{"closed while idle", func(ds *lmtpDS) { ds.closeConns(false) }},
		{"421 and closed while idle", func(ds *lmtpDS) { ds.closeConns(true) }},
		{"dies at MAIL", func(ds *lmtpDS) { ds.dropMail = 1 }},
		{"dies at the first RCPT", func(ds *lmtpDS) { ds.dropRcpt["bob@example.test"] = true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newLMTPEnv(t, lmtp.Options{})
			rcpts := []string{"bob@example.test", "carol@example.test"}
			lmtpWantOK(t, lmtpDeliver(t, e.addr, "alice@remote.test", rcpts, lmtpPlain), rcpts...)
			e.ds.mu.Lock()
			c.fault(e.ds)
			e.ds.mu.Unlock()
			d := lmtpDeliver(t, e.addr, "alice@remote.test", rcpts, lmtpPlain)
			lmtpWantOK(t, d, rcpts...)
			if len(d.rcptErr) > 0 {
				t.Errorf("RCPT refusals %v", d.rcptErr)
			}
			wantOpened(t, e.ds, 2)
			txns := e.ds.transactions()
			if len(txns) != 2 || len(txns[1].Rcpts) != 2 {
				t.Errorf("downstream transactions %+v, want 2, the second for both", txns)
			}
		})
	}
}

// The downstream lost in the middle of a transaction on a pooled
// connection, after a recipient was accepted: no retry; every recipient
// the downstream did not acknowledge gets 451 4.4.0, the others their 2xx;
// the connection is not reused.
func TestLMTPPoolDropMidTransaction(t *testing.T) {
	bob, carol := "bob@example.test", "carol@example.test"
	cases := []struct {
		name     string
		fault    func(ds *lmtpDS)
		rcptFail []string // 451 at RCPT
		dataFail []string // 451 after DATA
		dataOK   []string
	}{
		{"in DATA", func(ds *lmtpDS) { ds.dropData = true }, nil, []string{bob, carol}, nil},
		// carol is refused with 451 at RCPT; bob's copy goes out on a new
		// connection at DATA.
		{"at the second RCPT", func(ds *lmtpDS) { ds.dropRcpt[carol] = true }, []string{carol}, nil, []string{bob}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newLMTPEnv(t, lmtp.Options{})
			lmtpWantOK(t, lmtpDeliver(t, e.addr, "alice@remote.test", []string{bob}, lmtpPlain), bob)
			e.ds.mu.Lock()
			c.fault(e.ds)
			e.ds.mu.Unlock()
			d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{bob, carol}, lmtpPlain)
			if d.err != nil {
				t.Fatal(d.err)
			}
			is451 := func(err error) bool {
				var se *smtp.SMTPError
				return errors.As(err, &se) && se.Code == 451 && se.EnhancedCode == smtp.EnhancedCode{4, 4, 0}
			}
			for _, rc := range c.rcptFail {
				if !is451(d.rcptErr[rc]) {
					t.Errorf("%s at RCPT: %v, want 451 4.4.0", rc, d.rcptErr[rc])
				}
			}
			for _, rc := range c.dataFail {
				if se := d.failed[rc]; se == nil || !is451(se) {
					t.Errorf("%s after DATA: %v (ok %v), want 451 4.4.0", rc, se, d.ok[rc])
				}
			}
			lmtpWantOK(t, d, c.dataOK...)
			if n := e.proxy.IdleDownstream(); len(c.dataOK) == 0 && n != 0 {
				t.Errorf("%d idle downstream connections: the broken one was kept", n)
			}
			e.ds.mu.Lock()
			e.ds.dropData = false
			e.ds.mu.Unlock()
			lmtpWantOK(t, lmtpDeliver(t, e.addr, "alice@remote.test", []string{bob, carol}, lmtpPlain), bob, carol)
			wantOpened(t, e.ds, 2)
		})
	}
}

// At most PoolSize idle connections are kept: four transactions at once
// use four downstream connections; afterwards two stay, two are closed;
// the next deliveries reuse the two.
func TestLMTPPoolCap(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{PoolSize: 2})
	hold := make(chan struct{})
	e.ds.mu.Lock()
	e.ds.hold = hold
	e.ds.mu.Unlock()
	wait := lmtpDeliverAll(t, e.addr, 4, []string{"bob@example.test"})
	for range 4 {
		<-e.ds.entered // all four are in DATA downstream at once
	}
	e.ds.mu.Lock()
	e.ds.hold = nil
	e.ds.mu.Unlock()
	close(hold)
	for _, d := range wait() {
		lmtpWantOK(t, d, "bob@example.test")
	}
	wantOpened(t, e.ds, 4)
	if n := e.proxy.IdleDownstream(); n != 2 {
		t.Errorf("idle downstream connections %d, want 2 (PoolSize)", n)
	}
	e.ds.waitLogouts(t, 2)
	if _, live := e.ds.counts(); live != 2 {
		t.Errorf("%d downstream connections open, want 2", live)
	}
	for range 2 {
		lmtpWantOK(t, lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpPlain), "bob@example.test")
	}
	wantOpened(t, e.ds, 4)
}

// Idle connections are closed once the Processor's clock passes PoolIdle
// (not before), and on Shutdown; with pooling off, each upstream session
// closes its own.
func TestLMTPPoolCloses(t *testing.T) {
	cases := []struct {
		name  string
		opt   lmtp.Options
		close func(e *lmtpEnv)
		idle  int // idle connections after one delivery
	}{
		{"idle timeout", lmtp.Options{PoolIdle: time.Hour}, func(e *lmtpEnv) {
			e.clock.set(lmtpNow.Add(time.Hour - time.Nanosecond))
			lmtp.ReapPool(e.proxy)
			if n := e.proxy.IdleDownstream(); n != 1 {
				t.Errorf("idle downstream connections %d before PoolIdle, want 1", n)
			}
			e.clock.set(lmtpNow.Add(time.Hour))
			lmtp.ReapPool(e.proxy)
		}, 1},
		{"shutdown", lmtp.Options{}, func(e *lmtpEnv) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.proxy.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}, 1},
		{"pooling off", lmtp.Options{PoolSize: -1}, func(*lmtpEnv) {}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newLMTPEnv(t, c.opt)
			lmtpWantOK(t, lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpPlain), "bob@example.test")
			if n := e.proxy.IdleDownstream(); n != c.idle {
				t.Errorf("idle downstream connections %d, want %d", n, c.idle)
			}
			c.close(e)
			e.ds.waitLogouts(t, 1)
			if _, live := e.ds.counts(); live != 0 {
				t.Errorf("%d downstream connections still open", live)
			}
			if n := e.proxy.IdleDownstream(); n != 0 {
				t.Errorf("idle downstream connections %d, want 0", n)
			}
		})
	}
}

// Many concurrent deliveries share few downstream connections, all get
// their 2xx (run with -race).
func TestLMTPPoolConcurrent(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{PoolSize: 4})
	results := lmtpDeliverAll(t, e.addr, 40, []string{"bob@example.test", "carol@example.test"})()
	for _, d := range results {
		lmtpWantOK(t, d, "bob@example.test", "carol@example.test")
	}
	if n := len(e.ds.transactions()); n != len(results) {
		t.Errorf("%d downstream transactions, want %d", n, len(results))
	}
	if n := e.proxy.IdleDownstream(); n > 4 {
		t.Errorf("idle downstream connections %d, over PoolSize 4", n)
	}
}

// connAlive, the check of an idle connection before reuse.
func TestLMTPConnAlive(t *testing.T) {
	cases := []struct {
		name string
		peer func(c net.Conn)
		want bool
	}{
		{"idle", func(net.Conn) {}, true},
		{"closed by the peer", func(c net.Conn) { c.Close() }, false},
		{"unasked reply", func(c net.Conn) { c.Write([]byte("421 4.4.2 bye\r\n")) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			peer, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			c.peer(peer)
			if c.want {
				if !lmtp.ConnAlive(conn) {
					t.Error("an idle, open connection is not alive")
				}
				return
			}
			// Wait (bounded) for what the peer did to arrive on loopback:
			// ConnAlive is asked again each time the poller reports the
			// socket readable (nothing is read).
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			rc, err := conn.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.Read(func(uintptr) bool { return !lmtp.ConnAlive(conn) }); err != nil {
				t.Fatalf("connection still reported alive: %v", err)
			}
		})
	}
}
