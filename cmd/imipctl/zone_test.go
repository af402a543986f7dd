package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imipd/filter/admin"
)

// TestUserTimeZone: descriptions show times in the user's zone (imipctl
// user set -tz), else in default_timezone (issue 14, item 5).
func TestUserTimeZone(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imipd.toml")
	if err := os.WriteFile(cfg, []byte("data_dir = \""+filepath.Join(dir, "data")+"\"\ndefault_timezone = \"America/New_York\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(dir, "escaped.eml")
	if err := os.WriteFile(msg, []byte(escapedInvitation), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, must := cli(t, "-config", cfg)
	must("user", "add", "-policy", "always", "bob@example.test")
	if out := must("user", "show", "bob@example.test"); !strings.Contains(out, "time zone: America/New_York (server default)") {
		t.Errorf("user show:\n%s", out)
	}
	// 09:00–10:00 UTC on 1 Dec 2026.
	if out := must("check", "-user", "bob@example.test", msg); !strings.Contains(out, "on Tue 1 Dec 2026, 04:00–05:00 (America/New_York)") {
		t.Errorf("check in the default zone:\n%s", out)
	}
	if out, err := ctl("user", "set", "-tz", "Mars/Olympus", "bob@example.test"); !errors.As(err, new(admin.UsageError)) {
		t.Errorf("an unknown zone: %v\n%s", err, out)
	}
	if out := must("user", "set", "-tz", "Europe/Berlin", "bob@example.test"); !strings.Contains(out, "time zone Europe/Berlin") {
		t.Errorf("user set -tz: %s", out)
	}
	if out := must("user", "show", "-json", "bob@example.test"); !strings.Contains(out, `"time_zone": "Europe/Berlin"`) {
		t.Errorf("user show -json:\n%s", out)
	}
	must("process", "-user", "bob@example.test", msg)
	if out := must("pending", "bob@example.test"); !strings.Contains(out, "Alice <alice@remote.test> invites you to “Budget review, Q1; room 2” on Tue 1 Dec 2026, 10:00–11:00 (Europe/Berlin)") {
		t.Errorf("pending in the user's zone:\n%s", out)
	}
	if out := must("user", "set", "-tz", "default", "bob@example.test"); !strings.Contains(out, "time zone America/New_York (server default)") {
		t.Errorf("user set -tz default: %s", out)
	}
}
