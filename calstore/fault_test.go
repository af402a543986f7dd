package calstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"imipd/calstore"
	"imipd/calstore/storetest"
)

// damageFixture writes a closed store with users whose buckets have pages
// of their own, and returns its path and bytes.
func damageFixture(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "imipd.db")
	for i := range 12 {
		if _, _, err := storetest.UserWithPages(path, fmt.Sprintf("u%02d@example.test", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// TestDamagedPages damages each page of a real bbolt file in turn (issue
// 13, attack 9): Open, the start check, reads and writes never panic; what
// a transaction finds damaged is ErrCorrupt and stays in Fault; and the
// start check (CheckPages) finds every damage that a read or write hits.
func TestDamagedPages(t *testing.T) {
	_, orig := damageFixture(t)
	const pageSize = 4096
	pages := len(orig) / pageSize
	var openFailed, checkFound, opsFailed int
	for pg := 2; pg < pages; pg++ { // pages 0 and 1 are bbolt's two meta pages: one survives the other
		p := filepath.Join(t.TempDir(), "imipd.db")
		if err := os.WriteFile(p, orig, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := storetest.Garble(p, uint64(pg), pageSize); err != nil {
			t.Fatal(err)
		}
		db, err := calstore.Open(p, calstore.Options{NoSync: true})
		if err != nil {
			if !errors.Is(err, calstore.ErrCorrupt) {
				t.Errorf("page %d: Open: %v, want ErrCorrupt", pg, err)
			}
			openFailed++
			continue
		}
		checkErr := db.CheckPages(ctx)
		if checkErr != nil {
			checkFound++
			if !errors.Is(checkErr, calstore.ErrCorrupt) {
				t.Errorf("page %d: CheckPages: %v, want ErrCorrupt", pg, checkErr)
			}
		}
		readErr := db.Read(ctx, func(tx calstore.Tx) error {
			us, err := tx.Users()
			if err != nil {
				return err
			}
			for _, u := range us {
				if _, err := tx.Events(u.Address); err != nil {
					return err
				}
			}
			return nil
		})
		writeErr := db.Write(ctx, func(tx calstore.Tx) error {
			return tx.PutEvent("u05@example.test", calstore.Event{UID: "new", Data: []byte("y")})
		})
		for _, err := range []error{readErr, writeErr} {
			if errors.Is(err, calstore.ErrCorrupt) {
				opsFailed++
				if db.Fault() == nil {
					t.Errorf("page %d: %v, but Fault is nil", pg, err)
				}
				if checkErr == nil {
					t.Errorf("page %d: %v, but the start check found nothing", pg, err)
				}
			}
		}
		db.Close()
	}
	t.Logf("%d pages damaged in turn: Open refused %d, the start check found %d, %d reads or writes failed", pages-2, openFailed, checkFound, opsFailed)
	if openFailed == 0 || checkFound == 0 || opsFailed == 0 {
		t.Errorf("the fixture does not cover Open, the start check and transactions")
	}
}

// TestDamagedLeafWhileOpen: a page damaged under a running store (the
// file is mapped) makes the transactions that touch it fail with
// ErrCorrupt, and Fault reports it from then on, also after writes that
// do not touch it succeed.
func TestDamagedLeafWhileOpen(t *testing.T) {
	path, _ := damageFixture(t)
	pg, size, err := storetest.BucketPage(path, "userdata", "u03@example.test", "events")
	if err != nil {
		t.Fatal(err)
	}
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckPages(ctx); err != nil || db.Fault() != nil {
		t.Fatalf("sound file: %v %v", err, db.Fault())
	}
	if err := storetest.Garble(path, pg, size); err != nil {
		t.Fatal(err)
	}
	put := func(user string) error {
		return db.Batch(ctx, func(tx calstore.Tx) error {
			return tx.PutEvent(user, calstore.Event{UID: "old-1@remote.test", Data: []byte("z")})
		})
	}
	if err := put("u03@example.test"); !errors.Is(err, calstore.ErrCorrupt) {
		t.Fatalf("write to the damaged bucket: %v, want ErrCorrupt", err)
	}
	if err := db.Read(ctx, func(tx calstore.Tx) error { _, err := tx.Event("u03@example.test", "old-2@remote.test"); return err }); !errors.Is(err, calstore.ErrCorrupt) {
		t.Fatalf("read of the damaged bucket: %v, want ErrCorrupt", err)
	}
	if err := put("u07@example.test"); err != nil {
		t.Fatalf("write elsewhere: %v", err)
	}
	if err := db.Fault(); !errors.Is(err, calstore.ErrCorrupt) {
		t.Fatalf("Fault after damage: %v", err)
	}
}

// BenchmarkCheckPages measures the start check (bbolt's page check) on a
// store of about 185 MB (2,000 users, 40 events each), beside a read
// transaction that reads every user's events (read-all), the baseline; MB/s
// is of the file's size.
func BenchmarkCheckPages(b *testing.B) {
	path := filepath.Join(b.TempDir(), "imipd.db")
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for i := range 2000 {
		u := fmt.Sprintf("u%03d@example.test", i)
		err := db.Write(ctx, func(tx calstore.Tx) error {
			if err := tx.PutUser(calstore.User{Address: u}); err != nil {
				return err
			}
			for j := range 40 {
				if err := tx.PutEvent(u, calstore.Event{UID: fmt.Sprintf("e%d", j), Data: make([]byte, 800)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("check", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			if err := db.CheckPages(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read-all", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			err := db.Read(ctx, func(tx calstore.Tx) error {
				us, err := tx.Users()
				for _, u := range us {
					if _, err := tx.Events(u.Address); err != nil {
						return err
					}
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
