package calstore_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"imipd/calstore"
)

// BenchmarkOutboxRound is what one round of the outbox sender reads from a
// store holding a week of sent items (5,000, each with a 4 KB body) and a
// few queued ones: /index is the queries the sender asks (OutboxSentBefore,
// OutboxDue, OutboxNextDue), /scan the whole outbox it read before them.
func BenchmarkOutboxRound(b *testing.B) {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	now := time.Date(2026, 3, 8, 9, 0, 0, 0, time.UTC)
	body := bytes.Repeat([]byte("DESCRIPTION:x\r\n"), 270)
	err = db.Write(ctx, func(tx calstore.Tx) error {
		for i := range 5010 {
			at := now.Add(-time.Duration(5010-i) * 2 * time.Minute)
			o, err := tx.Enqueue(calstore.OutboxItem{From: "a@example.test", To: []string{"b@remote.test"}, Body: body, Created: at})
			if err != nil {
				return err
			}
			if i < 5000 {
				o.Status, o.Updated = calstore.OutboxSent, at
			} else {
				o.NextAttempt = now.Add(time.Duration(i-5004) * time.Minute) // some due, some later
			}
			if err := tx.PutOutbox(o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			err := db.Read(ctx, func(tx calstore.Tx) error {
				if _, err := tx.OutboxSentBefore(now.Add(-7*24*time.Hour), 0); err != nil {
					return err
				}
				if _, err := tx.OutboxDue(now, 1); err != nil {
					return err
				}
				_, err := tx.OutboxNextDue(now)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			err := db.Read(ctx, func(tx calstore.Tx) error {
				_, err := tx.Outbox()
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
