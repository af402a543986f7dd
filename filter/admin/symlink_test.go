package admin

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
)

// TestMaildirSymlinksNotFollowed (issue 13 follow-up): scan and catchup run
// as root, so a cur/ or new/ of a user's Maildir that is a symbolic link
// to another user's, or a message file that links to another user's
// message, is not followed: counted as skipped with a reason in the
// summary and never processed into the user's calendar, directly and over
// the admin socket; the user's own mail is still processed.
func TestMaildirSymlinksNotFollowed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	stop := now.Add(-2 * time.Hour)
	at := stop.Add(30 * time.Minute)
	msg := func(uid string) string {
		return strings.Replace(scanMessage(uid+"@remote.test", 0, "20261201T090000Z"), "UID:scan-1@", "UID:"+uid+"@", 1)
	}
	for _, tc := range []struct{ name, via string }{
		{"scan", "direct"},
		{"scan", "socket"},
		{"catchup", "socket"},
	} {
		t.Run(tc.name+" "+tc.via, func(t *testing.T) {
			dir := t.TempDir()
			tmpl := filepath.Join(dir, "vmail", "%d", "%n", "Maildir")
			alice := filepath.Join(dir, "vmail", "example.test", "alice", "Maildir")
			bob := filepath.Join(dir, "vmail", "example.test", "bob", "Maildir")
			name := fmt.Sprintf("%d.M1P1.host", at.Unix())
			for _, d := range []string{"cur", "new", "tmp"} {
				os.MkdirAll(filepath.Join(alice, d), 0o700)
			}
			os.MkdirAll(filepath.Join(bob, "new"), 0o700)
			for file, body := range map[string]string{
				filepath.Join(alice, "cur", name):                                 msg("alice-cur"),
				filepath.Join(alice, "new", "x"+name):                             msg("alice-new"),
				filepath.Join(bob, "new", fmt.Sprintf("%d.M2P2.host", at.Unix())): msg("bob-own"),
			} {
				if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(filepath.Join(alice, "cur"), filepath.Join(bob, "cur")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(alice, "new", "x"+name), filepath.Join(bob, "new", name)); err != nil {
				t.Fatal(err)
			}

			env, db := scanEnv(t, dir, now)
			for _, u := range []string{"alice@example.test", "bob@example.test"} {
				if err := db.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: u}) }); err != nil {
					t.Fatal(err)
				}
			}
			if tc.name == "catchup" {
				filter.RecordStart(ctx, db, stop)
				if _, ok, err := filter.RecordStart(ctx, db, now); !ok || err != nil {
					t.Fatalf("restart: downtime %v, %v", ok, err)
				}
			}
			var logs bytes.Buffer
			env.Proc.Log = slog.New(slog.NewTextHandler(&logs, nil))
			args := []string{"scan", "-user", "bob@example.test", bob}
			if tc.name == "catchup" {
				args = []string{"catchup", "-maildirs", tmpl}
			}
			var out bytes.Buffer
			if tc.via == "direct" {
				env.Out = &out
				if err := Run(ctx, env, args); err != nil {
					t.Fatal(err)
				}
			} else {
				sock := serve(t, dir, func() Env { return env })
				if code, m, err := Call(ctx, sock, args, LocalClient{}, &out); err != nil || code != 0 {
					t.Fatalf("%v: %d %s %v", args, code, m, err)
				}
			}
			if !strings.Contains(out.String(), "2 symbolic links not followed") {
				t.Errorf("summary %q: want 2 symbolic links not followed", out.String())
			}
			if n := strings.Count(logs.String(), "symbolic link not followed"); n != 2 {
				t.Errorf("%d log lines about links, want 2:\n%s", n, logs.String())
			}
			db.Read(ctx, func(tx calstore.Tx) error {
				for _, uid := range []string{"alice-cur@remote.test", "alice-new@remote.test"} {
					if _, err := tx.Event("bob@example.test", uid); err == nil {
						t.Errorf("alice's %s processed into bob's calendar through a link", uid)
					}
				}
				if _, err := tx.Event("bob@example.test", "bob-own@remote.test"); err != nil {
					t.Errorf("bob's own message: %v", err)
				}
				return nil
			})
		})
	}
}

// TestCatchupMaildirSymlink: a user who owns the directory holding their
// Maildir replaces the Maildir itself with a link to another user's:
// catchup (as root) lists nothing through it, counts it and logs it.
func TestCatchupMaildirSymlink(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	stop := now.Add(-2 * time.Hour)
	at := stop.Add(30 * time.Minute)
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "vmail", "%d", "%n", "Maildir")
	alice := filepath.Join(dir, "vmail", "example.test", "alice", "Maildir")
	bobHome := filepath.Join(dir, "vmail", "example.test", "bob")
	for _, d := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(alice, d), 0o700)
	}
	os.MkdirAll(bobHome, 0o700)
	body := strings.Replace(scanMessage("alice-cur@remote.test", 0, "20261201T090000Z"), "UID:scan-1@", "UID:alice-cur@", 1)
	if err := os.WriteFile(filepath.Join(alice, "cur", fmt.Sprintf("%d.M1P1.host", at.Unix())), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(alice, filepath.Join(bobHome, "Maildir")); err != nil {
		t.Fatal(err)
	}
	env, db := scanEnv(t, dir, now)
	if err := db.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: "bob@example.test"}) }); err != nil {
		t.Fatal(err)
	}
	filter.RecordStart(ctx, db, stop)
	if _, ok, err := filter.RecordStart(ctx, db, now); !ok || err != nil {
		t.Fatalf("restart: downtime %v, %v", ok, err)
	}
	var logs bytes.Buffer
	env.Proc.Log = slog.New(slog.NewTextHandler(&logs, nil))
	sock := serve(t, dir, func() Env { return env })
	var out bytes.Buffer
	args := []string{"catchup", "-maildirs", tmpl}
	if code, m, err := Call(ctx, sock, args, LocalClient{}, &out); err != nil || code != 0 {
		t.Fatalf("%v: %d %s %v", args, code, m, err)
	}
	if !strings.Contains(out.String(), "1 symbolic links not followed") {
		t.Errorf("summary %q: want 1 symbolic links not followed", out.String())
	}
	if !strings.Contains(logs.String(), "symbolic link not followed") {
		t.Errorf("no log line about the link:\n%s", logs.String())
	}
	db.Read(ctx, func(tx calstore.Tx) error {
		if _, err := tx.Event("bob@example.test", "alice-cur@remote.test"); err == nil {
			t.Errorf("alice's message processed into bob's calendar through his Maildir link")
		}
		return nil
	})
}
