package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"imipd/calstore"
	"imipd/filter/admin"
)

const requestNew = "../../filter/testdata/scenarios/request-new/message.eml"

// ctl runs imipctl with args on the data directory data.
func ctl(t *testing.T, data string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"-data", data}, args...), nil, &out)
	return out.String(), err
}

func mustCtl(t *testing.T, data string, args ...string) string {
	t.Helper()
	out, err := ctl(t, data, args...)
	if err != nil {
		t.Fatalf("imipctl %v: %v", args, err)
	}
	return out
}

// TestMissingStore: a command that reads, run from the wrong directory or
// with a mistyped -data, is an error naming the path and -config, and
// leaves nothing behind; the commands that put users or mail in create it.
func TestMissingStore(t *testing.T) {
	for _, args := range [][]string{{"users"}, {"events", "bob@example.test"}, {"pending", "-all", "bob@example.test"},
		{"log"}, {"outbox"}, {"user", "show", "bob@example.test"}, {"contacts", "add", "bob@example.test", "a@b.test"},
		{"check", requestNew}, {"user", "password", "bob@example.test"}} {
		data := filepath.Join(t.TempDir(), "imipd-dta")
		out, err := ctl(t, data, args...)
		if err == nil {
			t.Errorf("%v on a missing store: no error (%q)", args, out)
			continue
		}
		if !strings.Contains(err.Error(), filepath.Join(data, "imipd.db")) || !strings.Contains(err.Error(), "-config") {
			t.Errorf("%v: %v, want the path and -config named", args, err)
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v created %s (%v)", args, data, err)
		}
	}
	data := filepath.Join(t.TempDir(), "new")
	mustCtl(t, data, "user", "add", "bob@example.test")
	if out := mustCtl(t, data, "users"); !strings.Contains(out, "bob@example.test") {
		t.Fatalf("users after user add: %q", out)
	}
	for _, args := range [][]string{{"process", "-user", "bob@example.test", requestNew}, {"scan", "-user", "bob@example.test", filepath.Dir(requestNew)}} {
		if _, err := ctl(t, filepath.Join(t.TempDir(), "fresh"), args...); err != nil {
			t.Errorf("%v on a fresh data directory: %v", args, err)
		}
	}
}

// TestLocalLocked: -local while imipd holds the store says imipd answers
// on its socket (leave out -local), not that it does not.
func TestLocalLocked(t *testing.T) {
	data := t.TempDir()
	db, err := calstore.Open(filepath.Join(data, "imipd.db"), calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = ctl(t, data, "-local", "users")
	if err == nil || !strings.Contains(err.Error(), "no imipd answers") {
		t.Errorf("locked, no socket: %v", err)
	}
	ln, err := net.Listen("unix", filepath.Join(data, "imipd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out bytes.Buffer
	err = run(context.Background(), []string{"-local", "-data", data, "users"}, nil, &out)
	if err == nil || !strings.Contains(err.Error(), "answers") || strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "without -local") {
		t.Errorf("locked, socket answering: %v", err)
	}
}

// TestHelpAndUsage: -h is help (exit 0, on standard output); a usage error
// prints the command's own usage, not the whole list.
func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"help"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, nil, &out); err != nil || !strings.Contains(out.String(), "commands:") {
			t.Errorf("%v: %v %q", args, err, out.String())
		}
	}
	var help bytes.Buffer
	if err := run(context.Background(), []string{"-data", t.TempDir(), "events", "-h"}, nil, &help); err != nil || !strings.Contains(help.String(), "imipctl events [-json] USER") {
		t.Errorf("events -h: %v %q", err, help.String())
	}
	u := usageFor([]string{"-data", "x", "events", "a", "b"})
	if !strings.Contains(u, "imipctl events [-json] USER") || strings.Contains(u, "user add") || strings.Count(u, "\n") > 4 {
		t.Errorf("usage of events: %q", u)
	}
	u = usageFor([]string{"user", "password"})
	if !strings.Contains(u, "imipctl user password USER") || strings.Contains(u, "user add") {
		t.Errorf("usage of user password: %q", u)
	}
	if u := usageFor([]string{"user", "frob"}); !strings.Contains(u, "user add") || !strings.Contains(u, "user feed") || strings.Contains(u, "events") {
		t.Errorf("usage of user: %q", u)
	}
	if u := usageFor([]string{"frobnicate"}); !strings.Contains(u, "commands:") {
		t.Errorf("usage of an unknown command: %q", u)
	}
}

// TestCLIManners: flags after arguments, the valid actions in an action
// error, events by start, no actions on done items, no empty fields in
// JSON, no relative feed URL.
func TestCLIManners(t *testing.T) {
	data := t.TempDir()
	mustCtl(t, data, "user", "add", "-policy", "always", "bob@example.test")
	mustCtl(t, data, "process", "-user", "bob@example.test", requestNew)

	out := mustCtl(t, data, "events", "bob@example.test", "-json")
	var evs []map[string]any
	if err := json.Unmarshal([]byte(out), &evs); err != nil || len(evs) != 1 {
		t.Fatalf("events USER -json: %v %q", err, out)
	}
	for _, k := range []string{"rrule", "instances"} {
		if _, ok := evs[0][k]; ok {
			t.Errorf("events -json: empty %q not left out: %s", k, out)
		}
	}

	_, err := ctl(t, data, "respond", "bob@example.test", "1", "maybe")
	var ue admin.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "want accept, tentative, decline or ignore") || !strings.Contains(err.Error(), "an invitation") {
		t.Errorf("respond maybe: %v", err)
	}
	mustCtl(t, data, "respond", "bob@example.test", "1", "accept")
	out = mustCtl(t, data, "pending", "-all", "bob@example.test")
	if !strings.Contains(out, "#1 invitation") || strings.Contains(out, "actions:") {
		t.Errorf("pending -all offers actions on a done item:\n%s", out)
	}
	out = mustCtl(t, data, "pending", "bob@example.test", "-json", "-all")
	if strings.Contains(out, `"actions"`) {
		t.Errorf("pending -json: actions on a done item:\n%s", out)
	}

	ics := filepath.Join(t.TempDir(), "cal.ics")
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n")
	for _, e := range []struct{ uid, start string }{{"a-late", "20270301T090000Z"}, {"b-early", "20260101T090000Z"}, {"c-middle", "20260601"}} {
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:%s\r\nSUMMARY:%s\r\nEND:VEVENT\r\n", e.uid, e.start, e.uid)
	}
	b.WriteString("END:VCALENDAR\r\n")
	if err := os.WriteFile(ics, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, data, "import", "carol@example.test", ics)
	out = mustCtl(t, data, "events", "carol@example.test")
	early, middle, late := strings.Index(out, "b-early"), strings.Index(out, "c-middle"), strings.Index(out, "a-late")
	if early < 0 || middle < early || late < middle {
		t.Errorf("events not by start:\n%s", out)
	}

	bad := t.TempDir()
	raw, err := os.ReadFile("../../filter/testdata/scenarios/bad-malformed-line/message.eml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bad, "msg.eml"), raw, 0o600)
	out = mustCtl(t, data, "scan", "-json", "-user", "bob@example.test", bad)
	if !strings.Contains(out, `"outcome": "rejected"`) || strings.Contains(out, `""`) {
		t.Errorf("scan -json keeps empty fields:\n%s", out)
	}

	out, err = ctl(t, data, "user", "feed", "bob@example.test")
	if err == nil || !strings.Contains(err.Error(), "caldav.base_url") || out != "" {
		t.Errorf("user feed with CalDAV off: %q %v", out, err)
	}
	cfg := filepath.Join(t.TempDir(), "imipd.toml")
	os.WriteFile(cfg, []byte("data_dir = \""+data+"\"\n[caldav]\nbase_url = \"https://cal.example.org/dav\"\n"), 0o600)
	var o bytes.Buffer
	if err := run(context.Background(), []string{"-config", cfg, "user", "feed", "bob@example.test"}, nil, &o); err != nil || !strings.HasPrefix(o.String(), "https://cal.example.org/dav/feed/") {
		t.Errorf("user feed with base_url: %q %v", o.String(), err)
	}
}

// TestPasswordPrompt runs `user password` on a real pseudo-terminal: a
// prompt, no echo of what is typed, asked twice; a pipe still works.
func TestPasswordPrompt(t *testing.T) {
	data := t.TempDir()
	mustCtl(t, data, "user", "add", "bob@example.test")
	master, slave := openPTY(t)
	var mu sync.Mutex
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		typed := 0
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			s := screen.String()
			mu.Unlock()
			if typed == 0 && strings.Contains(s, "password for bob@example.test: ") || typed == 1 && strings.Contains(s, "again: ") {
				io.WriteString(master, "s3cret-Pass\n")
				typed++
			}
			if err != nil {
				return
			}
		}
	}()
	// Without a prompt nobody types, and imipctl would wait for ever:
	// closing the terminal ends its read.
	stop := time.AfterFunc(30*time.Second, func() { slave.Close() })
	defer stop.Stop()
	var out bytes.Buffer
	err := run(context.Background(), []string{"-data", data, "user", "password", "bob@example.test"}, slave, &out)
	slave.Close()
	<-done
	if err != nil {
		t.Fatalf("user password on a terminal: %v (screen %q)", err, screen.String())
	}
	if s := screen.String(); !strings.Contains(s, "again: ") || strings.Contains(s, "s3cret") {
		t.Errorf("terminal shows %q: want both prompts and no password", s)
	}
	if s := mustCtl(t, data, "user", "show", "bob@example.test"); !strings.Contains(s, "app password set") {
		t.Errorf("password not set:\n%s", s)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-data", data, "user", "password", "bob@example.test"}, strings.NewReader("other-Pass9\n"), &out); err != nil {
		t.Errorf("from a pipe: %v", err)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip("no pseudo-terminals: ", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave
}
