package storetest

import (
	"context"
	"fmt"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"

	"imipd/calstore"
)

// Damage helpers for the store-fault tests: they work on a closed bbolt
// file (or, for Garble, on one a running store has mapped: bbolt reads its
// pages from the shared mapping, so the damage shows at once).

// BucketPage returns the root page of the nested bucket at buckets
// (top-level name first; calstore's layout is in its doc.go) of the bbolt
// file at path, which nothing may hold open, and the file's page size. A
// bucket small enough to live inline in its parent has no page: an error.
func BucketPage(path string, buckets ...string) (pgid uint64, pageSize int, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var b *bolt.Bucket
		for i, name := range buckets {
			if i == 0 {
				b = tx.Bucket([]byte(name))
			} else {
				b = b.Bucket([]byte(name))
			}
			if b == nil {
				return fmt.Errorf("no bucket %q", buckets[:i+1])
			}
		}
		pgid = uint64(b.Root())
		if pgid == 0 {
			return fmt.Errorf("bucket %q is inline: no page of its own", buckets)
		}
		return nil
	})
	return pgid, db.Info().PageSize, err
}

// Garble overwrites page pgid of the file at path with bytes that are no
// bbolt page (a wrong page id, flags and counts).
func Garble(path string, pgid uint64, pageSize int) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	junk := make([]byte, pageSize)
	for i := range junk {
		junk[i] = byte(i*7 + 13)
	}
	if _, err := f.WriteAt(junk, int64(pgid)*int64(pageSize)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// UserWithPages adds user (policy as calstore.User.Policy) to the calstore
// file at path, creating it, with enough events that the user's events
// bucket has pages of its own, closes it again, and returns that bucket's
// root page and the file's page size (for Garble).
func UserWithPages(path, user, policy string) (pgid uint64, pageSize int, err error) {
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		return 0, 0, err
	}
	err = db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: user, Policy: policy}); err != nil {
			return err
		}
		for i := range 8 {
			ev := calstore.Event{UID: fmt.Sprintf("old-%d@remote.test", i), Data: []byte(strings.Repeat("x", 700))}
			if err := tx.PutEvent(user, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, err
	}
	return BucketPage(path, "userdata", user, "events")
}
