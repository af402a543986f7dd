package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/config"
	"imipd/filter"
)

func scanMessage(id string, seq int, start string) string {
	return strings.ReplaceAll(fmt.Sprintf(`From: Alice <alice@remote.test>
To: bob@example.test
Date: Wed, 25 Nov 2026 10:00:00 +0000
Message-ID: <%s>
MIME-Version: 1.0
Content-Type: text/calendar; method=REQUEST; charset=UTF-8

BEGIN:VCALENDAR
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:scan-1@remote.test
SEQUENCE:%d
DTSTAMP:20261125T1000%02dZ
DTSTART:%s
DTEND:20261201T230000Z
SUMMARY:Planning
ORGANIZER:mailto:alice@remote.test
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.test
END:VEVENT
END:VCALENDAR
`, id, seq, seq, start), "\n", "\r\n")
}

// testDB is a store in dir, closed when the test ends.
func testDB(t *testing.T, dir string) *calstore.DB {
	t.Helper()
	db, err := calstore.Open(filepath.Join(dir, "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// serve runs an admin server for env on a socket in dir until the test
// ends and returns the socket's path.
func serve(t *testing.T, dir string, env func() Env) string {
	t.Helper()
	sock := filepath.Join(dir, "imipd.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Env: env}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return sock
}

// scanEnv is a store in dir with policy always at example.test, on a clock
// stopped at now.
func scanEnv(t *testing.T, dir string, now time.Time) (Env, *calstore.DB) {
	t.Helper()
	db := testDB(t, dir)
	f := config.Defaults()
	f.DataDir = dir
	f.DefaultPolicy = "always"
	f.LocalDomains = []string{"example.test"}
	cfg, _ := f.Validate()
	return Env{Cfg: cfg, Store: db, Proc: &filter.Processor{Store: db, Cfg: cfg.Processor, Now: func() time.Time { return now }}, Client: LocalClient{}}, db
}

// TestScanMaildir backfills a Maildir: oldest first by arrival, messages
// older than the timeframe skipped, plain mail passed over, and a second run
// applies nothing twice (the once-only log answers it), through the admin
// socket as well as directly.
func TestScanMaildir(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, d), 0o700)
	}
	write := func(sub string, at time.Time, body string) {
		name := fmt.Sprintf("%d.M1P1.host", at.Unix())
		if err := os.WriteFile(filepath.Join(md, sub, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The update (SEQUENCE 1) arrived after the invitation but sorts first by
	// directory; scan must still apply the invitation first.
	write("cur", now.Add(-time.Hour), scanMessage("upd@remote.test", 1, "20261201T100000Z"))
	write("new", now.Add(-2*time.Hour), scanMessage("inv@remote.test", 0, "20261201T090000Z"))
	write("cur", now.Add(-90*time.Minute), "From: x@remote.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nplain\r\n")
	write("cur", now.Add(-60*24*time.Hour), scanMessage("ancient@remote.test", 5, "20261201T110000Z"))

	env, db := scanEnv(t, dir, now)
	run := func() []map[string]any {
		var out bytes.Buffer
		env.Out = &out
		if err := Run(context.Background(), env, []string{"scan", "-json", "-user", "bob@example.test", md}); err != nil {
			t.Fatal(err)
		}
		var res []map[string]any
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		return res
	}
	first := run()
	if len(first) != 2 || first[0]["outcome"] != "needs-action" || first[1]["outcome"] != "applied" {
		t.Fatalf("first scan: %v", first)
	}
	// The second run gives the same outcomes, each marked as a repeat
	// (issue 15, item 3: nothing was done again, and it is not counted as
	// if it had been).
	second := run()
	for i := range second {
		if second[i]["repeat"] != true || first[i]["repeat"] != false {
			t.Errorf("result %d: repeat %v after %v", i, second[i]["repeat"], first[i]["repeat"])
		}
		delete(second[i], "repeat")
		delete(first[i], "repeat")
	}
	if fmt.Sprint(second) != fmt.Sprint(first) {
		t.Fatalf("second scan differs:\n%v\n%v", second, first)
	}
	var ev calstore.Event
	var err error
	db.Read(context.Background(), func(tx calstore.Tx) error {
		if ev, err = tx.Event("bob@example.test", "scan-1@remote.test"); err != nil {
			return err
		}
		ev.History, err = tx.EventHistory("bob@example.test", "scan-1@remote.test")
		return err
	})
	v, err := viewEvent(ev)
	if err != nil || v.Sequence != 1 || v.Start != "2026-12-01T10:00:00Z" {
		t.Fatalf("event after scan: %+v %v", v.Fields, err)
	}
	if len(ev.History) != 2 {
		t.Fatalf("history %d entries, want 2 (each message applied once)", len(ev.History))
	}

	// Over the admin socket, the listing and the files come from the client.
	sock := serve(t, dir, func() Env { e := env; e.Client = nil; return e })
	var out bytes.Buffer
	code, msg, err := Call(context.Background(), sock, []string{"scan", "-user", "bob@example.test", md}, LocalClient{}, &out)
	if err != nil || code != 0 {
		t.Fatalf("scan over the socket: %d %s %v", code, msg, err)
	}
	if !strings.Contains(out.String(), "4 messages: 1 older than the timeframe (timeframe 4W, by arrival: not processed; -timeframe 0 includes them, or a longer -timeframe), 1 without calendar data, 2 already processed\n") {
		t.Fatalf("summary: %s", out.String())
	}
}

// TestScanSummaryAddsUp (issue 15, item 3): every file counts once in the
// summary, also a message with two calendar objects; messages older than
// the timeframe come with what includes them, and -timeframe 0 does.
func TestScanSummaryAddsUp(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	md := filepath.Join(dir, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, d), 0o700)
	}
	write := func(at time.Time, body string) {
		name := fmt.Sprintf("%d.M1P1.host", at.Unix())
		if err := os.WriteFile(filepath.Join(md, "cur", name), []byte(strings.ReplaceAll(body, "\r\n", "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	part := func(uid string) string {
		return strings.ReplaceAll(strings.SplitN(scanMessage("x", 0, "20261201T090000Z"), "\r\n\r\n", 2)[1], "scan-1@remote.test", uid)
	}
	write(now.Add(-time.Hour), "From: Alice <alice@remote.test>\nTo: bob@example.test\nDate: Wed, 25 Nov 2026 10:00:00 +0000\nMessage-ID: <twin@remote.test>\n"+
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/calendar; method=REQUEST\n\n"+part("twin-1@remote.test")+
		"\n--b\nContent-Type: text/calendar; method=REQUEST\n\n"+part("twin-2@remote.test")+"\n--b--\n")
	write(now.Add(-60*24*time.Hour), strings.Replace(scanMessage("ancient@remote.test", 0, "20261201T110000Z"), "scan-1@", "ancient-1@", 1))

	env, db := scanEnv(t, dir, now)
	scan := func(args ...string) string {
		var out bytes.Buffer
		env.Out = &out
		if err := Run(context.Background(), env, append(append([]string{"scan"}, args...), "-user", "bob@example.test", md)); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		// The counts add up to the messages.
		n, sum := 0, 0
		head, list, _ := strings.Cut(regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(s, ""), " messages: ")
		fmt.Sscan(head, &n)
		for _, item := range strings.Split(list, ", ") {
			k := 0
			fmt.Sscan(item, &k)
			sum += k
		}
		if n != 2 || sum != n {
			t.Errorf("summary adds up to %d of %d messages: %s", sum, n, s)
		}
		return s
	}
	if s := scan(); !strings.Contains(s, "1 older than the timeframe (timeframe 4W, by arrival: not processed; -timeframe 0 includes them") ||
		!strings.Contains(s, ", 1 needs-action\n") {
		t.Errorf("first scan: %s", s)
	}
	if s := scan("-timeframe", "0"); !strings.Contains(s, "0 older than the timeframe, 0 without calendar data, 1 already processed, 1 needs-action\n") {
		t.Errorf("scan -timeframe 0: %s", s)
	}
	if err := db.Read(context.Background(), func(tx calstore.Tx) error {
		_, err := tx.Event("bob@example.test", "ancient-1@remote.test")
		return err
	}); err != nil {
		t.Errorf("scan -timeframe 0 left the older message out: %v", err)
	}
	var out bytes.Buffer
	env.Out = &out
	if err := Run(context.Background(), env, []string{"scan", "-timeframe", "5 minutes", "-user", "bob@example.test", md}); err == nil {
		t.Error("scan -timeframe with a bad duration accepted")
	}
}
