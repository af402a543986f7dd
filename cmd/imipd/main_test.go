package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/config"
	"imipd/filter/admin"
)

// startedHandler is run's log in tests: it closes started at the log line
// "imipd started" and drops every record.
type startedHandler struct{ started chan struct{} }

func (h startedHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h startedHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h startedHandler) WithGroup(string) slog.Handler            { return h }
func (h startedHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "imipd started" {
		close(h.started)
	}
	return nil
}

// TestRunServesAndStops starts the daemon on loopback ports chosen by the
// kernel, talks to it over the admin socket, then stops it as SIGTERM would:
// run returns nil and the store is released.
func TestRunServesAndStops(t *testing.T) {
	f := config.Defaults()
	f.DataDir = t.TempDir()
	f.LocalDomains = []string{"example.test"}
	f.Milter.Listen = "inet:127.0.0.1:0"
	f.HTTP.Listen = "127.0.0.1:0"
	cfg, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() { done <- run(ctx, cfg, slog.New(startedHandler{started})) }()
	// "imipd started" is logged once every listener listens: a connection
	// waits in the backlog until it is served.
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("run returned before it started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("imipd did not start within 10s")
	}

	var out bytes.Buffer
	code, msg, err := admin.Call(context.Background(), cfg.AdminSocket(), []string{"user", "add", "bob@example.test"}, admin.LocalClient{}, &out)
	if err != nil || code != 0 {
		t.Fatalf("user add over the socket: %d %s %v", code, msg, err)
	}
	// While the daemon runs, the database is locked to other processes.
	if _, err := calstore.Open(cfg.DBPath(), calstore.Options{Timeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("store opened while the daemon holds it")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	db, err := calstore.Open(cfg.DBPath(), calstore.Options{})
	if err != nil {
		t.Fatalf("store not released: %v", err)
	}
	defer db.Close()
	err = db.Read(context.Background(), func(tx calstore.Tx) error { _, err := tx.User("bob@example.test"); return err })
	if err != nil {
		t.Fatalf("user added through the daemon: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "imipd.sock")); err == nil {
		t.Log("admin socket file left behind (removed on next start)")
	}
}

// TestRunRefusesBadConfig: imipd does not start on a configuration with
// an error; it names the key and exits 1.
func TestRunRefusesBadConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "imipd.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("data_dir = %q\ndefault_policy = \"sometimes\"\n", t.TempDir())), 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "-config", conf)
	cmd.Env = append(os.Environ(), "IMIPD_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("bad default_policy accepted: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "default_policy") {
		t.Errorf("the error does not name default_policy:\n%s", out)
	}
}

// The queue gauge reads the store's counter of queued items.
func TestOutboxQueuedGauge(t *testing.T) {
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Write(context.Background(), func(tx calstore.Tx) error {
		for range 2 {
			if _, err := tx.Enqueue(calstore.OutboxItem{From: "a@example.test", To: []string{"b@remote.test"}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := outboxQueued(db); n != 2 {
		t.Fatalf("outboxQueued = %v, want 2", n)
	}
}
