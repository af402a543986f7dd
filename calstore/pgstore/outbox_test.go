package pgstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"imipd/calstore"
	"imipd/calstore/pgstore"
	"imipd/calstore/pgstore/pgtest"
)

// TestOutboxSkipLocked: while one sender's Write holds the item it claimed
// (not committed yet), another instance's claim skips that item and takes
// the next, at once, instead of waiting for the first to commit.
func TestOutboxSkipLocked(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDSN(t)
	var ss [2]*pgstore.Store
	for i := range ss {
		s, err := pgstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ss[i] = s
	}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var ids []uint64
	if err := ss[0].Write(ctx, func(tx calstore.Tx) error {
		for i := range 3 {
			o, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}, Created: t0.Add(time.Duration(i) * time.Second), NextAttempt: t0})
			if err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	held, release := make(chan uint64), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- ss[0].Write(ctx, func(tx calstore.Tx) error {
			l, err := tx.OutboxDue(t0, 1)
			if err != nil || len(l) != 1 {
				return errors.Join(err, errors.New("first claim: no item"))
			}
			held <- l[0].ID
			<-release
			l[0].Attempts++
			l[0].NextAttempt = t0.Add(time.Hour)
			return tx.PutOutbox(l[0])
		})
	}()
	var h uint64
	select {
	case h = <-held:
	case err := <-first:
		t.Fatalf("first claim: %v", err)
	}
	if h != ids[0] {
		t.Errorf("first claim took item %d, want the oldest, %d", h, ids[0])
	}
	// The second claim must not wait for the first: a deadline far below
	// the first's life (it waits for release) tells.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	start := time.Now()
	var got []uint64
	err := ss[1].Write(wctx, func(tx calstore.Tx) error {
		l, err := tx.OutboxDue(t0, 0)
		for _, o := range l {
			got = append(got, o.ID)
		}
		return err
	})
	cancel()
	t.Logf("second claim: %v", time.Since(start))
	close(release)
	if err != nil {
		t.Fatalf("second claim while the first holds its item: %v", err)
	}
	if !slices.Equal(got, ids[1:]) {
		t.Errorf("second claim got %v, want %v (the held item skipped)", got, ids[1:])
	}
	if err := <-first; err != nil {
		t.Fatalf("first claim: %v", err)
	}
	// A Read neither locks nor skips: it sees what is committed.
	if err := ss[1].Read(ctx, func(tx calstore.Tx) error {
		l, err := tx.OutboxDue(t0, 0)
		if len(l) != 2 {
			t.Errorf("Read after the first claim: %d items due, want 2", len(l))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateOutboxColumns: a schema 1 database with outbox items gets the
// columns and indexes of schema 2 filled from the items' JSON on Open, so
// the sender's queries answer for items queued and sent before.
func TestMigrateOutboxColumns(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE imipd_meta (version int NOT NULL); INSERT INTO imipd_meta VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, pgstore.Migrations[0]); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 123456000, time.UTC)
	items := []calstore.OutboxItem{
		{ID: 1, Status: calstore.OutboxSent, Created: t0, Updated: t0.Add(time.Minute), NextAttempt: t0},
		{ID: 2, Status: calstore.OutboxQueued, Created: t0.Add(time.Second), Updated: t0, NextAttempt: t0.Add(time.Hour)},
		{ID: 3, Status: calstore.OutboxQueued, Created: t0, Updated: t0, NextAttempt: t0.Add(2 * time.Hour).In(time.FixedZone("X", 3600))},
		{ID: 4, Status: calstore.OutboxFailed, Created: t0, Updated: t0, NextAttempt: t0},
	}
	for _, o := range items {
		o.From, o.To = "a@x", []string{"b@x"}
		buf, err := calstore.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO outbox (id, status, record) VALUES ($1, $2, $3)`, int64(o.ID), o.Status, buf); err != nil {
			t.Fatal(err)
		}
	}
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open of a schema 1 database: %v", err)
	}
	defer s.Close()
	if err := s.Read(ctx, func(tx calstore.Tx) error {
		l, err := tx.OutboxDue(t0.Add(3*time.Hour), 0)
		if len(l) != 2 || l[0].ID != 3 || l[1].ID != 2 {
			t.Errorf("OutboxDue after migration: %+v, want items 3 and 2 (oldest first)", l)
		}
		if l, _ := tx.OutboxDue(t0.Add(time.Hour), 0); len(l) != 1 || l[0].ID != 2 {
			t.Errorf("OutboxDue at item 2's next attempt: %+v, want item 2", l)
		}
		next, err2 := tx.OutboxNextDue(t0.Add(time.Hour))
		if !next.Equal(t0.Add(2 * time.Hour)) {
			t.Errorf("OutboxNextDue after migration: %v, want %v", next, t0.Add(2*time.Hour))
		}
		return errors.Join(err, err2)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Read(ctx, func(tx calstore.Tx) error {
		if l, err := tx.OutboxSentBefore(t0.Add(time.Minute), 0); len(l) != 0 || err != nil {
			t.Errorf("OutboxSentBefore the sent item's time: %v, %v; want none", l, err)
		}
		l, err := tx.OutboxSentBefore(t0.Add(time.Minute+time.Microsecond), 0)
		if len(l) != 1 || l[0] != 1 {
			t.Errorf("OutboxSentBefore after the sent item's time: %v, want [1]", l)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
