package calstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openBatchTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "imipd.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Write(context.Background(), func(tx Tx) error { return tx.PutUser(User{Address: "org@example.test"}) }); err != nil {
		t.Fatal(err)
	}
	return db
}

func putEvent(uid string) func(Tx) error {
	return func(tx Tx) error { return tx.PutEvent("org@example.test", Event{UID: uid, Data: []byte("x")}) }
}

func hasEvent(t *testing.T, db *DB, uid string) bool {
	t.Helper()
	err := db.Read(context.Background(), func(tx Tx) error {
		_, err := tx.Event("org@example.test", uid)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// BatchDecided returns while its group's commit is still to come, and wait
// returns once the commit is done.
func TestBatchDecidedBeforeCommit(t *testing.T) {
	db := openBatchTest(t)
	release := make(chan struct{})
	var once sync.Once
	testBeforeCommit = func() { once.Do(func() { <-release }) }
	t.Cleanup(func() { testBeforeCommit = nil })

	type out struct {
		wait func() error
		err  error
	}
	got := make(chan out, 1)
	go func() {
		w, err := db.BatchDecided(context.Background(), putEvent("decided@example.test"))
		got <- out{w, err}
	}()
	var o out
	select {
	case o = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("BatchDecided did not return while the commit was held")
	}
	if o.err != nil || o.wait == nil {
		t.Fatalf("BatchDecided: %v", o.err)
	}
	waited := make(chan error, 1)
	go func() { waited <- o.wait() }()
	select {
	case err := <-waited:
		t.Fatalf("wait returned (%v) before the commit", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-waited; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if !hasEvent(t, db, "decided@example.test") {
		t.Error("event not stored after wait")
	}
}

// A failing fn is reported by BatchDecided itself, and its group's other
// calls still commit; a panic is raised in the caller.
func TestBatchDecidedFailures(t *testing.T) {
	db := openBatchTest(t)
	errFn := errors.New("fn failed")
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := "ok-" + string(rune('a'+i)) + "@example.test"
			fn := putEvent(uid)
			if i%3 == 0 {
				fn = func(tx Tx) error {
					if err := putEvent(uid)(tx); err != nil {
						return err
					}
					return errFn
				}
			}
			w, err := db.BatchDecided(context.Background(), fn)
			if err == nil {
				err = w()
			} else if w != nil {
				t.Errorf("call %d: wait set with error %v", i, err)
			}
			results[i] = err
		}()
	}
	wg.Wait()
	for i, err := range results {
		uid := "ok-" + string(rune('a'+i)) + "@example.test"
		if i%3 == 0 {
			if !errors.Is(err, errFn) || hasEvent(t, db, uid) {
				t.Errorf("call %d: err %v, stored %v; want fn's error, nothing stored", i, err, hasEvent(t, db, uid))
			}
			continue
		}
		if err != nil || !hasEvent(t, db, uid) {
			t.Errorf("call %d: err %v, stored %v", i, err, hasEvent(t, db, uid))
		}
	}

	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v, want the panic of fn", v)
			}
		}()
		db.BatchDecided(context.Background(), func(Tx) error { panic("boom") })
		t.Error("no panic")
	}()

	db.Close()
	if _, err := db.BatchDecided(context.Background(), putEvent("late@example.test")); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
