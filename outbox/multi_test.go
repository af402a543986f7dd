package outbox_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/calstore/pgstore"
	"imipd/calstore/pgstore/pgtest"
	"imipd/outbox"
)

// The tests of this file run two senders on one PostgreSQL database, each
// with its own Store (its own connection pool), as two imipd processes
// would have (issue 17). The cluster is private to the test binary
// (pgtest), started by the first test that needs it.

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// twoStores returns two Stores on one new database.
func twoStores(t *testing.T) [2]calstore.Store {
	t.Helper()
	dsn := pgtest.NewDSN(t)
	var ss [2]calstore.Store
	for i := range ss {
		s, err := pgstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		ss[i] = s
	}
	return ss
}

// TestTwoInstancesOutbox: two outbox senders, one per instance, against
// one SMTP server: every queued item is delivered exactly once (the
// attempt locks the item: the second sender sees it leased).
func TestTwoInstancesOutbox(t *testing.T) {
	ss := twoStores(t)
	sink := newObSink(t, nil)
	const n = 60
	err := ss[0].Write(context.Background(), func(tx calstore.Tx) error {
		for i := range n {
			it := obReplyItem(false)
			it.To = []string{fmt.Sprintf("o%d@remote.test", i)}
			if _, err := tx.Enqueue(it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range ss {
		o := outbox.New(s, outbox.Tune(outbox.Options{Address: sink.addr}, outbox.Tuning{Hostname: "imipd.test"}), nil)
		wg.Go(func() { o.Run(ctx) })
	}
	sink.wait(n, time.Minute)
	// The senders stop after the message in flight, its result recorded.
	cancel()
	wg.Wait()
	err = ss[1].Read(context.Background(), func(tx calstore.Tx) error {
		l, err := tx.Outbox()
		for _, it := range l {
			if it.Status != calstore.OutboxSent || it.Attempts != 1 {
				t.Errorf("item %d: status %s after %d attempts, want sent after 1", it.ID, it.Status, it.Attempts)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := sink.messages()
	seen := map[string]int{}
	for _, m := range msgs {
		seen[strings.Join(m.rcpts, ",")]++
	}
	if len(msgs) != n || len(seen) != n {
		t.Errorf("%d messages to %d recipients, want %d each (every item once)", len(msgs), len(seen), n)
	}
}
