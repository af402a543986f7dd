//go:build e2e

// Several imipd processes on one PostgreSQL database (issue 17, "Tests that
// must exist"; README "Several instances on one PostgreSQL database"): the
// built imipd, twice, each with its own configuration, data directory (its
// admin socket) and milter listener, both with the same [store] DSN on the
// test binary's private cluster (calstore/pgstore/pgtest). Real Postfix
// sits in front: the mx instance of harness_test.go gets one extra smtpd
// service per imipd, each with only that imipd as its milter.
//
// What is checked is read from the database directly (pgstore), so it does
// not depend on which instance would answer.

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"

	"imipd/calstore"
	"imipd/calstore/pgstore"
	"imipd/calstore/pgstore/pgtest"
	"imipd/filter"
)

// multiPair starts two imipd processes on one new database (opt, with its
// DSN) and returns them with the DSN.
func multiPair(t *testing.T, opt privOptions) ([2]*privImipd, string) {
	t.Helper()
	if E == nil || E.imipdBin == "" {
		t.Skip("cmd/imipd not built")
	}
	opt.pgDSN = pgtest.NewDSN(t)
	var ds [2]*privImipd
	for i := range ds {
		ds[i] = newPrivImipd(t, opt)
	}
	// The first creates the schema; the second finds it.
	for i, d := range ds {
		if err := d.start(); err != nil {
			t.Fatalf("imipd %d: %v", i, err)
		}
	}
	return ds, opt.pgDSN
}

// multiServices adds to the mx Postfix one smtpd service per imipd, on a
// port of its own, whose only milter is that imipd (Postfix answers 4xx
// when it does not answer: milter_default_action=tempfail); the services
// go when the test ends. It returns their ports.
func multiServices(t *testing.T, ds ...*privImipd) []int {
	t.Helper()
	ports, err := freePorts(len(ds))
	if err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(E.mx.dir, "master.cf")
	orig, err := os.ReadFile(mf)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(orig)
	b.WriteString("\n# e2e only (multi_test.go): one smtpd per imipd instance\n")
	for i, d := range ds {
		fmt.Fprintf(&b, "127.0.0.1:%d inet n - n - - smtpd\n  -o smtpd_milters=inet:%s\n  -o milter_default_action=tempfail\n", ports[i], d.milterAddr)
	}
	reload := func(text []byte) error {
		if err := os.WriteFile(mf, text, 0o644); err != nil {
			return err
		}
		if out, err := runCmd(20*time.Second, "postfix", "-c", E.mx.dir, "reload"); err != nil {
			return fmt.Errorf("postfix reload: %v\n%s", err, out)
		}
		return nil
	}
	if err := reload([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reload(orig); err != nil {
			t.Errorf("restore the mx master.cf: %v", err)
		}
	})
	for _, p := range ports {
		if err := waitTCP(fmt.Sprintf("127.0.0.1:%d", p), 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return ports
}

// sendRetry submits msg to Postfix on port as an MTA would: a 4xx answer or
// a failed connection is tried again until within has passed; a 5xx answer
// is final. It returns the number of tries.
func sendRetry(port int, from string, to []string, msg []byte, within time.Duration) (int, error) {
	return sendRetryHeld(port, from, to, msg, within, nil)
}

// sendRetryHeld is sendRetry, calling hold (when not nil) before each
// try: a test stops the load by making hold wait.
func sendRetryHeld(port int, from string, to []string, msg []byte, within time.Duration, hold func()) (int, error) {
	deadline := time.Now().Add(within)
	for try := 1; ; try++ {
		if hold != nil {
			hold()
		}
		err := sendSMTP(port, from, to, msg)
		if err == nil {
			return try, nil
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code/100 == 5 {
			return try, err
		}
		if time.Now().After(deadline) {
			return try, fmt.Errorf("still failing after %v: %w", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// multiRead runs fn in a read transaction on the database at dsn.
func multiRead(t *testing.T, dsn string, fn func(tx calstore.Tx) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Read(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

// checkOnce checks that user's log has exactly the messages msgIDs and
// that each of uids is an event with one history entry: every message
// applied once, none twice, none half.
func checkOnce(t *testing.T, dsn, user string, msgIDs, uids []string) {
	t.Helper()
	multiRead(t, dsn, func(tx calstore.Tx) error {
		log, err := tx.Log(user, 0)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, id := range msgIDs {
			want[strings.Trim(id, "<>")] = true
		}
		seen := map[string]int{}
		for _, e := range log {
			seen[strings.Trim(e.MessageID, "<>")]++
		}
		for id := range want {
			if seen[id] != 1 {
				t.Errorf("message %s: %d log entries, want 1", id, seen[id])
			}
		}
		if len(log) != len(msgIDs) {
			t.Errorf("%s: %d log entries, want %d", user, len(log), len(msgIDs))
		}
		evs, err := tx.Events(user)
		if err != nil {
			return err
		}
		if len(evs) != len(uids) {
			t.Errorf("%s: %d events, want %d", user, len(evs), len(uids))
		}
		for _, uid := range uids {
			h, err := tx.EventHistory(user, uid)
			if err != nil || len(h) != 1 {
				t.Errorf("event %s: %d history entries (%v), want 1", uid, len(h), err)
			}
		}
		return nil
	})
}

// TestMultiPostfix: two imipd processes on one database behind Postfix.
// The same 200 invitations, each submitted to both smtpd services at the
// same moment (two MX hosts that both got a copy), give one log entry and
// one history entry each; then 100 attendees' replies to one meeting,
// split across the two, give the organizer's copy all 100 PARTSTATs.
func TestMultiPostfix(t *testing.T) {
	ds, dsn := multiPair(t, privOptions{})
	ports := multiServices(t, ds[0], ds[1])
	const user = "bob@example.test"
	now := time.Now()

	const n = 200
	var msgIDs, uids []string
	var wg sync.WaitGroup
	var retried atomic.Int64
	sem := make(chan struct{}, 16)
	tag := unique("multi")
	for i := range n {
		uid := fmt.Sprintf("%s-%d@remote.test", tag, i)
		mid := fmt.Sprintf("<%s-%d@remote.test>", tag, i)
		raw := crashInvitation(uid, mid, []string{user}, now)
		msgIDs, uids = append(msgIDs, mid), append(uids, uid)
		start := make(chan struct{})
		for _, port := range ports {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				<-start
				tries, err := sendRetry(port, "olga@remote.test", []string{user}, raw, 30*time.Second)
				if err != nil {
					t.Errorf("invitation %d to port %d: %v", i, port, err)
				}
				if tries > 1 {
					retried.Add(1)
				}
			})
		}
		close(start)
	}
	wg.Wait()
	t.Logf("200 invitations, each to both instances: %v (%d copies tried again after a 4xx)", time.Since(now).Round(time.Millisecond), retried.Load())
	checkOnce(t, dsn, user, msgIDs, uids)
	// Each instance's admin socket answers with the one calendar.
	for i, d := range ds {
		var log []calstore.LogEntry
		ctlJSON(t, d, &log, "log", "-json", "-n", "1000", user)
		var evs []eventJSON
		ctlJSON(t, d, &evs, "events", "-json", user)
		if len(log) != n || len(evs) != n {
			t.Errorf("imipctl against imipd %d: %d log entries and %d events, want %d each", i, len(log), len(evs), n)
		}
	}

	// A meeting bob organizes, with 100 remote attendees, stored as his
	// client would (Import); their replies split across the two.
	const m = 100
	meeting := tag + "-meeting@example.test"
	start := now.Add(72 * time.Hour).UTC()
	var b strings.Builder
	fmt.Fprintf(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd e2e multi//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nSEQUENCE:0\r\n"+
		"DTSTAMP:%s\r\nDTSTART:%s\r\nDTEND:%s\r\nSUMMARY:All hands\r\nORGANIZER:mailto:%s\r\n",
		meeting, actICSTime(now.Add(-time.Hour)), actICSTime(start), actICSTime(start.Add(time.Hour)), user)
	for i := range m {
		fmt.Fprintf(&b, "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:a%d@remote.test\r\n", i)
	}
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	s, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	if _, err := (&filter.Processor{Store: s, Cfg: cfg}).Import(context.Background(), user, strings.NewReader(b.String())); err != nil {
		s.Close()
		t.Fatal(err)
	}
	s.Close()
	began := time.Now()
	for i := range m {
		from := fmt.Sprintf("a%d@remote.test", i)
		cal := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd e2e multi//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:" + meeting +
			"\r\nSEQUENCE:0\r\nDTSTAMP:" + actICSTime(now) + "\r\nORGANIZER:mailto:" + user +
			"\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:" + from + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
		raw := []byte(strings.Join([]string{
			"From: <" + from + ">", "To: <" + user + ">", "Subject: Accepted: All hands",
			"Date: " + now.Format(time.RFC1123Z), fmt.Sprintf("Message-ID: <%s-r%d@remote.test>", tag, i),
			"MIME-Version: 1.0", "Content-Type: text/calendar; method=REPLY; charset=UTF-8", "", cal,
		}, "\r\n"))
		port := ports[i%2]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := sendRetry(port, from, []string{user}, raw, 30*time.Second); err != nil {
				t.Errorf("reply %d to port %d: %v", i, port, err)
			}
		})
	}
	wg.Wait()
	t.Logf("100 replies, split across the two: %v", time.Since(began).Round(time.Millisecond))
	multiRead(t, dsn, func(tx calstore.Tx) error {
		ev, err := tx.Event(user, meeting)
		if err != nil {
			return err
		}
		data := strings.ReplaceAll(string(ev.Data), "\r\n ", "")
		if got := strings.Count(data, "PARTSTAT=ACCEPTED"); got != m {
			t.Errorf("organizer's copy: %d attendees ACCEPTED, want %d", got, m)
		}
		return nil
	})

	// Both copies of each invitation reach the mailbox, the second with
	// the first one's outcome in its header.
	deadline := time.Now().Add(deliveryWait)
	for {
		outcomes := multiOutcomes(user, tag)
		complete := 0
		for _, mid := range msgIDs {
			if len(outcomes[mid]) == 2 {
				complete++
			}
		}
		if complete == n {
			for _, mid := range msgIDs {
				if o := outcomes[mid]; o[0] != o[1] || o[0] == "" || strings.HasPrefix(o[0], "error") {
					t.Errorf("%s: the two copies say %q; want the same outcome", mid, o)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d invitations have both copies in %s's mailbox", deliveryWait, complete, n, user)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// multiOutcomes reads user's Maildir once: for each message whose
// Message-ID contains tag, the X-IMIP-Processed value of each copy.
func multiOutcomes(user, tag string) map[string][]string {
	out := map[string][]string{}
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(maildir(user), sub)
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
			if err != nil || !bytes.Contains(b, []byte(tag)) {
				continue
			}
			m, err := mail.ReadMessage(bytes.NewReader(b))
			if err != nil {
				continue
			}
			mid := m.Header.Get("Message-Id")
			if !strings.Contains(mid, tag) {
				continue
			}
			out[mid] = append(out[mid], m.Header.Get("X-IMIP-Processed"))
		}
	}
	return out
}

// TestMultiOutboxKill9: both instances' outbox senders against one
// smtp-sink, one instance killed with SIGKILL while they send (and started
// again, as its service manager would): every queued item is delivered, and
// at most once more than once: an item the killed sender had in flight
// after the server accepted DATA may repeat (README), and a sender has one
// item in flight at a time.
func TestMultiOutboxKill9(t *testing.T) {
	if _, err := os.Stat(smtpSink); err != nil {
		t.Skipf("%s missing (Debian's postfix package)", smtpSink)
	}
	sp, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	sink := &sinkServer{port: sp[0], dir: filepath.Join(t.TempDir(), "sink"), log: filepath.Join(t.TempDir(), "sink.log")}
	sink.start(t)
	defer sink.stop()

	// The items are queued before either sender starts (a sender looks at
	// the store when it starts, then when an item is due).
	dsn := pgtest.NewDSN(t)
	const n = 150
	s, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	body := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd e2e multi//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:ob-%d@remote.test\r\n" +
		"DTSTAMP:20261201T090000Z\r\nDTSTART:20270110T100000Z\r\nDTEND:20270110T110000Z\r\nSEQUENCE:0\r\nSUMMARY:Planning\r\n" +
		"ORGANIZER:mailto:o%d@remote.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	err = s.Write(context.Background(), func(tx calstore.Tx) error {
		for i := range n {
			_, err := tx.Enqueue(calstore.OutboxItem{User: "bob@example.test", From: "bob@example.test",
				To: []string{fmt.Sprintf("o%d@remote.test", i)}, Method: "REPLY", UID: fmt.Sprintf("ob-%d@remote.test", i),
				Subject: "Accepted: Planning", Body: []byte(fmt.Sprintf(body, i, i))})
			if err != nil {
				return err
			}
		}
		return nil
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	opt := privOptions{pgDSN: dsn, submission: inetAddr(sink.port)}
	var ds [2]*privImipd
	for i := range ds {
		ds[i] = newPrivImipd(t, opt)
	}
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() {
			if err := d.start(); err != nil {
				t.Errorf("imipd %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	began := time.Now()
	// Kill the first while both send: once a third of the items are at
	// the sink.
	for sinkCount(t, sink) < n/3 {
		if time.Since(began) > 30*time.Second {
			t.Fatalf("%d of %d items at the sink after 30s", sinkCount(t, sink), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ds[0].kill()
	killedAt := sinkCount(t, sink)
	if err := ds[0].start(); err != nil {
		t.Fatalf("restart after kill -9: %v", err)
	}
	// Every item sent; an item the killed sender had in flight waits for
	// its lease to end (30 s after its claim).
	deadline := time.Now().Add(45 * time.Second)
	for {
		sent := 0
		multiRead(t, dsn, func(tx calstore.Tx) error {
			l, err := tx.Outbox()
			for _, it := range l {
				if it.Status == calstore.OutboxSent {
					sent++
				}
			}
			return err
		})
		if sent == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d items sent after the kill", sent, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	again := 0
	multiRead(t, dsn, func(tx calstore.Tx) error {
		l, err := tx.Outbox()
		for _, it := range l {
			if it.Attempts > 1 {
				again++
			}
		}
		return err
	})
	counts := sinkRcptCounts(t, sink)
	twice := 0
	for i := range n {
		switch c := counts[fmt.Sprintf("o%d@remote.test", i)]; {
		case c == 0:
			t.Errorf("item for o%d@remote.test never delivered", i)
		case c > 1:
			twice += c - 1
		}
	}
	if twice > 1 {
		t.Errorf("%d repeated deliveries; at most 1 (the killed sender's item in flight)", twice)
	}
	if twice > again {
		t.Errorf("%d repeated deliveries, but %d items were attempted more than once", twice, again)
	}
	t.Logf("%d items, killed at %d delivered, %d attempted again after the kill, %d repeated, all sent after %v",
		n, killedAt, again, twice, time.Since(began).Round(time.Millisecond))
}

// ctlJSON runs imipctl against d's admin socket and decodes its output.
func ctlJSON(t *testing.T, d *privImipd, v any, args ...string) {
	t.Helper()
	out, err := runCmd(20*time.Second, E.imipctlBin, append([]string{"-config", d.conf}, args...)...)
	if err != nil {
		t.Fatalf("imipctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("imipctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// sinkRcptCounts counts smtp-sink's dumped messages per recipient (its
// X-Rcpt-Args header).
func sinkRcptCounts(t *testing.T, s *sinkServer) map[string]int {
	t.Helper()
	counts := map[string]int{}
	filepath.WalkDir(s.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "X-Rcpt-Args:"); ok {
				counts[strings.Trim(strings.TrimSpace(v), "<>")]++
			}
			if strings.TrimSpace(l) == "" {
				break
			}
		}
		return nil
	})
	return counts
}

func sinkCount(t *testing.T, s *sinkServer) int {
	n := 0
	for _, c := range sinkRcptCounts(t, s) {
		n += c
	}
	return n
}

// TestMultiDatabaseRestart: the PostgreSQL server stops and starts again
// while invitations are delivered through both instances (on_error =
// tempfail, so Postfix answers 4xx meanwhile and the sender retries): every
// message Postfix acknowledged is applied once, none half; /healthz answers
// 503 on both while the server is away, naming the writes cut off by the
// stop, and 200 after, before any more mail (the load is held while the
// server starts: readiness tries a write of its own, pgstore.Store.Ready);
// neither imipd was restarted. Then the same with no delivery running.
func TestMultiDatabaseRestart(t *testing.T) {
	ds, dsn := multiPair(t, privOptions{http: true, onError: "tempfail"})
	ports := multiServices(t, ds[0], ds[1])
	cluster := pgtest.Shared(t)
	const user = "carol@example.test"
	const n = 150
	now := time.Now()
	tag := unique("pgrestart")
	var msgIDs, uids []string
	var raws [][]byte
	for i := range n {
		uid := fmt.Sprintf("%s-%d@remote.test", tag, i)
		mid := fmt.Sprintf("<%s-%d@remote.test>", tag, i)
		msgIDs, uids = append(msgIDs, mid), append(uids, uid)
		raws = append(raws, crashInvitation(uid, mid, []string{user}, now))
	}
	var next, acked, retried atomic.Int64
	var held atomic.Bool
	hold := func() {
		for held.Load() {
			time.Sleep(20 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				tries, err := sendRetryHeld(ports[i%2], "olga@remote.test", []string{user}, raws[i], 60*time.Second, hold)
				if err != nil {
					t.Errorf("invitation %d: %v", i, err)
					continue
				}
				acked.Add(1)
				if tries > 1 {
					retried.Add(1)
				}
				time.Sleep(20 * time.Millisecond) // keep the load up while the server is away
			}
		})
	}
	for acked.Load() < n/4 {
		if time.Since(now) > 30*time.Second {
			t.Fatalf("%d of %d invitations acknowledged after 30s", acked.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Hold the user's row, so each instance has deliveries waiting in
	// their write transactions when the server stops: writes cut off, a
	// fault each instance's /healthz names until a write commits again.
	lock, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(context.Background(), `BEGIN; SELECT 1 FROM users WHERE address = 'carol@example.test'::bytea FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	lock.Close(context.Background())
	stopped := acked.Load()
	// health waits for every imipd's /healthz to answer want, and then
	// for its body to hold one of bodies.
	health := func(want int, bodies ...string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for i, d := range ds {
			for {
				c := &http.Client{Timeout: 5 * time.Second}
				resp, err := c.Get("http://" + d.httpAddr + "/healthz")
				code, text := 0, ""
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					code, text = resp.StatusCode, string(b)
					resp.Body.Close()
				}
				if code == want && slices.ContainsFunc(bodies, func(b string) bool { return strings.Contains(text, b) }) {
					t.Logf("imipd %d: /healthz %d %q", i, code, strings.TrimSpace(text))
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("imipd %d: /healthz %d %q (%v), want %d with one of %q", i, code, text, err, want, bodies)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	// An instance whose write was cut off names the fault (and turns ready
	// only when a test write commits: pgstore TestDatabaseAway); one whose
	// deliveries failed before writing names the unreachable database (or
	// the connection the server ended).
	// Either way 503 while the server is away.
	health(http.StatusServiceUnavailable, "store writes failing", "failed to connect", "terminating connection")
	time.Sleep(time.Second) // deliveries meet the missing server
	held.Store(true)
	time.Sleep(time.Second) // tries under way end (4xx)
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	health(http.StatusOK, "ok")
	held.Store(false)
	wg.Wait()
	t.Logf("%d invitations, server stopped after %d acknowledged, %d retried after a 4xx, %v", n, stopped, retried.Load(), time.Since(now).Round(time.Millisecond))
	if retried.Load() == 0 {
		t.Errorf("no delivery met the stopped server")
	}
	for i, d := range ds {
		if gone, err := d.exited(); gone {
			t.Errorf("imipd %d exited: %v", i, err)
		}
	}
	checkOnce(t, dsn, user, msgIDs, uids)

	// Once more with no delivery running: /healthz follows the server by
	// itself (no write failed meanwhile, so no fault waits for a commit to
	// clear it: filter.StoreReady).
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	health(http.StatusServiceUnavailable, "")
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	health(http.StatusOK, "ok")
}

// pySync is a sync-collection client on python3-caldav (RFC 6578): argv
// url user password stopfile. It asks for the changes since its last
// token again and again, keeping href -> ETag (a change without an ETag is
// a deletion), until stopfile exists; then once more, and once without a
// token (the whole collection). It prints both maps and the number of
// syncs as JSON.
const pySync = `import json, os, sys, time
import caldav

url, user, password, stopfile = sys.argv[1:5]
cal = caldav.DAVClient(url=url, username=user, password=password).principal().calendars()[0]
ETAG = "{DAV:}getetag"
seen, token, syncs = {}, None, 0
while True:
    last = os.path.exists(stopfile)
    col = cal.objects_by_sync_token(sync_token=token)
    for o in col:
        etag = (o.props or {}).get(ETAG)
        if etag:
            seen[str(o.url)] = etag
        else:
            seen.pop(str(o.url), None)
    token, syncs = col.sync_token, syncs + 1
    if last:
        break
    time.sleep(0.05)
full = {str(o.url): (o.props or {}).get(ETAG) for o in cal.objects_by_sync_token()}
print(json.dumps({"syncs": syncs, "incremental": seen, "full": full}))
`

// TestMultiSyncCollection: a CalDAV client on instance B (python3-caldav's
// sync-collection REPORT, from its last token again and again) while
// invitations, their updates and cancellations are delivered through
// instance A only: the changes it collected from B add up to the whole
// collection B lists at the end, every event with its final ETag, and it
// saw every one of A's UIDs (issue 17: sync tokens are consistent
// whichever instance answers).
func TestMultiSyncCollection(t *testing.T) {
	if _, err := exec.LookPath(debianPython); err != nil {
		t.Skipf("%s not installed", debianPython)
	}
	if out, err := exec.Command(debianPython, "-c", "import caldav").CombinedOutput(); err != nil {
		t.Skipf("python3-caldav not installed (.ci/install-e2e installs it): %s", out)
	}
	ds, _ := multiPair(t, privOptions{caldav: true})
	a, b := ds[0], ds[1]
	ports := multiServices(t, a) // mail reaches A only
	const user, pass = "carol@example.test", "sync-pass-1"
	for _, args := range [][]string{{"user", "add", user}, {"user", "password", user}} {
		cmd := exec.Command(E.imipctlBin, append([]string{"-config", b.conf}, args...)...)
		cmd.Stdin = strings.NewReader(pass + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("imipctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dir := t.TempDir()
	stop := filepath.Join(dir, "stop")
	client := exec.Command(debianPython, "-c", pySync, "http://"+b.davAddr+"/", user, pass, stop)
	var out, errOut bytes.Buffer
	client.Stdout, client.Stderr = &out, &errOut
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	clientDone := make(chan error, 1)
	go func() { clientDone <- client.Wait() }()
	t.Cleanup(func() {
		if client.ProcessState == nil {
			client.Process.Kill()
			<-clientDone
		}
	})

	// Through A: n invitations, then an update (SEQUENCE 1, a new
	// summary) of each, then a cancellation of every third, four
	// senders at a time.
	const n = 30
	now := time.Now()
	tag := unique("sync")
	uids := make([]string, n)
	var msgs [3][][]byte
	for i := range n {
		uids[i] = fmt.Sprintf("%s-%d@remote.test", tag, i)
		inv := string(crashInvitation(uids[i], fmt.Sprintf("<%s-%d-0@remote.test>", tag, i), []string{user}, now))
		msgs[0] = append(msgs[0], []byte(inv))
		upd := strings.NewReplacer("SEQUENCE:0", "SEQUENCE:1", "SUMMARY:Crash test", "SUMMARY:Moved sync test",
			"DTSTAMP:"+now.UTC().Format("20060102T150405Z"), "DTSTAMP:"+now.Add(time.Minute).UTC().Format("20060102T150405Z"),
			"-0@remote.test>", "-1@remote.test>").Replace(inv)
		msgs[1] = append(msgs[1], []byte(upd))
		if i%3 == 0 {
			cancel := strings.NewReplacer("SEQUENCE:1", "SEQUENCE:2", "METHOD:REQUEST", "METHOD:CANCEL", "method=REQUEST", "method=CANCEL",
				"-1@remote.test>", "-2@remote.test>", "END:VEVENT", "STATUS:CANCELLED\r\nEND:VEVENT",
				"DTSTAMP:"+now.Add(time.Minute).UTC().Format("20060102T150405Z"), "DTSTAMP:"+now.Add(2*time.Minute).UTC().Format("20060102T150405Z")).Replace(upd)
			msgs[2] = append(msgs[2], []byte(cancel))
		}
	}
	for _, round := range msgs {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(round) {
						return
					}
					if _, err := sendRetry(ports[0], "olga@remote.test", []string{user}, round[i], 30*time.Second); err != nil {
						t.Errorf("message %d: %v", i, err)
					}
					time.Sleep(50 * time.Millisecond) // the client syncs in between

				}
			})
		}
		wg.Wait()
	}
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-clientDone:
		if err != nil {
			t.Fatalf("sync client: %v\n%s", err, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("sync client still running 60s after the last message\n%s", errOut.String())
	}
	var res struct {
		Syncs       int
		Incremental map[string]string
		Full        map[string]string
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("sync client output: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	t.Logf("%d messages through A, %d syncs from B, %d objects", len(msgs[0])+len(msgs[1])+len(msgs[2]), res.Syncs, len(res.Full))
	if res.Syncs < 10 {
		t.Errorf("only %d syncs while A was written: not a test of incremental sync", res.Syncs)
	}
	for href, etag := range res.Full {
		if got, ok := res.Incremental[href]; !ok || got != etag {
			t.Errorf("%s: the changes from B gave ETag %q (present %v), the collection %q", href, got, ok, etag)
		}
	}
	for href := range res.Incremental {
		if _, ok := res.Full[href]; !ok {
			t.Errorf("%s: in the changes from B, not in the collection", href)
		}
	}
	all, err := url.PathUnescape(strings.Join(slices.Collect(maps.Keys(res.Full)), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, uid := range uids {
		if !strings.Contains(all, "/"+uid+".ics") {
			t.Errorf("event %s: not in B's collection\n%s", uid, all)
		}
	}
}
