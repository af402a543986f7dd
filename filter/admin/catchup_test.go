package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/config"
	"imipd/filter"
)

// TestCatchup (issue 15, item 6): mail that reached the users' Maildirs
// while imipd was down is processed by catchup from the downtime the store
// recorded at start, over the admin socket (the Maildirs read on imipctl's
// side, within the -maildirs template): mail from before the downtime is
// left alone, a user without a Maildir is counted, and a second run does
// nothing.
func TestCatchup(t *testing.T) {
	ctx := context.Background()
	stop := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	start := stop.Add(2 * time.Hour)
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "vmail", "%d", "%n", "Maildir")
	md := filepath.Join(dir, "vmail", "example.test", "bob", "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, d), 0o700)
	}
	write := func(sub string, at time.Time, body string) {
		if err := os.WriteFile(filepath.Join(md, sub, fmt.Sprintf("%d.M1P1.host", at.Unix())), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Before the downtime: processed live (or deliberately not); catchup
	// leaves it alone.
	write("cur", stop.Add(-time.Hour), strings.Replace(scanMessage("live@remote.test", 0, "20261201T090000Z"), "UID:scan-1@", "UID:live-1@", 1))
	write("new", stop.Add(30*time.Minute), scanMessage("inv@remote.test", 0, "20261201T090000Z"))
	write("new", stop.Add(40*time.Minute), "From: x@remote.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nplain\r\n")
	write("new", stop.Add(50*time.Minute), scanMessage("upd@remote.test", 1, "20261201T100000Z"))

	db := testDB(t, dir)
	for _, u := range []string{"bob@example.test", "carol@example.test"} {
		if err := db.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: u}) }); err != nil {
			t.Fatal(err)
		}
	}
	// imipd ran until stop and started again at start.
	if _, ok, err := filter.RecordStart(ctx, db, stop); ok || err != nil {
		t.Fatalf("first start: downtime %v, %v", ok, err)
	}
	if _, ok, err := filter.RecordStart(ctx, db, start); !ok || err != nil {
		t.Fatalf("restart: downtime %v, %v", ok, err)
	}

	f := config.Defaults()
	f.DataDir = dir
	f.DefaultPolicy = "always"
	f.LocalDomains = []string{"example.test"}
	cfg, _ := f.Validate()
	env := Env{Cfg: cfg, Store: db, Proc: &filter.Processor{Store: db, Cfg: cfg.Processor, Now: func() time.Time { return start }}}
	sock := serve(t, dir, func() Env { return env })
	call := func(args ...string) string {
		var out bytes.Buffer
		code, msg, err := Call(ctx, sock, args, LocalClient{}, &out)
		if err != nil || code != 0 {
			t.Fatalf("%v over the socket: %d %s %v", args, code, msg, err)
		}
		return out.String()
	}

	var first struct {
		Downtimes []calstore.Downtime `json:"downtimes"`
		Results   []map[string]any    `json:"results"`
	}
	out := call("catchup", "-json", "-maildirs", tmpl)
	if err := json.Unmarshal([]byte(out), &first); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(first.Downtimes) != 1 || !first.Downtimes[0].From.Equal(stop) || !first.Downtimes[0].To.Equal(start) {
		t.Errorf("downtimes %v, want %v to %v", first.Downtimes, stop, start)
	}
	if len(first.Results) != 2 || first.Results[0]["outcome"] != "needs-action" || first.Results[1]["outcome"] != "applied" ||
		first.Results[0]["user"] != "bob@example.test" {
		t.Fatalf("results: %v", first.Results)
	}
	db.Read(ctx, func(tx calstore.Tx) error {
		ev, err := tx.Event("bob@example.test", "scan-1@remote.test")
		if err != nil {
			t.Errorf("the invitation of the downtime: %v", err)
		} else if v, err := viewEvent(ev); err != nil || v.Sequence != 1 {
			t.Errorf("event after catchup: %+v %v", v.Fields, err)
		}
		if _, err := tx.Event("bob@example.test", "live-1@remote.test"); err == nil {
			t.Errorf("catchup processed a message from before the downtime")
		}
		return nil
	})

	if out := call("catchup", "-maildirs", tmpl); strings.TrimSpace(out) != "no downtime to catch up" {
		t.Errorf("second run: %q", out)
	}
	var log []calstore.LogEntry
	db.Read(ctx, func(tx calstore.Tx) (err error) { log, err = tx.Log("bob@example.test", 0); return err })
	if len(log) != 2 {
		t.Errorf("%d log entries after two runs, want 2", len(log))
	}
}

// TestCatchupSummary: the text output names the downtime, the users
// without a Maildir and the outcomes; a missing or unsafe -maildirs is a
// usage error.
func TestCatchupSummary(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := testDB(t, dir)
	db.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: "carol@example.test"}) })
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	filter.RecordStart(ctx, db, at)
	filter.RecordStart(ctx, db, at.Add(time.Minute))
	f := config.Defaults()
	cfg, _ := f.Validate()
	env := Env{Cfg: cfg, Store: db, Proc: &filter.Processor{Store: db, Cfg: cfg.Processor}, Client: LocalClient{}}
	for _, bad := range [][]string{{"catchup"}, {"catchup", "-maildirs", "vmail/%n"}, {"catchup", "-maildirs", "/vmail/x"},
		{"catchup", "-maildirs", "/vmail/../%n"}, {"catchup", "-maildirs", "/vmail/%x/%n"}, {"catchup", "-maildirs", "/v/%n", "extra"}} {
		var out bytes.Buffer
		env.Out = &out
		if err := Run(ctx, env, bad); ExitCode(err) != 2 {
			t.Errorf("%v: %v (exit %d), want a usage error", bad, err, ExitCode(err))
		}
	}
	var out bytes.Buffer
	env.Out = &out
	if err := Run(ctx, env, []string{"catchup", "-maildirs", filepath.Join(dir, "%u")}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "1 users (1 without a Maildir), 0 messages since") {
		t.Errorf("summary: %q", s)
	}
}

// TestCatchupAccess: on the admin socket imipctl lists for catchup only
// the directories its -maildirs template names, with any one segment for
// %d, %n, %u, never a path that climbs out.
func TestCatchupAccess(t *testing.T) {
	g := guardedClient{Client: LocalClient{}, a: accessFor([]string{"catchup", "-json", "-maildirs", "/v/%d/%n/Maildir"})}
	for p, ok := range map[string]bool{
		"/v/example.test/bob/Maildir":     true,
		"/v/example.test/bob/Maildir/cur": true,
		"/v/example.test/bob/Maildir/new": true,
		"/v/example.test/bob/Maildir/tmp": false,
		"/v/example.test/bob":             false,
		"/v/../bob/Maildir":               false,
		"/v/x/../Maildir/cur":             false,
		"/etc":                            false,
		"/v/a/b/c/Maildir":                false,
	} {
		_, err := g.ReadDir(p)
		if refused := err != nil && strings.Contains(err.Error(), "refused"); refused == ok {
			t.Errorf("ReadDir(%q): %v, want allowed %v", p, err, ok)
		}
	}
	if _, err := g.ReadFile("/v/example.test/bob/Maildir/cur/1.x"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a file it did not list: %v", err)
	}
	for addr, want := range map[string]string{
		"bob@example.test": "/v/example.test/bob/Maildir",
		"../x@..":          "/v/_/_/Maildir",
		"a/b@c/d":          "/v/_/_/Maildir",
	} {
		if got := expandMaildir("/v/%d/%n/Maildir", addr); got != want {
			t.Errorf("expandMaildir(%q) = %q, want %q", addr, got, want)
		}
	}
	if got := expandMaildir("/v/%u/100%%", "bob@example.test"); got != "/v/bob@example.test/100%" {
		t.Errorf("%%u and %%%%: %q", got)
	}
}
