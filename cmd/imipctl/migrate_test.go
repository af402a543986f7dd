package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imipd/calstore/pgstore/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestMigrate: imipctl migrate copies a bbolt store into the configured
// PostgreSQL database, checked by comparing dumps; imipctl then works on
// the database; and back into a new bbolt file.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDSN(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imipd.toml")
	data := filepath.Join(dir, "data")
	os.WriteFile(cfg, []byte("data_dir = \""+data+"\"\n[store]\ndriver = \"postgres\"\ndsn = \""+dsn+"\"\n"), 0o600)
	imipctl := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if err := run(ctx, append([]string{"-local"}, args...), strings.NewReader(""), &out); err != nil {
			t.Fatalf("imipctl %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	// A bbolt store in data_dir (the configuration without [store]).
	bolt := filepath.Join(dir, "bolt.toml")
	os.WriteFile(bolt, []byte("data_dir = \""+data+"\"\n"), 0o600)
	imipctl("-config", bolt, "user", "add", "-alias", "al@example.test", "alice@example.test")
	ics := filepath.Join(dir, "ev.ics")
	os.WriteFile(ics, []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:ev1@example.test\r\nDTSTAMP:20261101T000000Z\r\n"+
		"DTSTART:20261201T090000Z\r\nSUMMARY:Review\r\nORGANIZER:mailto:alice@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), 0o600)
	imipctl("-config", bolt, "import", "alice@example.test", ics)

	if out := imipctl("-config", cfg, "migrate", "-to", "postgres"); !strings.Contains(out, "migrated to postgres") {
		t.Fatalf("migrate: %s", out)
	}
	if out := imipctl("-config", cfg, "events", "al@example.test"); !strings.Contains(out, "ev1@example.test") {
		t.Errorf("events on PostgreSQL after migrate: %s", out)
	}
	var out strings.Builder
	if err := run(ctx, []string{"-local", "-config", cfg, "migrate", "-to", "postgres"}, strings.NewReader(""), &out); err == nil {
		t.Error("a second migrate into the same database: no error")
	}
	if err := run(ctx, []string{"-local", "-config", cfg, "migrate", "-to", "bbolt"}, strings.NewReader(""), &out); err == nil {
		t.Error("migrate -to bbolt over an existing file: no error")
	}
	back := filepath.Join(dir, "back")
	if out := imipctl("-config", cfg, "-data", back, "migrate", "-to", "bbolt"); !strings.Contains(out, "migrated to bbolt") {
		t.Fatalf("migrate back: %s", out)
	}
	if out := imipctl("-data", back, "events", "alice@example.test"); !strings.Contains(out, "ev1@example.test") {
		t.Errorf("events in the bbolt copy: %s", out)
	}
}
