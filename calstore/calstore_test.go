package calstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"imipd/calstore"
	"imipd/calstore/storetest"
)

var ctx = context.Background()

func openTemp(t *testing.T) *calstore.DB {
	t.Helper()
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) calstore.Store {
		db := openTemp(t)
		t.Cleanup(func() {
			// Every suite test leaves a consistent file behind. Check on
			// a store the test closed reports ErrClosed, which is fine.
			if err := db.Check(ctx); err != nil && !errors.Is(err, calstore.ErrClosed) {
				t.Errorf("Check after test: %v", err)
			}
		})
		return db
	})
}

// readBolt opens the file with bbolt directly and runs fn.
func readBolt(t *testing.T, path string, write bool, fn func(*bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	defer bdb.Close()
	if write {
		err = bdb.Update(fn)
	} else {
		err = bdb.View(fn)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db, err := calstore.Open(path, calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	readBolt(t, path, false, func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return errors.New("no meta bucket")
		}
		if got := string(meta.Get([]byte("schema"))); got != fmt.Sprint(calstore.SchemaVersion) {
			t.Errorf("schema = %q, want %d", got, calstore.SchemaVersion)
		}
		for _, b := range []string{"users", "addrs", "userdata", "log", "outbox"} {
			if tx.Bucket([]byte(b)) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
}

func TestSchemaRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup func(tx *bolt.Tx) error
	}{
		{"newer version", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte(fmt.Sprint(calstore.SchemaVersion+1)))
		}},
		{"garbage version", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("one"))
		}},
		{"no version in a used file", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Delete([]byte("schema"))
		}},
		{"foreign bbolt file", func(tx *bolt.Tx) error {
			for _, b := range []string{"meta", "users", "addrs", "userdata", "log", "outbox"} {
				if err := tx.DeleteBucket([]byte(b)); err != nil {
					return err
				}
			}
			_, err := tx.CreateBucket([]byte("certificates"))
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "imipd.db")
			db, err := calstore.Open(path, calstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			readBolt(t, path, true, c.setup)
			for _, ro := range []bool{false, true} {
				db, err = calstore.Open(path, calstore.Options{ReadOnly: ro})
				if !errors.Is(err, calstore.ErrSchema) {
					t.Errorf("Open(ReadOnly %v): got %v, want ErrSchema", ro, err)
				}
				if db != nil {
					db.Close()
				}
			}
			// The refused file was not changed and not left locked.
			readBolt(t, path, false, func(tx *bolt.Tx) error { return nil })
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db, err := calstore.Open(path, calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var pid uint64
	err = db.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "alice@example.test", Aliases: []string{"al@example.test"}}); err != nil {
			return err
		}
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "u", Data: []byte("ICS")}); err != nil {
			return err
		}
		if err := tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "k"}); err != nil {
			return err
		}
		p, err := tx.AddPending(calstore.Pending{User: "alice@example.test", UID: "u"})
		pid = p.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = calstore.Open(path, calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Write(ctx, func(tx calstore.Tx) error {
		ev, err := tx.Event("al@example.test", "u")
		if err != nil {
			return err
		}
		if string(ev.Data) != "ICS" {
			t.Errorf("event data after reopen: %q", ev.Data)
		}
		if _, err := tx.LogEntry("alice@example.test", "k"); err != nil {
			return err
		}
		if err := tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "k"}); !errors.Is(err, calstore.ErrExists) {
			t.Errorf("AddLog after reopen: %v, want ErrExists", err)
		}
		p, err := tx.AddPending(calstore.Pending{User: "alice@example.test"})
		if err != nil {
			return err
		}
		if p.ID <= pid {
			t.Errorf("pending ID after reopen: %d, want > %d", p.ID, pid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const timeout = 200 * time.Millisecond
	for _, ro := range []bool{false, true} {
		start := time.Now()
		db2, err := calstore.Open(path, calstore.Options{Timeout: timeout, ReadOnly: ro})
		elapsed := time.Since(start)
		if !errors.Is(err, calstore.ErrLocked) {
			t.Errorf("second Open (ReadOnly %v): got %v, want ErrLocked", ro, err)
			if db2 != nil {
				db2.Close()
			}
		}
		if elapsed > timeout+time.Second {
			t.Errorf("second Open (ReadOnly %v) took %v, timeout %v", ro, elapsed, timeout)
		}
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Errorf("error does not name the file: %v", err)
		}
	}
	// Once closed, the file can be opened again.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := calstore.Open(path, calstore.Options{Timeout: timeout})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	db2.Close()
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	if _, err := calstore.Open(path, calstore.Options{ReadOnly: true}); err == nil {
		t.Fatal("ReadOnly Open of a missing file succeeded")
	}
	db, err := calstore.Open(path, calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: "alice@example.test"}) })
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	ro1, err := calstore.Open(path, calstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro1.Close()
	// Readers share the file.
	ro2, err := calstore.Open(path, calstore.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("second ReadOnly Open: %v", err)
	}
	defer ro2.Close()
	err = ro1.Read(ctx, func(tx calstore.Tx) error {
		_, err := tx.User("alice@example.test")
		return err
	})
	if err != nil {
		t.Errorf("Read: %v", err)
	}
	err = ro1.Write(ctx, func(tx calstore.Tx) error { return nil })
	if !errors.Is(err, calstore.ErrReadOnly) {
		t.Errorf("Write on ReadOnly: got %v, want ErrReadOnly", err)
	}
	if err := ro1.Check(ctx); err != nil {
		t.Errorf("Check on ReadOnly: %v", err)
	}
	// A writer waits for the readers.
	if _, err := calstore.Open(path, calstore.Options{Timeout: 200 * time.Millisecond}); !errors.Is(err, calstore.ErrLocked) {
		t.Errorf("read-write Open while readers hold the file: got %v, want ErrLocked", err)
	}
}

func TestOpenNotBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err := calstore.Open(path, calstore.Options{}); err == nil {
		db.Close()
		t.Fatal("Open of a text file succeeded")
	}
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx calstore.Tx) error {
		for i := range 50 {
			u := fmt.Sprintf("user%d@example.test", i)
			if err := tx.PutUser(calstore.User{Address: u, Aliases: []string{"alias-" + u}}); err != nil {
				return err
			}
			for j := range 20 {
				ev := calstore.Event{UID: fmt.Sprint(j), Data: []byte(strings.Repeat("DESCRIPTION:x\r\n", 50))}
				if err := tx.PutEvent(u, ev); err != nil {
					return err
				}
				if err := tx.AddLog(calstore.LogEntry{User: u, Key: fmt.Sprint(j)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Check(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with cancelled ctx: %v", err)
	}
	db.Close()
	if err := db.Check(ctx); !errors.Is(err, calstore.ErrClosed) {
		t.Errorf("Check on closed: %v", err)
	}

	// Break the address index behind the store's back: Check reports it.
	readBolt(t, path, true, func(tx *bolt.Tx) error {
		addrs := tx.Bucket([]byte("addrs"))
		if err := addrs.Put([]byte("stray@example.test"), []byte("user1@example.test")); err != nil {
			return err
		}
		return addrs.Delete([]byte("alias-user2@example.test"))
	})
	db, err = calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "stray@example.test") || !strings.Contains(err.Error(), "alias-user2@example.test") {
		t.Errorf("Check of a broken index: got %v", err)
	}
}

// BenchmarkWriteEvent measures one synced Write that checks and records a
// message and stores an event, as a delivery does.
// deliveryTx is the shape of one delivery's transaction: the once-only
// lookup, the event read and write, the log entry.
func deliveryTx(key, uid string, data []byte) func(tx calstore.Tx) error {
	return func(tx calstore.Tx) error {
		if _, err := tx.LogEntry("alice@example.test", key); !errors.Is(err, calstore.ErrNotFound) {
			return fmt.Errorf("LogEntry: %v", err)
		}
		ev, err := tx.Event("alice@example.test", uid)
		if err != nil && !errors.Is(err, calstore.ErrNotFound) {
			return err
		}
		ev.UID = uid
		ev.Data = data
		ev.History = append(ev.History, calstore.HistoryEntry{Time: time.Now(), MessageID: key, Method: "REQUEST", Outcome: "applied"})
		if err := tx.PutEvent("alice@example.test", ev); err != nil {
			return err
		}
		return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: key, Outcome: "applied"})
	}
}

func benchStore(b *testing.B) *calstore.DB {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	err = db.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: "alice@example.test"}) })
	if err != nil {
		b.Fatal(err)
	}
	return db
}

var benchData = []byte(strings.Repeat("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:someone@example.org\r\n", 40))

// BenchmarkWriteEvent: one synced delivery transaction at a time.
func BenchmarkWriteEvent(b *testing.B) {
	for _, mode := range []string{"Write", "Batch"} {
		b.Run(mode, func(b *testing.B) {
			db := benchStore(b)
			b.SetBytes(int64(len(benchData)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				fn := deliveryTx(fmt.Sprint("k", i), fmt.Sprint("uid", i%100), benchData)
				i++
				var err error
				if mode == "Write" {
					err = db.Write(ctx, fn)
				} else {
					err = db.Batch(ctx, fn)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConcurrentDeliveries: 16 concurrent synced deliveries, each its
// own transaction (Write) or grouped (Batch). Compare ns/op in one run.
func BenchmarkConcurrentDeliveries(b *testing.B) {
	for _, mode := range []string{"Write", "Batch"} {
		b.Run(mode, func(b *testing.B) {
			db := benchStore(b)
			var n atomic.Int64
			b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 writers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					fn := deliveryTx(fmt.Sprint("k", i), fmt.Sprint("uid", i%100), benchData)
					var err error
					if mode == "Write" {
						err = db.Write(ctx, fn)
					} else {
						err = db.Batch(ctx, fn)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestMigrateHistory: a schema 1 file (history inside the event value) is
// migrated on open: the history moves to its own bucket, nothing is lost.
func TestMigrateHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db, err := calstore.Open(path, calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "alice@example.test"}); err != nil {
			return err
		}
		return tx.PutEvent("alice@example.test", calstore.Event{UID: "u1", Data: []byte("D")})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Turn it into what schema 1 wrote.
	readBolt(t, path, true, func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1")); err != nil {
			return err
		}
		evs := tx.Bucket([]byte("userdata")).Bucket([]byte("alice@example.test")).Bucket([]byte("events"))
		v1 := `{"uid":"u1","data":"RA==","history":[{"time":"2026-03-01T09:00:00Z","message_id":"<a@x>","method":"REQUEST","outcome":"applied"},{"time":"2026-03-01T10:00:00Z","message_id":"<b@x>","method":"REPLY","outcome":"applied"}],"updated":"2026-03-01T10:00:00Z"}`
		return evs.Put([]byte("u1"), []byte(v1))
	})
	db, err = calstore.Open(path, calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Read(ctx, func(tx calstore.Tx) error {
		ev, err := tx.Event("alice@example.test", "u1")
		if err != nil || string(ev.Data) != "D" {
			t.Fatalf("event after migration: %+v %v", ev, err)
		}
		h, err := tx.EventHistory("alice@example.test", "u1")
		if err != nil || len(h) != 2 || h[0].MessageID != "<a@x>" || h[1].Method != "REPLY" {
			t.Fatalf("history after migration: %+v %v", h, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// openPath opens the store at path; the test's cleanup closes it (a
// second Close is harmless).
func openPath(t *testing.T, path string) *calstore.DB {
	t.Helper()
	db, err := calstore.Open(path, calstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBudgetAndQueueSurviveReopen: budget uses and the queued count are in
// the file, not in memory.
func TestBudgetAndQueueSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	const dave = "auto-send\x00dave@remote.test"
	db := openPath(t, path)
	must(t, db.Write(ctx, func(tx calstore.Tx) error {
		for range 2 {
			if _, err := tx.TakeBudget(dave, t0, time.Hour, 2); err != nil {
				return err
			}
		}
		_, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}})
		return err
	}))
	db.Close()
	db = openPath(t, path)
	must(t, db.Write(ctx, func(tx calstore.Tx) error {
		if ok, err := tx.TakeBudget(dave, t0.Add(time.Minute), time.Hour, 2); ok || err != nil {
			t.Errorf("after reopen: a third use of a budget of 2 was taken (%v)", err)
		}
		if n, err := tx.OutboxQueued(); n != 1 || err != nil {
			t.Errorf("after reopen: OutboxQueued = %d, %v, want 1", n, err)
		}
		return nil
	}))
	must(t, db.Check(ctx))
}

// TestMigrateOutboxQueued: a schema 2 file (no counter) gets the count of
// its queued items on open; Check notices a counter that disagrees.
func TestMigrateOutboxQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db := openPath(t, path)
	must(t, db.Write(ctx, func(tx calstore.Tx) error {
		for _, st := range []string{calstore.OutboxSent, calstore.OutboxQueued, calstore.OutboxQueued} {
			o, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}})
			if err != nil {
				return err
			}
			o.Status = st
			if err := tx.PutOutbox(o); err != nil {
				return err
			}
		}
		return nil
	}))
	db.Close()
	// Turn it into what schema 2 wrote.
	readBolt(t, path, true, func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if err := meta.Put([]byte("schema"), []byte("2")); err != nil {
			return err
		}
		for _, b := range []string{"budget", "budget-exp", "outbox-due", "outbox-sent"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return meta.Delete([]byte("outbox-queued"))
	})
	db = openPath(t, path)
	must(t, db.Read(ctx, func(tx calstore.Tx) error {
		if n, err := tx.OutboxQueued(); n != 2 || err != nil {
			t.Errorf("after migration: OutboxQueued = %d, %v, want 2", n, err)
		}
		return nil
	}))
	must(t, db.Check(ctx))
	db.Close()
	readBolt(t, path, true, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("outbox-queued"), make([]byte, 8))
	})
	if err := openPath(t, path).Check(ctx); err == nil || !strings.Contains(err.Error(), "outbox-queued") {
		t.Fatalf("Check with a wrong counter: %v", err)
	}
}

// TestMigrateOutboxIndex: a schema 3 file (no outbox indexes) gets them
// built on open, so the sender's queries answer for items queued and sent
// before; Check notices an index that disagrees with the outbox.
func TestMigrateOutboxIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db := openPath(t, path)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var ids []uint64
	must(t, db.Write(ctx, func(tx calstore.Tx) error {
		for i, st := range []string{calstore.OutboxSent, calstore.OutboxQueued, calstore.OutboxFailed, calstore.OutboxQueued} {
			o, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}, Created: t0, NextAttempt: t0.Add(time.Duration(i) * time.Minute)})
			if err != nil {
				return err
			}
			o.Status = st
			if err := tx.PutOutbox(o); err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		return nil
	}))
	db.Close()
	// Turn it into what schema 3 wrote.
	readBolt(t, path, true, func(tx *bolt.Tx) error {
		for _, b := range []string{"outbox-due", "outbox-sent"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("3"))
	})
	db = openPath(t, path)
	must(t, db.Check(ctx))
	must(t, db.Read(ctx, func(tx calstore.Tx) error {
		l, err := tx.OutboxDue(t0.Add(time.Hour), 0)
		if len(l) != 2 || l[0].ID != ids[1] || l[1].ID != ids[3] || err != nil {
			t.Errorf("after migration: OutboxDue = %+v, %v; want items %d and %d", l, err, ids[1], ids[3])
		}
		if next, err := tx.OutboxNextDue(t0.Add(time.Minute)); !next.Equal(t0.Add(3*time.Minute)) || err != nil {
			t.Errorf("after migration: OutboxNextDue = %v, %v", next, err)
		}
		return nil
	}))
	must(t, db.Read(ctx, func(tx calstore.Tx) error {
		if l, err := tx.OutboxSentBefore(time.Now().Add(time.Hour), 0); len(l) != 1 || l[0] != ids[0] || err != nil {
			t.Errorf("after migration: OutboxSentBefore = %v, %v; want the sent item %d", l, err, ids[0])
		}
		return nil
	}))
	db.Close()
	readBolt(t, path, true, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("outbox-due")).Put(make([]byte, 16), make([]byte, 8))
	})
	if err := openPath(t, path).Check(ctx); err == nil || !strings.Contains(err.Error(), "outbox-due") {
		t.Fatalf("Check with a stray index entry: %v", err)
	}
}

// TestCountsWithoutKeys: a file written before the count keys existed
// answers Counts by reading, and the next change keeps the key; Check
// finds a count key that disagrees with the store.
func TestCountsWithoutKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	const user = "bob@example.test"
	err = db.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: user}); err != nil {
			return err
		}
		for i, st := range []string{calstore.PendingOpen, calstore.PendingDone, calstore.PendingOpen} {
			if err := tx.PutEvent(user, calstore.Event{UID: fmt.Sprint(i), Data: []byte("x")}); err != nil {
				return err
			}
			if _, err := tx.AddPending(calstore.Pending{User: user, UID: fmt.Sprint(i), Kind: "invitation", Status: st}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	setKeys := func(v []byte) {
		readBolt(t, path, true, func(btx *bolt.Tx) error {
			ub := btx.Bucket([]byte("userdata")).Bucket([]byte(user))
			for _, k := range []string{"event-count", "open-pending"} {
				var err error
				if v == nil {
					err = ub.Delete([]byte(k))
				} else {
					err = ub.Put([]byte(k), v)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	counts := func(db *calstore.DB) (ev, op int) {
		t.Helper()
		if err := db.Read(ctx, func(tx calstore.Tx) error {
			var err error
			ev, op, err = tx.Counts(user)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ev, op
	}
	setKeys(nil)
	db, err = calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev, op := counts(db); ev != 3 || op != 2 {
		t.Errorf("without keys: %d events, %d open, want 3 and 2", ev, op)
	}
	err = db.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.DeleteEvent(user, "0"); err != nil {
			return err
		}
		_, err := tx.AddPending(calstore.Pending{User: user, UID: "3", Kind: "invitation"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev, op := counts(db); ev != 2 || op != 3 {
		t.Errorf("after a change: %d events, %d open, want 2 and 3", ev, op)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
	db.Close()
	setKeys([]byte{0, 0, 0, 0, 0, 0, 0, 99})
	db, err = calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(ctx); err == nil || !strings.Contains(err.Error(), "counter is 99") {
		t.Errorf("Check with a wrong count: %v", err)
	}
}
