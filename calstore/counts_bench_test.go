package calstore_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"imipd/calstore"
)

// BenchmarkCounts is the per-user cap's read (filter overCap) for a user
// with 1,000 events and 2,000 pending items (1,000 answered), each
// carrying a 5 KB object, beside Tx.User as the baseline of one lookup.
func BenchmarkCounts(b *testing.B) {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const user = "bob@example.test"
	data := bytes.Repeat([]byte("DESCRIPTION:x\r\n"), 340)
	err = db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: user}); err != nil {
			return err
		}
		for i := range 2000 {
			if i < 1000 {
				if err := tx.PutEvent(user, calstore.Event{UID: fmt.Sprintf("e%d", i), Data: data}); err != nil {
					return err
				}
			}
			st := calstore.PendingOpen
			if i%2 == 0 {
				st = calstore.PendingDone
			}
			if _, err := tx.AddPending(calstore.Pending{User: user, UID: fmt.Sprintf("e%d", i), Kind: "invitation", Status: st, Data: data}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		fn   func(tx calstore.Tx) error
	}{
		{"counts", func(tx calstore.Tx) error { _, _, err := tx.Counts(user); return err }},
		{"user", func(tx calstore.Tx) error { _, err := tx.User(user); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := db.Read(context.Background(), c.fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
