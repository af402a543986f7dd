package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"imipd/calstore"
	"imipd/calstore/pgstore"
	"imipd/calstore/pgstore/pgtest"
	"imipd/calstore/storetest"
	"imipd/filter"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open returns a Store on a new empty database of the test cluster.
func open(t *testing.T) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgtest.NewDSN(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store suite, the contract bbolt's DB passes too.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) calstore.Store { return open(t) })
}

// TestSchema: a new database gets the current version; a second Open
// (another instance) leaves it; a newer version and a database that is
// someone else's are refused; a bad DSN's error does not quote it.
func TestSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDSN(t)
	for range 2 {
		s, err := pgstore.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.Close()
	}
	exec := func(dsn, sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(dsn, fmt.Sprintf("UPDATE imipd_meta SET version = %d", pgstore.SchemaVersion+1))
	if _, err := pgstore.Open(ctx, dsn); !errors.Is(err, calstore.ErrSchema) {
		t.Errorf("Open of a newer schema: %v, want ErrSchema", err)
	}
	other := pgtest.NewDSN(t)
	exec(other, "CREATE TABLE users (name text)")
	if _, err := pgstore.Open(ctx, other); !errors.Is(err, calstore.ErrSchema) {
		t.Errorf("Open of another program's database: %v, want ErrSchema", err)
	}
	_, err := pgstore.Open(ctx, "host=127.0.0.1 password=sekrit-pw port=notanumber")
	if err == nil || strings.Contains(err.Error(), "sekrit-pw") {
		t.Errorf("Open with a bad DSN: %v; want an error that does not quote the password", err)
	}
}

// TestDatabaseAway: the server stops in the middle of a delivery-shaped
// Write (after some of its statements ran) and stays away a while: the
// Write fails with nothing of it kept, /healthz's check (filter.StoreReady)
// fails while the server is away, turns ready again once it is back
// before any other write (its test write clears the fault), and the same
// Store works again, without reopening.
func TestDatabaseAway(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	c := pgtest.Shared(t)
	if err := s.Write(ctx, func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "alice@example.test"})
	}); err != nil {
		t.Fatal(err)
	}
	ready := filter.StoreReady(s)
	if err := ready(ctx); err != nil {
		t.Fatalf("ready before: %v", err)
	}
	down := false
	t.Cleanup(func() {
		if down {
			c.StartServer()
		}
	})
	err := s.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "half", Data: []byte("x")}); err != nil {
			return err
		}
		// AddLog's answer is needed: the event's statements go out with it.
		if err := tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "half"}); err != nil {
			return err
		}
		if err := c.StopServer(); err != nil {
			t.Fatal(err)
		}
		down = true
		return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "half2"})
	})
	if err == nil {
		t.Fatal("Write across the server's stop: committed")
	}
	for _, what := range []string{"ready", "write"} {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		if what == "ready" {
			err = ready(cctx)
		} else {
			err = s.Write(cctx, func(tx calstore.Tx) error { return tx.PutEvent("alice@example.test", calstore.Event{UID: "x"}) })
		}
		cancel()
		if err == nil {
			t.Errorf("%s while the server is away: no error", what)
		}
	}
	if s.Fault() == nil {
		t.Error("Fault while the server is away: nil")
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	down = false
	// No write meanwhile: the check itself notices the server is back.
	for try := 0; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(cctx)
		cancel()
		if err == nil {
			break
		}
		if try == 10 {
			t.Fatalf("ready after the server is back, no write meanwhile: %v", err)
		}
	}
	if err := s.Fault(); err != nil {
		t.Errorf("Fault after the check's test write: %v", err)
	}
	err = s.Write(ctx, func(tx calstore.Tx) error {
		return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "after"})
	})
	if err != nil {
		t.Fatalf("first Write after the server is back: %v", err)
	}
	err = s.Read(ctx, func(tx calstore.Tx) error {
		if _, err := tx.Event("alice@example.test", "half"); !errors.Is(err, calstore.ErrNotFound) {
			t.Errorf("event of the interrupted Write: %v, want ErrNotFound", err)
		}
		if _, err := tx.LogEntry("alice@example.test", "half"); !errors.Is(err, calstore.ErrNotFound) {
			t.Errorf("log entry of the interrupted Write: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteRetries: a plain Write that PostgreSQL aborts for a deadlock
// (two Writes locking alice and bob in opposite orders, a real 40P01) or
// a serialisation failure (40001, as pgx returns it) runs again and
// commits; other errors, a once-only key present among them, end it after
// one run.
func TestWriteRetries(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	users := []string{"alice@example.test", "bob@example.test"}
	if err := s.Write(ctx, func(tx calstore.Tx) error {
		for _, u := range users {
			if err := tx.PutUser(calstore.User{Address: u}); err != nil {
				return err
			}
		}
		return tx.AddLog(calstore.LogEntry{User: users[0], Key: "present"})
	}); err != nil {
		t.Fatal(err)
	}

	// Deadlock: each Write's first run locks its first user, waits for
	// the other's, then asks for the other's user.
	var ready sync.WaitGroup
	ready.Add(2)
	var runs [2]atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 {
		first, second := users[i], users[1-i]
		wg.Go(func() {
			err := s.Write(ctx, func(tx calstore.Tx) error {
				uid := fmt.Sprint("deadlock", i)
				if err := tx.PutEvent(first, calstore.Event{UID: uid}); err != nil {
					return err
				}
				if runs[i].Add(1) == 1 {
					ready.Done()
					ready.Wait()
				}
				return tx.PutEvent(second, calstore.Event{UID: uid})
			})
			if err != nil {
				t.Errorf("Write %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := runs[0].Load() + runs[1].Load(); got != 3 {
		t.Errorf("deadlock: %d runs of the two functions, want 3 (the aborted one again)", got)
	}
	err := s.Read(ctx, func(tx calstore.Tx) error {
		for _, u := range users {
			for i := range 2 {
				if _, err := tx.Event(u, fmt.Sprint("deadlock", i)); err != nil {
					t.Errorf("deadlock: %v", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	plain := errors.New("plain")
	for _, c := range []struct {
		name string
		err  error // the first run's error
		runs int32
		want error
	}{
		{"serialisation failure", &pgconn.PgError{Code: "40001"}, 2, nil},
		{"deadlock returned", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01"}), 2, nil},
		{"once-only key present", nil, 1, calstore.ErrExists},
		{"other error", plain, 1, plain},
	} {
		var n atomic.Int32
		err := s.Write(ctx, func(tx calstore.Tx) error {
			if n.Add(1) == 1 && c.err != nil {
				return c.err
			}
			if c.want == calstore.ErrExists {
				return tx.AddLog(calstore.LogEntry{User: users[0], Key: "present"})
			}
			return tx.PutEvent(users[0], calstore.Event{UID: c.name})
		})
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) || n.Load() != c.runs {
			t.Errorf("%s: %v after %d runs, want %v after %d", c.name, err, n.Load(), c.want, c.runs)
		}
	}
}

// TestContribRole: contrib/postgresql/imipd.sql makes a role imipd can run
// on (tables created in its own schema on first Open, then used), and that
// can do nothing beyond it: no table in public, no database, no role.
func TestContribRole(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Shared(t)
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	sql, err := filepath.Abs("../../contrib/postgresql/imipd.sql")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(sql)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", c.DSN("postgres"))
	cmd.Stdin = strings.NewReader(string(src))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql -f contrib/postgresql/imipd.sql: %v\n%s", err, out)
	}
	dsn := strings.Replace(c.DSN("imipd"), "user=postgres", "user=imipd", 1)
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open as the imipd role: %v", err)
	}
	defer s.Close()
	if err := s.Write(ctx, func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "alice@example.test"})
	}); err != nil {
		t.Fatalf("Write as the imipd role: %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'users'`).Scan(&schema); err != nil || schema != "imipd" {
		t.Errorf("users table in schema %q, %v; want imipd", schema, err)
	}
	for _, q := range []string{`CREATE TABLE public.x (a int)`, `CREATE DATABASE x`, `CREATE ROLE x`} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("%s: allowed to the imipd role", q)
		}
	}
}

// userBatched is a Store whose Batch is BatchUser with one key: every
// Batch call of the suite shares the per-user groups.
type userBatched struct{ *pgstore.Store }

func (s userBatched) Batch(ctx context.Context, fn func(calstore.Tx) error) error {
	return s.BatchUser(ctx, "alice@example.test", fn)
}

// TestConformanceBatchUser runs the store suite with BatchUser's groups
// (savepoints per call) in place of Batch.
func TestConformanceBatchUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T) calstore.Store { return userBatched{open(t)} })
}

// TestCopy: a bbolt store copied into PostgreSQL and back dumps the same
// at each step (imipctl migrate's check); a store that is not empty is
// refused as the destination.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	src, err := calstore.Open(filepath.Join(t.TempDir(), "src.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	err = src.Write(ctx, func(tx calstore.Tx) error {
		for _, u := range []calstore.User{{Address: "alice@example.test", Aliases: []string{"al@example.test"}, Policy: "always", PasswordHash: "$2a$h", Created: t0},
			{Address: "bob@example.test", Delegates: []string{"sec@example.test"}, Created: t0}} {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		for i, uid := range []string{"e1", "e2\x00odd", "gone"} {
			ev := calstore.Event{UID: uid, Data: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"), Updated: t0.Add(time.Duration(i) * time.Hour),
				ReplyStamps: map[string]time.Time{"x@remote.test": t0}, History: []calstore.HistoryEntry{{Time: t0, MessageID: "<m@x>", Outcome: "applied"}, {Time: t0, Summary: "2nd"}}}
			if err := tx.PutEvent("alice@example.test", ev); err != nil {
				return err
			}
		}
		if err := tx.DeleteEvent("alice@example.test", "gone"); err != nil {
			return err
		}
		for i, user := range []string{"bob@example.test", "alice@example.test", "bob@example.test"} {
			if err := tx.AddLog(calstore.LogEntry{User: user, Key: fmt.Sprint("k", i), Time: t0, Outcome: "applied"}); err != nil {
				return err
			}
		}
		if _, err := tx.AddPending(calstore.Pending{User: "alice@example.test", UID: "e1", Kind: "invitation", Status: "done", Created: t0, Updated: t0, Data: []byte("ICS")}); err != nil {
			return err
		}
		if err := tx.AddContact(calstore.Contact{User: "bob@example.test", Address: "friend@remote.test", Name: "F", Source: "vcard"}); err != nil {
			return err
		}
		o, err := tx.Enqueue(calstore.OutboxItem{From: "alice@example.test", To: []string{"x@remote.test"}, Body: []byte("B"), Created: t0})
		if err != nil {
			return err
		}
		o.Status, o.Attempts, o.Updated = calstore.OutboxSent, 1, t0
		if err := tx.PutOutbox(o); err != nil {
			return err
		}
		if err := tx.SetAlive(t0); err != nil {
			return err
		}
		return tx.PutDowntimes([]calstore.Downtime{{From: t0, To: t0.Add(time.Hour)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	dump := func(s calstore.Store) string {
		t.Helper()
		var b strings.Builder
		if err := calstore.Dump(ctx, s, &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	pg := open(t)
	if err := calstore.Copy(ctx, src, pg); err != nil {
		t.Fatalf("Copy to PostgreSQL: %v", err)
	}
	want := dump(src)
	if got := dump(pg); got != want {
		t.Errorf("PostgreSQL copy dumps\n%s\nwant\n%s", got, want)
	}
	back, err := calstore.Open(filepath.Join(t.TempDir(), "back.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if err := calstore.Copy(ctx, pg, back); err != nil {
		t.Fatalf("Copy back to bbolt: %v", err)
	}
	if got := dump(back); got != want {
		t.Errorf("copy back dumps\n%s\nwant\n%s", got, want)
	}
	if err := calstore.Copy(ctx, src, pg); !errors.Is(err, calstore.ErrExists) {
		t.Errorf("Copy into a store with users: %v, want ErrExists", err)
	}
}

// TestSyncAcrossInstances: two instances write one user's events at once
// while a sync-collection client asks the other instance for changes
// since its last token, again and again: it misses no change (the counter
// is advanced under the user's lock, so no lower value commits after a
// higher one was read) and ends at the final counter.
func TestSyncAcrossInstances(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDSN(t)
	var ss [2]*pgstore.Store
	for i := range ss {
		s, err := pgstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ss[i] = s
	}
	if err := ss[0].Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: "alice@example.test"}) }); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				err := ss[w%2].Write(ctx, func(tx calstore.Tx) error {
					return tx.PutEvent("alice@example.test", calstore.Event{UID: fmt.Sprintf("w%d-%d", w, i), Data: []byte("x")})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var token uint64
	poll := func() {
		t.Helper()
		err := ss[1].Read(ctx, func(tx calstore.Tx) error {
			cur, changed, _, err := tx.Changes("alice@example.test", token)
			for _, uid := range changed {
				seen[uid] = true
			}
			token = cur
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		poll()
	}
	poll()
	if len(seen) != writers*each || token != writers*each {
		t.Errorf("the client saw %d events, token %d; want %d and %d", len(seen), token, writers*each, writers*each)
	}
}
