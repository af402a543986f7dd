//go:build e2e

// Faults (issue 6, "Tests that must exist"): the store locked, the disk
// full, the LMTP downstream dropping mid-transaction, slow clients on the
// milter and LMTP sockets. Each test runs its own imipd (privImipd in
// crash_test.go), without Postfix.

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"imipd/calstore"
)

// Postfix's milter_content_timeout is 300 s; imipd's ProcessTimeout is 60 s.
// A fault must end in the configured action well before the former.
const faultDeadline = 65 * time.Second

// faultInvite is a fresh invitation for user with a unique UID; pad adds a
// DESCRIPTION of that many bytes (folded), to make the write need new pages.
// faultInvite is a fresh invitation to the attendees with a unique UID; pad
// adds COMMENT properties of that many bytes in all (each under the line
// length limit, folded), to make storing it need new pages.
func faultInvite(tag string, pad int, attendees ...string) (uid string, raw []byte) {
	uid = unique("fault-"+tag) + "@remote.test"
	raw = crashInvitation(uid, "<"+uid+">", attendees, time.Now())
	if pad > 0 {
		var b strings.Builder
		for i := 0; i < pad; i++ {
			switch {
			case i%16000 == 0:
				b.WriteString("COMMENT:")
			case i%70 == 0:
				b.WriteString("\r\n ")
			}
			b.WriteByte('a' + byte(i%26))
			if i%16000 == 15999 || i == pad-1 {
				b.WriteString("\r\n")
			}
		}
		raw = bytes.Replace(raw, []byte("SUMMARY:"), []byte(b.String()+"SUMMARY:"), 1)
	}
	return uid, raw
}

func wantInvitationHeader(uid string) string {
	return "needs-action; method=REQUEST; uid=" + uid + "; reason=invitation"
}

// ---- (1) store locked ----

// TestFaultStoreLocked: a second imipd on a data directory another one holds
// exits at once with an error naming the lock (it never listens, so an MTA
// applies the milter's default_action); imipctl with the daemon's socket
// gone reports the lock instead of hanging.
func TestFaultStoreLocked(t *testing.T) {
	first := newPrivImipd(t, privOptions{})
	if err := first.start(); err != nil {
		t.Fatal(err)
	}
	second := newPrivImipd(t, privOptions{dataDir: first.dataDir})

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, E.imipdBin, "-config", second.conf).CombinedOutput()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("second imipd on a held data dir: %v (want exit status 1)\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("locked")) {
		t.Errorf("second imipd: the error does not name the lock:\n%s", out)
	}
	// calstore.DefaultTimeout (1 s) plus start-up.
	if took > calstore.DefaultTimeout+4*time.Second {
		t.Errorf("second imipd took %s to give up (lock timeout %s)", took, calstore.DefaultTimeout)
	}
	t.Logf("second imipd exited after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(lastLine(out)))
	if c, err := net.DialTimeout("tcp", second.milterAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("second imipd's milter port %s answers", second.milterAddr)
	}
	// The first still works, and its socket is untouched.
	if _, err := os.Stat(first.socketPath()); err != nil {
		t.Errorf("first imipd's admin socket after the second's attempt: %v", err)
	}
	uid, raw := faultInvite("locked", 0, "bob@example.test")
	if o := milterDeliver(first.milterAddr, "olga@remote.test", []string{"bob@example.test"}, raw, 30*time.Second); !o.acked() || o.header != wantInvitationHeader(uid) {
		t.Errorf("first imipd after the second's attempt: %+v", o)
	}

	// imipctl with the socket gone while the daemon holds the lock.
	if err := os.Remove(first.socketPath()); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	cmd := exec.CommandContext(ctx, E.imipctlBin, "-config", first.conf, "users")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_, err = cmd.Output()
	took = time.Since(start)
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("imipctl users with the socket gone: %v (want exit status 1)\nstderr: %s", err, stderr.Bytes())
	}
	if !strings.Contains(stderr.String(), "locked") {
		t.Errorf("imipctl: the error does not name the lock: %s", stderr.Bytes())
	}
	if took > calstore.DefaultTimeout+4*time.Second {
		t.Errorf("imipctl took %s to give up", took)
	}
	t.Logf("imipctl with the socket gone exited after %s: %s", took.Round(time.Millisecond), strings.TrimSpace(stderr.String()))
	// The daemon's milter still answers; it stops cleanly.
	uid, raw = faultInvite("locked", 0, "bob@example.test")
	if o := milterDeliver(first.milterAddr, "olga@remote.test", []string{"bob@example.test"}, raw, 30*time.Second); !o.acked() || o.header != wantInvitationHeader(uid) {
		t.Errorf("first imipd after imipctl's attempt: %+v", o)
	}
	if err := first.stop(); err != nil {
		t.Errorf("first imipd exit: %v", err)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// ---- (2) disk full ----

// TestFaultDiskFull: the data directory on a small tmpfs, filled up. A
// delivery must be accepted (tagged error, or untagged) within the milter's
// deadline, imipd keeps running, /healthz answers 503 while writes fail, and
// once space is freed it processes again (and /healthz is 200 again); the
// file checks clean afterwards.
func TestFaultDiskFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root and CAP_SYS_ADMIN): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	d := newPrivImipd(t, privOptions{dataDir: mnt, http: true})
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	const user = "bob@example.test"
	deliver := func(raw []byte) (milterOutcome, time.Duration) {
		start := time.Now()
		o := milterDeliver(d.milterAddr, "olga@remote.test", []string{user}, raw, 2*faultDeadline)
		return o, time.Since(start)
	}
	for range 5 {
		uid, raw := faultInvite("disk", 2000, user)
		if o, _ := deliver(raw); !o.acked() || o.header != wantInvitationHeader(uid) {
			t.Fatalf("before the disk is full: %+v", o)
		}
	}

	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0xa5}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	// Fill the last partial block too.
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	f.Close()

	// Deliveries while full: each big enough to need new pages.
	type full struct {
		uid  string
		raw  []byte
		o    milterOutcome
		took time.Duration
	}
	var whileFull []full
	errorTagged := 0
	for range 5 {
		uid, raw := faultInvite("disk", 200<<10, user)
		o, took := deliver(raw)
		whileFull = append(whileFull, full{uid, raw, o, took})
		switch {
		case o.err != nil || !o.accepted:
			t.Errorf("disk full: delivery not accepted after %s: %+v", took, o)
		case took > faultDeadline:
			t.Errorf("disk full: accepted after %s, over %s", took, faultDeadline)
		case o.header == "error" || !o.added:
			errorTagged++
		}
		t.Logf("disk full: delivery accepted=%v header=%q (added %v) after %s", o.accepted, o.header, o.added, took.Round(time.Microsecond))
	}
	if errorTagged == 0 {
		t.Errorf("disk full: no delivery failed to store (the test did not fill the disk?)")
	}
	if exited, err := d.exited(); exited {
		t.Fatalf("imipd exited while the disk was full: %v", err)
	}
	// Writes fail: not healthy until one commits again.
	if code := httpStatus(t, "http://"+d.httpAddr+"/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("disk full: /healthz %d, want 503", code)
	}

	// Space freed: the MTA's next message is processed; the ones that
	// failed (delivered tagged error) are processed when sent again (by
	// hand: imipctl process, or as here a resend).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	uid, raw := faultInvite("disk", 2000, user)
	if o, took := deliver(raw); !o.acked() || o.header != wantInvitationHeader(uid) {
		t.Errorf("after freeing space: %+v (after %s)", o, took)
	}
	if code := httpStatus(t, "http://"+d.httpAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("after a write committed again: /healthz %d, want 200", code)
	}
	for _, w := range whileFull {
		o, _ := deliver(w.raw)
		if !o.acked() || o.header != wantInvitationHeader(w.uid) {
			t.Errorf("after freeing space, %s again: %+v", w.uid, o)
		}
	}
	if err := d.stop(); err != nil {
		t.Errorf("imipd exit after SIGTERM: %v", err)
	}
	db, err := calstore.Open(d.dbPath(), calstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(context.Background()); err != nil {
		t.Errorf("store check after disk full: %v", err)
	}
	err = db.Read(context.Background(), func(tx calstore.Tx) error {
		for _, w := range whileFull {
			ev, err := tx.Event(user, w.uid)
			if err != nil {
				t.Errorf("%s: %v", w.uid, err)
				continue
			}
			hist, err := tx.EventHistory(user, ev.UID)
			if err != nil || len(hist) != 1 {
				t.Errorf("%s: %d history entries (%v), want 1", w.uid, len(hist), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logHas(t, d.logFile, "no space left on device")
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func logHas(t *testing.T, file, s string) {
	t.Helper()
	b, _ := os.ReadFile(file)
	if !bytes.Contains(b, []byte(s)) {
		t.Errorf("%s: no %q", file, s)
	}
}

// ---- (3) LMTP downstream drops mid-transaction ----

// lmtpDown is a downstream LMTP server (Dovecot's part) that can be made to
// die in the middle of a transaction.
type lmtpDown struct {
	ln   net.Listener
	srv  *smtp.Server
	mode atomic.Value // string: "ok", "cut-in-data", "cut-after-first"
	got  atomic.Int64 // messages received completely
	live atomic.Int64 // sessions open
}

func startLMTPDown(t *testing.T) *lmtpDown {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &lmtpDown{ln: ln}
	d.mode.Store("ok")
	d.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		d.live.Add(1)
		return &downSession{d: d, c: c}, nil
	}))
	d.srv.LMTP = true
	d.srv.Domain = "down.example.test"
	d.srv.ReadTimeout, d.srv.WriteTimeout = 30*time.Second, 30*time.Second
	go d.srv.Serve(ln)
	t.Cleanup(func() { d.srv.Close() })
	return d
}

func (d *lmtpDown) addr() string { return d.ln.Addr().String() }

type downSession struct {
	d     *lmtpDown
	c     *smtp.Conn
	rcpts []string
}

func (s *downSession) Reset()                                      { s.rcpts = nil }
func (s *downSession) Logout() error                               { s.d.live.Add(-1); return nil }
func (s *downSession) Mail(from string, _ *smtp.MailOptions) error { return nil }
func (s *downSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *downSession) Data(r io.Reader) error { return errors.New("LMTP only") }

// kill cuts the connection as a dying process does (RST).
func (s *downSession) kill() {
	if tc, ok := s.c.Conn().(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	s.c.Conn().Close()
}

func (s *downSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	switch s.d.mode.Load().(string) {
	case "cut-in-data":
		io.CopyN(io.Discard, r, 200)
		s.kill()
		return errors.New("killed")
	case "cut-after-first":
		io.Copy(io.Discard, r)
		status.SetStatus(s.rcpts[0], nil)
		time.Sleep(300 * time.Millisecond) // the first reply goes out
		s.kill()
		return errors.New("killed")
	}
	io.Copy(io.Discard, r)
	s.d.got.Add(1)
	for _, rc := range s.rcpts {
		status.SetStatus(rc, nil)
	}
	return nil
}

// lmtpSend delivers raw to the LMTP proxy as Postfix's lmtp client does and
// returns each recipient's reply code ("250", "451 4.4.0", ...) or the
// session error.
func lmtpSend(addr string, rcpts []string, raw []byte) (map[string]string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = 2*faultDeadline, 2*faultDeadline
	if err := c.Hello("mx.example.test"); err != nil {
		return nil, fmt.Errorf("LHLO: %w", err)
	}
	if err := c.Mail("olga@remote.test", nil); err != nil {
		return nil, fmt.Errorf("MAIL: %w", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return nil, fmt.Errorf("RCPT %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return nil, fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	resp, err := w.CloseWithLMTPResponse()
	got := map[string]string{}
	for rc := range resp {
		got[rc] = "250"
	}
	var perRcpt smtp.LMTPDataError
	if errors.As(err, &perRcpt) {
		for rc, se := range perRcpt {
			got[rc] = fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
	} else if err != nil {
		return got, err
	}
	c.Quit()
	return got, nil
}

// TestFaultLMTPDownstreamDrop: the downstream LMTP server dies while it
// receives the message, or after acknowledging the first recipient only:
// every recipient it did not acknowledge gets 4xx from imipd (the upstream
// retries those), the acknowledged one 250; imipd keeps serving.
func TestFaultLMTPDownstreamDrop(t *testing.T) {
	down := startLMTPDown(t)
	d := newPrivImipd(t, privOptions{lmtpForward: down.addr()})
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"bob@example.test", "carol@example.test"}
	cases := []struct {
		mode string
		want map[string]string // code class by recipient
	}{
		{"ok", map[string]string{rcpts[0]: "2", rcpts[1]: "2"}},
		{"cut-in-data", map[string]string{rcpts[0]: "4", rcpts[1]: "4"}},
		{"cut-after-first", map[string]string{rcpts[0]: "2", rcpts[1]: "4"}},
		{"ok", map[string]string{rcpts[0]: "2", rcpts[1]: "2"}},
	}
	for _, c := range cases {
		down.mode.Store(c.mode)
		_, raw := faultInvite("lmtp", 20000, rcpts...)
		start := time.Now()
		got, err := lmtpSend(d.lmtpAddr, rcpts, raw)
		took := time.Since(start)
		if err != nil {
			t.Errorf("%s: %v (replies so far %v)", c.mode, err, got)
			continue
		}
		for _, rc := range rcpts {
			if !strings.HasPrefix(got[rc], c.want[rc]) {
				t.Errorf("%s: %s got %q, want %sxx", c.mode, rc, got[rc], c.want[rc])
			}
		}
		if took > faultDeadline {
			t.Errorf("%s: took %s", c.mode, took)
		}
		t.Logf("downstream %s: replies %v after %s", c.mode, got, took.Round(time.Millisecond))
	}
	if exited, err := d.exited(); exited {
		t.Fatalf("imipd exited: %v", err)
	}
}

// ---- (4) slowloris ----

// TestFaultSlowloris: 200 connections each on the milter and LMTP sockets
// that send nothing or one byte per second: on the milter 100 silent and 100
// announcing a packet of 1 MiB (the largest imipd takes, so that each makes
// imipd allocate it) and sending it one byte a second; on LMTP 100 silent,
// 50 sending a command line one byte a second, 50 sending a message (after
// DATA) one byte a second. Meanwhile a normal message gets through both transports at once
// and imipd's RSS stays bounded. imipd runs with read_timeout = 10s; the test
// holds the connections IMIPD_SLOWLORIS_HOLD (default 20s) and checks that
// every one was cut.
func TestFaultSlowloris(t *testing.T) {
	hold := 20 * time.Second
	if v := os.Getenv("IMIPD_SLOWLORIS_HOLD"); v != "" {
		h, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("IMIPD_SLOWLORIS_HOLD: %v", err)
		}
		hold = h
	}
	const readTimeout = 10 * time.Second // [milter]/[lmtp] read_timeout below
	down := startLMTPDown(t)
	d := newPrivImipd(t, privOptions{lmtpForward: down.addr(), http: true, readTimeout: "10s"})
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	normal := func(what string) {
		t.Helper()
		uid, raw := faultInvite("slow", 0, "bob@example.test")
		start := time.Now()
		o := milterDeliver(d.milterAddr, "olga@remote.test", []string{"bob@example.test"}, raw, 30*time.Second)
		if !o.acked() || o.header != wantInvitationHeader(uid) {
			t.Errorf("%s: milter delivery: %+v", what, o)
		}
		mt := time.Since(start)
		start = time.Now()
		_, raw = faultInvite("slow", 0, "carol@example.test")
		got, err := lmtpSend(d.lmtpAddr, []string{"carol@example.test"}, raw)
		if err != nil || got["carol@example.test"] != "250" {
			t.Errorf("%s: LMTP delivery: %v %v", what, got, err)
		}
		t.Logf("%s: a normal message took %s (milter), %s (LMTP)", what, mt.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	normal("before")
	rss0, heap0 := d.rssKiB(), heapInuse(t, d.httpAddr)

	type slow struct {
		kind string // milter-silent, milter-drip, lmtp-silent, lmtp-drip, lmtp-drip-data
		c    net.Conn
		cut  atomic.Bool
		at   atomic.Int64 // unix nano when cut was seen
	}
	var conns []*slow
	open := func(kind, addr string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		conns = append(conns, &slow{kind: kind, c: c})
	}
	for i := range 100 {
		open("milter-silent", d.milterAddr)
		open("milter-drip", d.milterAddr)
		open("lmtp-silent", d.lmtpAddr)
		if i%2 == 0 {
			open("lmtp-drip", d.lmtpAddr)
		} else {
			open("lmtp-drip-data", d.lmtpAddr)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.c.Close()
			markCut := func() {
				if !s.cut.Swap(true) {
					s.at.Store(time.Now().UnixNano())
				}
			}
			switch s.kind {
			case "milter-silent", "lmtp-silent":
				// Wait for the server to close (EOF) or the test to end.
				go func() { <-ctx.Done(); s.c.SetReadDeadline(time.Now()) }()
				io.Copy(io.Discard, s.c)
				if ctx.Err() == nil {
					markCut()
				}
			case "milter-drip", "lmtp-drip", "lmtp-drip-data":
				var payload []byte
				first := 0 // bytes sent at once, then one a second
				switch s.kind {
				case "milter-drip":
					// A packet header announcing 1 MiB (go-milter's
					// maxPacketSize), then its body one byte a second.
					payload = binary.BigEndian.AppendUint32(nil, 1<<20)
					first = len(payload)
					payload = append(payload, bytes.Repeat([]byte{'O'}, 1<<20)...)
				case "lmtp-drip":
					// LHLO, then a command line that never ends.
					payload = []byte("LHLO slow.example.test\r\nMAIL FROM:<")
					first = len("LHLO slow.example.test\r\n")
					payload = append(payload, bytes.Repeat([]byte{'x'}, 1<<20)...)
				case "lmtp-drip-data":
					// A transaction, then the message one byte a second.
					payload = []byte("LHLO slow.example.test\r\nMAIL FROM:<olga@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
					first = len(payload)
					payload = append(payload, bytes.Repeat([]byte("Subject: x\r\n"), 1<<16)...)
				}
				go func() { io.Copy(io.Discard, s.c); markCut() }() // server replies; EOF when cut
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for i := 0; ; i++ {
					n := 1
					if i == 0 {
						n = first
					}
					s.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := s.c.Write(payload[:n]); err != nil {
						markCut()
						return
					}
					payload = payload[n:]
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					if s.cut.Load() {
						return
					}
				}
			}
		}()
	}

	time.Sleep(3 * time.Second)
	normal("during")
	t.Logf("during: imipd holds %d connections to the downstream LMTP server", down.live.Load())
	maxRSS, maxHeap := d.rssKiB(), heapInuse(t, d.httpAddr)
	for time.Since(start) < hold {
		time.Sleep(min(10*time.Second, hold-time.Since(start)+time.Millisecond))
		maxRSS, maxHeap = max(maxRSS, d.rssKiB()), max(maxHeap, heapInuse(t, d.httpAddr))
	}
	normal("after holding")
	elapsed := time.Since(start)
	counts := map[string][2]int{} // kind -> open, cut
	var firstCut, lastCut time.Duration
	for _, s := range conns {
		c := counts[s.kind]
		if s.cut.Load() {
			c[1]++
			at := time.Duration(s.at.Load() - start.UnixNano())
			if firstCut == 0 || at < firstCut {
				firstCut = at
			}
			lastCut = max(lastCut, at)
		} else {
			c[0]++
		}
		counts[s.kind] = c
	}
	cancel()
	wg.Wait()
	t.Logf("held %d connections for %s: RSS %d KiB before, at most %d KiB during (+%d KiB); Go heap in use %d KiB before, at most %d KiB during",
		len(conns), elapsed.Round(time.Second), rss0, maxRSS, maxRSS-rss0, heap0>>10, maxHeap>>10)
	for _, k := range []string{"milter-silent", "milter-drip", "lmtp-silent", "lmtp-drip", "lmtp-drip-data"} {
		t.Logf("  %-14s still open %3d, cut %3d", k, counts[k][0], counts[k][1])
	}
	if counts["milter-silent"][1]+counts["lmtp-silent"][1] > 0 {
		t.Logf("  cuts seen between %s and %s after opening", firstCut.Round(time.Second), lastCut.Round(time.Second))
	}
	// Bounded: 200 milter connections each announcing 1 MiB may cost at
	// most that, 200 MiB, plus the LMTP ones' line buffers (64 KiB cap).
	if limit := 256 << 10; maxRSS-rss0 > limit {
		t.Errorf("RSS grew by %d KiB holding %d slow connections (limit %d KiB)", maxRSS-rss0, len(conns), limit)
	}
	if limit := 256 << 20; maxHeap-heap0 > limit {
		t.Errorf("Go heap in use grew by %d KiB holding %d slow connections (limit %d KiB)", (maxHeap-heap0)>>10, len(conns), limit>>10)
	}
	if exited, err := d.exited(); exited {
		t.Fatalf("imipd exited: %v", err)
	}
	if hold <= readTimeout {
		t.Logf("read timeouts are %s: cuts not checked with a %s hold", readTimeout, hold)
		return
	}
	for _, k := range []string{"milter-silent", "lmtp-silent", "milter-drip", "lmtp-drip", "lmtp-drip-data"} {
		if counts[k][0] > 0 {
			t.Errorf("%s: %d of %d connections still open after %s (read timeout %s)", k, counts[k][0], counts[k][0]+counts[k][1], elapsed.Round(time.Second), readTimeout)
		}
	}
}

// heapInuse reads go_memstats_heap_inuse_bytes from imipd's /metrics, 0 if
// it is not there.
func heapInuse(t *testing.T, addr string) int {
	t.Helper()
	if addr == "" {
		return 0
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f)
		}
	}
	return 0
}
