package filter_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
)

// TestRecordStart: a store imipd never ran on gets no downtime; each later
// start records the stretch since the last sign of life (KeepAlive's last
// write at a clean stop, or its last tick before a crash), oldest first.
func TestRecordStart(t *testing.T) {
	ctx := context.Background()
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	if _, ok, err := filter.RecordStart(ctx, db, t0); ok || err != nil {
		t.Fatalf("first start: downtime %v, %v; want none", ok, err)
	}
	// A clean stop an hour later: KeepAlive's last write when its context ends.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	filter.KeepAlive(stopped, db, time.Hour, func() time.Time { return t0.Add(time.Hour) }, nil)
	d, ok, err := filter.RecordStart(ctx, db, t0.Add(3*time.Hour))
	if !ok || err != nil || !d.From.Equal(t0.Add(time.Hour)) || !d.To.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("restart: %v %v %v; want the stretch from the stop to the start", d, ok, err)
	}
	// A crash right after: the next downtime starts at that start.
	if _, ok, _ := filter.RecordStart(ctx, db, t0.Add(5*time.Hour)); !ok {
		t.Fatal("second restart: no downtime")
	}
	var l []calstore.Downtime
	db.Read(ctx, func(tx calstore.Tx) error { l, err = tx.Downtimes(); return err })
	if len(l) != 2 || !l[0].From.Equal(t0.Add(time.Hour)) || !l[1].From.Equal(t0.Add(3*time.Hour)) || !l[1].To.Equal(t0.Add(5*time.Hour)) {
		t.Fatalf("downtimes %v", l)
	}
}
