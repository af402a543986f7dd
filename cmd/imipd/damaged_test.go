package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imipd/calstore/storetest"
)

// TestMain lets a test run the daemon's main in a child process of the test
// binary (IMIPD_TEST_MAIN=1, the daemon's arguments after the test's own).
func TestMain(m *testing.M) {
	if os.Getenv("IMIPD_TEST_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{os.Args[0]}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// damagedStore writes a data directory whose store has a user with events
// in buckets of their own pages, then damages the pages named by which:
// "events" the user's events bucket (Open succeeds, the start check fails),
// "all" every page but the two meta pages (Open itself fails).
func damagedStore(t *testing.T, which string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "imipd.db")
	pg, size, err := storetest.UserWithPages(path, "bob@example.test", "")
	if err != nil {
		t.Fatal(err)
	}
	pages := []uint64{pg}
	if which == "all" {
		fi, _ := os.Stat(path)
		pages = nil
		for p := uint64(2); p < uint64(fi.Size())/uint64(size); p++ {
			pages = append(pages, p)
		}
	}
	for _, p := range pages {
		if err := storetest.Garble(path, p, size); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDamagedStoreExit: a damaged store stops imipd at start with one log
// line, no panic stack, and exit status 3, whether Open or the page check
// finds the damage (issue 13, attack 9).
func TestDamagedStoreExit(t *testing.T) {
	for _, which := range []string{"events", "all"} {
		t.Run(which, func(t *testing.T) {
			dir := damagedStore(t, which)
			conf := filepath.Join(t.TempDir(), "imipd.toml")
			os.WriteFile(conf, []byte(fmt.Sprintf("data_dir = %q\n[milter]\nlisten = \"\"\n[http]\nlisten = \"\"\n[submission]\naddress = \"\"\n", dir)), 0o600)
			cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "-config", conf)
			cmd.Env = append(os.Environ(), "IMIPD_TEST_MAIN=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitStoreDamaged {
				t.Fatalf("exit: %v, want status %d\n%s", err, exitStoreDamaged, stderr.String())
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Contains(out, "goroutine ") || strings.Contains(out, ".go:") || strings.Count(out, "\n") != 0 {
				t.Errorf("want one log line, no stack:\n%s", out)
			}
			if !strings.Contains(out, "damaged") || !strings.Contains(out, "imipd.db") {
				t.Errorf("the line does not say what is wrong where: %s", out)
			}
		})
	}
}
