//go:build e2e

// Crash safety (issue 6, "Tests that must exist"): kill -9 imipd at a random
// moment while many milter deliveries run, restart it, let the MTA's retries
// arrive, and check in the bbolt file that every message the client got an
// accept for is reflected exactly once and none twice, and that the file
// checks clean.
//
// These tests start imipd processes of their own (privImipd: own data
// directory, own loopback ports, no Postfix), so they do not disturb the
// shared instance of harness_test.go.

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
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

	milter "github.com/d--j/go-milter"

	"imipd/calstore"
)

// ---- a private imipd ----

// privImipd is an imipd process the test starts, kills and restarts by its
// own PID, with its own configuration, data directory and ports.
type privImipd struct {
	t       *testing.T
	dir     string // configuration and log
	dataDir string
	conf    string
	logFile string

	milterAddr string // host:port; "" = off
	lmtpAddr   string // host:port; "" = off
	httpAddr   string // host:port; "" = off
	davAddr    string // host:port of [caldav]; "" = off

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
}

type privOptions struct {
	dataDir     string // default dir/data
	lmtpForward string // "host:port": LMTP proxy on, forwarding there
	http        bool
	policy      string // default "always"
	readTimeout string // [milter]/[lmtp] read_timeout, default the daemon's
	pgDSN       string // [store] driver = "postgres" with this dsn; "" = bbolt
	caldav      bool   // [caldav] on a free port
	submission  string // [submission] address ("" = no outbox)
	onError     string // on_error, default the daemon's
}

// newPrivImipd writes a configuration; start runs it.
func newPrivImipd(t *testing.T, opt privOptions) *privImipd {
	t.Helper()
	if E == nil || E.imipdBin == "" {
		t.Skip("cmd/imipd not built")
	}
	dir := t.TempDir()
	d := &privImipd{t: t, dir: dir, dataDir: opt.dataDir, logFile: filepath.Join(dir, "imipd.log")}
	if d.dataDir == "" {
		d.dataDir = filepath.Join(dir, "data")
	}
	ports, err := freePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	d.milterAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	lmtp, fwd := `""`, `""`
	if opt.lmtpForward != "" {
		d.lmtpAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
		lmtp, fwd = fmt.Sprintf(`"inet:%s"`, d.lmtpAddr), fmt.Sprintf(`"inet:%s"`, opt.lmtpForward)
	}
	http := `""`
	if opt.http {
		d.httpAddr = fmt.Sprintf("127.0.0.1:%d", ports[2])
		http = fmt.Sprintf("%q", d.httpAddr)
	}
	if opt.policy == "" {
		opt.policy = "always"
	}
	rt := ""
	if opt.readTimeout != "" {
		rt = fmt.Sprintf("read_timeout = %q\n", opt.readTimeout)
	}
	top := ""
	if opt.onError != "" {
		top = fmt.Sprintf("on_error = %q\n", opt.onError)
	}
	tail := ""
	if opt.pgDSN != "" {
		tail = fmt.Sprintf("\n[store]\ndriver = \"postgres\"\ndsn = %q\n", opt.pgDSN)
	}
	if opt.caldav {
		d.davAddr = fmt.Sprintf("127.0.0.1:%d", ports[3])
		tail += fmt.Sprintf("\n[caldav]\nlisten = %q\n", d.davAddr)
	}
	conf := fmt.Sprintf(`data_dir = %q
local_domains = ["example.test"]
default_policy = %q
`+top+`
[milter]
listen = "inet:%s"
`+rt+`
[lmtp]
listen = %s
forward = %s
`+rt+`
[http]
listen = %s

[submission]
address = %q

# The rounds fill four users with thousands of invitations; the per-user caps
# (SECURITY.md "Limits") are not what this test is about.
[limits]
events_per_user = 1000000
pending_per_user = 1000000
`+tail, d.dataDir, opt.policy, d.milterAddr, lmtp, fwd, http, opt.submission)
	d.conf = filepath.Join(dir, "imipd.toml")
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(10*time.Second, E.imipdBin, "-config", d.conf, "-test"); err != nil {
		t.Fatalf("imipd -test: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Logf("imipd (private) at cleanup: %v", err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(d.logFile)
			const max = 20000
			if len(b) > max {
				b = append([]byte("...\n"), b[len(b)-max:]...)
			}
			t.Logf("==== %s ====\n%s", d.logFile, b)
		}
	})
	return d
}

func (d *privImipd) dbPath() string     { return filepath.Join(d.dataDir, "imipd.db") }
func (d *privImipd) socketPath() string { return filepath.Join(d.dataDir, "imipd.sock") }

// start runs imipd and waits until its listeners answer.
func (d *privImipd) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("already running")
	}
	lf, err := os.OpenFile(d.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "---- start %s ----\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(E.imipdBin, "-config", d.conf)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); lf.Close() }()
	d.cmd, d.done = cmd, done
	if err := waitListening(done, d.logFile, 15*time.Second, d.milterAddr, d.lmtpAddr, d.httpAddr, d.davAddr); err != nil {
		if errors.Is(err, errExitedAtStart) {
			d.cmd = nil
		}
		return err
	}
	return nil
}

func (d *privImipd) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// kill sends SIGKILL to the process this test started and reaps it.
func (d *privImipd) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.cmd = nil
}

// stop sends SIGTERM and waits; the exit error (nil: status 0).
func (d *privImipd) stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return nil
	}
	cmd := d.cmd
	d.cmd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(70 * time.Second):
		cmd.Process.Kill()
		<-d.done
		return errors.New("imipd did not exit within 70s of SIGTERM (killed)")
	}
}

// exited reports whether the process ended by itself (and how).
func (d *privImipd) exited() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return true, nil
	}
	select {
	case err := <-d.done:
		d.cmd = nil
		return true, err
	default:
		return false, nil
	}
}

// rssKiB is the process's resident set (VmRSS), 0 if unknown.
func (d *privImipd) rssKiB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid()))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// ---- milter client ----

// milterOutcome is what the MTA side of one milter session saw.
type milterOutcome struct {
	accepted bool   // end of message answered accept
	header   string // value of the X-IMIP-Processed header added ("" none)
	added    bool
	err      error // connection or protocol failure
}

// acked: imipd processed the message and said so (accept with the outcome
// header, not "error").
func (o milterOutcome) acked() bool {
	return o.err == nil && o.accepted && o.added && o.header != "error"
}

// milterDeliver runs one message through a new milter session as Postfix's
// smtpd does (connect, MAIL, RCPT, header fields, body, end of message).
func milterDeliver(addr, from string, rcpts []string, raw []byte, timeout time.Duration) (out milterOutcome) {
	qid := fmt.Sprintf("Q%X", rand.Uint64()&0xffffffffff)
	c := milter.NewClient("tcp", addr,
		milter.WithDialer(&net.Dialer{Timeout: 5 * time.Second}),
		milter.WithReadTimeout(timeout),
		milter.WithWriteTimeout(timeout),
		milter.WithoutDefaultMacros(),
		milter.WithMacroRequest(milter.StageConnect, []milter.MacroName{"j", milter.MacroDaemonName}),
		milter.WithMacroRequest(milter.StageMail, []milter.MacroName{milter.MacroQueueId}),
	)
	macros := milter.NewMacroBag()
	macros.Set("j", "mx.example.test")
	macros.Set(milter.MacroDaemonName, "mx.example.test")
	macros.Set(milter.MacroQueueId, qid)
	s, err := c.Session(macros)
	if err != nil {
		return milterOutcome{err: err}
	}
	defer s.Close()
	step := func(what string, act *milter.Action, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if act.Type != milter.ActionContinue {
			return fmt.Errorf("%s: action %v, want continue", what, act)
		}
		return nil
	}
	if act, err := s.Conn("client.remote.test", milter.FamilyInet, 40000, "192.0.2.7"); step("connect", act, err) != nil {
		return milterOutcome{err: step("connect", act, err)}
	}
	if act, err := s.Helo("client.remote.test"); step("helo", act, err) != nil {
		return milterOutcome{err: step("helo", act, err)}
	}
	if act, err := s.Mail(from, ""); step("mail", act, err) != nil {
		return milterOutcome{err: step("mail", act, err)}
	}
	for _, r := range rcpts {
		if act, err := s.Rcpt(r, ""); step("rcpt", act, err) != nil {
			return milterOutcome{err: step("rcpt", act, err)}
		}
	}
	if act, err := s.DataStart(); step("data", act, err) != nil {
		return milterOutcome{err: step("data", act, err)}
	}
	head, body, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return milterOutcome{err: errors.New("message without header/body separator")}
	}
	for _, line := range strings.Split(string(head), "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if act, err := s.HeaderField(k, strings.TrimPrefix(v, " "), nil); step("header", act, err) != nil {
			return milterOutcome{err: step("header", act, err)}
		}
	}
	if act, err := s.HeaderEnd(); step("eoh", act, err) != nil {
		return milterOutcome{err: step("eoh", act, err)}
	}
	for len(body) > 0 {
		n := min(len(body), int(milter.DataSize64K))
		if act, err := s.BodyChunk(body[:n]); step("body", act, err) != nil {
			return milterOutcome{err: step("body", act, err)}
		}
		body = body[n:]
	}
	mods, act, err := s.End()
	if err != nil {
		return milterOutcome{err: err}
	}
	out.accepted = act.Type == milter.ActionAccept
	for _, m := range mods {
		if m.Type == milter.ActionAddHeader && strings.EqualFold(m.HeaderName, "X-IMIP-Processed") {
			out.added, out.header = true, strings.ReplaceAll(m.HeaderValue, "\n", "")
		}
	}
	return out
}

// crashInvitation is an iMIP REQUEST for a new event: one event, one history
// entry and one log entry for its recipient when applied.
func crashInvitation(uid, msgID string, to []string, now time.Time) []byte {
	stamp := now.UTC().Format("20060102T150405Z")
	start := now.Add(48 * time.Hour).UTC()
	cal := strings.Join([]string{
		"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//imipd e2e crash//EN", "METHOD:REQUEST",
		"BEGIN:VEVENT", "UID:" + uid, "SEQUENCE:0", "DTSTAMP:" + stamp,
		"DTSTART:" + start.Format("20060102T150405Z"), "DTEND:" + start.Add(time.Hour).Format("20060102T150405Z"),
		"SUMMARY:Crash test " + uid, "ORGANIZER;CN=Olga:mailto:olga@remote.test",
	}, "\r\n")
	for _, a := range to {
		cal += "\r\nATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + a
	}
	cal += "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	return []byte(strings.Join([]string{
		"From: Olga Organizer <olga@remote.test>",
		"To: " + strings.Join(to, ", "),
		"Subject: Invitation " + uid,
		"Date: " + now.Format(time.RFC1123Z),
		"Message-ID: " + msgID,
		"MIME-Version: 1.0",
		"Content-Type: text/calendar; method=REQUEST; charset=UTF-8",
		"", cal,
	}, "\r\n"))
}

// ---- the crash test ----

var crashUsers = []string{"u0@example.test", "u1@example.test", "u2@example.test", "u3@example.test"}

type crashMsg struct {
	round, n    int
	user        string
	uid, msgID  string
	raw         []byte
	acked       bool   // some delivery of it was acknowledged
	header      string // the header of the first acknowledgement
	errorTagged bool   // accepted with header "error" (not retried by an MTA)
	tries       int
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestCrashKill9 (issue 6 "Crash safety"): IMIPD_CRASH_ROUNDS rounds
// (default 20) of IMIPD_CRASH_MESSAGES messages (default 1000) over
// IMIPD_CRASH_CONCURRENCY sessions at once (default 32), each round killed
// with SIGKILL at a random moment, on one data directory across rounds.
func TestCrashKill9(t *testing.T) {
	rounds := envInt("IMIPD_CRASH_ROUNDS", 20)
	perRound := envInt("IMIPD_CRASH_MESSAGES", 1000)
	workers := envInt("IMIPD_CRASH_CONCURRENCY", 32)
	d := newPrivImipd(t, privOptions{policy: "always"})
	var all []*crashMsg
	estimate := 1500 * time.Millisecond // time to deliver a round; adjusted as rounds run
	type roundStat struct {
		acked, failed, appliedUnacked, retried, dupSample int
		killAt, full                                      time.Duration
	}
	var stats []roundStat
	testStart := time.Now()
	for r := 1; r <= rounds; r++ {
		if err := d.start(); err != nil {
			t.Fatalf("round %d: start: %v", r, err)
		}
		now := time.Now()
		msgs := make([]*crashMsg, perRound)
		for i := range msgs {
			uid := fmt.Sprintf("crash-%d-r%d-%d@remote.test", now.UnixNano(), r, i)
			m := &crashMsg{round: r, n: i, user: crashUsers[i%len(crashUsers)], uid: uid, msgID: "<" + uid + ">"}
			m.raw = crashInvitation(m.uid, m.msgID, []string{m.user}, now)
			msgs[i] = m
		}
		all = append(all, msgs...)

		// Phase 1: deliver with `workers` concurrent sessions; kill -9 at
		// a random moment inside the expected duration of the round.
		killAt := time.Duration(rand.Int64N(int64(estimate*9/10))) + 5*time.Millisecond
		var next atomic.Int64
		var acked, failed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(msgs) {
						return
					}
					m := msgs[i]
					m.tries++
					o := milterDeliver(d.milterAddr, "olga@remote.test", []string{m.user}, m.raw, 30*time.Second)
					switch {
					case o.acked():
						m.acked, m.header = true, o.header
						acked.Add(1)
					case o.err == nil && o.accepted && o.header == "error":
						m.errorTagged = true
						failed.Add(1)
					default:
						failed.Add(1)
					}
				}
			}()
		}
		killed := make(chan struct{})
		go func() {
			defer close(killed)
			time.Sleep(killAt)
			d.kill()
		}()
		wg.Wait()
		full := time.Since(start)
		<-killed
		st := roundStat{acked: int(acked.Load()), failed: int(failed.Load()), killAt: killAt, full: full}
		if st.failed == 0 {
			// The round finished before the kill: next time aim earlier.
			estimate = max(full, 200*time.Millisecond)
		} else if st.acked > 0 {
			// Scale to the whole round from the rate seen before the kill.
			est := time.Duration(float64(killAt) * float64(perRound) / float64(st.acked))
			estimate = min(max(est, 200*time.Millisecond), 10*time.Second)
		}

		// The file as the crash left it: every acknowledged message is
		// there once, nothing is there twice, bbolt's check passes.
		present := verifyCrashStore(t, d.dbPath(), all, fmt.Sprintf("round %d after kill -9", r))
		for _, m := range msgs {
			if !m.acked && present[m] {
				st.appliedUnacked++
			}
		}

		// Phase 2: restart on the same directory; the MTA retries what
		// was not acknowledged (a failed milter connection under
		// default_action=tempfail, or a sample of acknowledged ones, as
		// Postfix does when a milter answers near its timeout).
		if err := d.start(); err != nil {
			t.Fatalf("round %d: restart: %v", r, err)
		}
		var resend []*crashMsg
		for _, m := range msgs {
			switch {
			case !m.acked && !m.errorTagged:
				resend = append(resend, m)
				st.retried++
			case m.acked && rand.IntN(20) == 0:
				resend = append(resend, m)
				st.dupSample++
			}
		}
		var mu sync.Mutex
		var problems []string
		next.Store(0)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(resend) {
						return
					}
					m := resend[i]
					m.tries++
					o := milterDeliver(d.milterAddr, "olga@remote.test", []string{m.user}, m.raw, 30*time.Second)
					mu.Lock()
					switch {
					case !o.acked():
						problems = append(problems, fmt.Sprintf("%s: retry not acknowledged: %+v", m.msgID, o))
					case m.acked && o.header != m.header:
						problems = append(problems, fmt.Sprintf("%s: retry answered %q, first delivery %q", m.msgID, o.header, m.header))
					case !m.acked:
						m.acked, m.header = true, o.header
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for _, p := range problems {
			t.Errorf("round %d: %s", r, p)
		}
		if err := d.stop(); err != nil {
			t.Errorf("round %d: imipd exit after SIGTERM: %v", r, err)
		}
		// After the retries: every message of every round is there
		// exactly once.
		verifyCrashStore(t, d.dbPath(), all, fmt.Sprintf("round %d after retries", r))
		for _, m := range msgs {
			if !m.acked && !m.errorTagged {
				t.Errorf("round %d: %s never acknowledged", r, m.msgID)
			}
			if want := "needs-action; method=REQUEST; uid=" + m.uid + "; reason=invitation"; m.acked && m.header != want {
				t.Errorf("round %d: %s header %q, want %q", r, m.msgID, m.header, want)
			}
		}
		stats = append(stats, st)
		t.Logf("round %2d: kill -9 at %4dms (round ran %4dms): %4d acknowledged, %4d failed (%d of them applied but unacknowledged), %4d retried, %3d acknowledged resent as duplicates",
			r, st.killAt.Milliseconds(), st.full.Milliseconds(), st.acked, st.failed, st.appliedUnacked, st.retried, st.dupSample)
		if t.Failed() {
			t.Fatalf("round %d failed; stopping", r)
		}
	}
	var ack, fail, au int
	for _, s := range stats {
		ack += s.acked
		fail += s.failed
		au += s.appliedUnacked
	}
	t.Logf("%d rounds, %d messages in %s: %d acknowledged before the kill, %d failed by it (%d of those had been applied without an ack), all retried once, each message reflected exactly once, bbolt check clean after every kill and every restart",
		len(stats), len(all), time.Since(testStart).Round(time.Millisecond), ack, fail, au)
}

// verifyCrashStore opens the store directly (the daemon is not running) and
// checks it against the messages sent: every acknowledged message has its
// event, exactly one history entry with its Message-ID and exactly one log
// entry; no message has more than one of either; nothing else is there;
// Check (bbolt's page check and calstore's invariants) passes. It returns
// the messages found applied.
func verifyCrashStore(t *testing.T, path string, msgs []*crashMsg, when string) map[*crashMsg]bool {
	t.Helper()
	db, err := calstore.Open(path, calstore.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("%s: open store: %v", when, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.Check(ctx); err != nil {
		t.Errorf("%s: store check: %v", when, err)
	}
	present := map[*crashMsg]bool{}
	byUser := map[string]map[string]*crashMsg{} // user -> uid -> message
	for _, m := range msgs {
		if byUser[m.user] == nil {
			byUser[m.user] = map[string]*crashMsg{}
		}
		byUser[m.user][m.uid] = m
	}
	var errs []string
	err = db.Read(ctx, func(tx calstore.Tx) error {
		for user, sent := range byUser {
			evs, err := tx.Events(user)
			if errors.Is(err, calstore.ErrNotFound) {
				evs = nil
			} else if err != nil {
				return err
			}
			log, err := tx.Log(user, 0)
			if err != nil && !errors.Is(err, calstore.ErrNotFound) {
				return err
			}
			logN := map[string]int{}
			for _, e := range log {
				logN[e.MessageID]++
			}
			events := map[string]calstore.Event{}
			for _, ev := range evs {
				if ev.History, err = tx.EventHistory(user, ev.UID); err != nil {
					return err
				}
				events[ev.UID] = ev
				if sent[ev.UID] == nil {
					errs = append(errs, fmt.Sprintf("%s has event %s nobody sent", user, ev.UID))
				}
			}
			for uid, m := range sent {
				ev, ok := events[uid]
				hist := 0
				for _, h := range ev.History {
					if strings.Trim(h.MessageID, "<>") == strings.Trim(m.msgID, "<>") {
						hist++
					}
				}
				logs := logN[m.msgID] + logN[strings.Trim(m.msgID, "<>")]
				if ok {
					present[m] = true
				}
				switch {
				case m.acked && !ok:
					errs = append(errs, fmt.Sprintf("%s (%s): acknowledged, but no event %s", m.msgID, user, uid))
				case ok && hist != 1:
					errs = append(errs, fmt.Sprintf("%s (%s): %d history entries, want 1", m.msgID, user, hist))
				case ok && len(ev.History) != 1:
					errs = append(errs, fmt.Sprintf("%s (%s): event has %d history entries, want 1", m.msgID, user, len(ev.History)))
				case ok != (logs == 1) || logs > 1:
					errs = append(errs, fmt.Sprintf("%s (%s): event present %v, %d processed-log entries", m.msgID, user, ok, logs))
				}
			}
			if len(log) != len(evs) {
				errs = append(errs, fmt.Sprintf("%s: %d log entries for %d events", user, len(log), len(evs)))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: read store: %v", when, err)
	}
	for i, e := range errs {
		if i == 20 {
			t.Errorf("%s: ... %d more", when, len(errs)-i)
			break
		}
		t.Errorf("%s: %s", when, e)
	}
	return present
}
