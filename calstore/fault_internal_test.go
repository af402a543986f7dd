package calstore

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestFaultWriteFailures: a write that failed in the store (begin, commit)
// is a fault until the next write commits; damage stays.
func TestFaultWriteFailures(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "imipd.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Fault(); err != nil {
		t.Fatal(err)
	}
	full := errors.New("commit: no space left on device")
	db.noteWrite(full)
	db.noteWrite(errors.New("commit: later failure"))
	if err := db.Fault(); !errors.Is(err, full) {
		t.Fatalf("after a failed commit: %v, want the first failure of the run", err)
	}
	db.noteWrite(nil)
	if err := db.Fault(); err != nil {
		t.Fatalf("after a commit: %v", err)
	}
	db.noteCorrupt(corruptErr("assertion failed"))
	db.noteWrite(nil)
	if err := db.Fault(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damage after a commit: %v", err)
	}
}
