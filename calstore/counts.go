package calstore

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Counts implements Tx: two keys of the user's data bucket, or, on a file
// written before they existed, the events' keys counted and the pending
// items' statuses read (once: the next change keeps the key).
func (t *tx) Counts(user string) (events, openPending int, err error) {
	if err := t.check(false); err != nil {
		return 0, 0, err
	}
	_, p, err := t.userBucket(user, ubEvents)
	if err != nil {
		return 0, 0, err
	}
	ub := t.btx.Bucket(bucketUserdata).Bucket([]byte(p))
	ev, err := userCount(ub, keyEventCount)
	if err != nil {
		return 0, 0, fmt.Errorf("events of %s: %w", p, err)
	}
	op, err := userCount(ub, keyOpenPending)
	if err != nil {
		return 0, 0, fmt.Errorf("pending items of %s: %w", p, err)
	}
	return int(ev), int(op), nil
}

// userCount reads the count key of a user's data bucket ub, or counts
// what it stands for where the key is absent.
func userCount(ub *bolt.Bucket, key []byte) (uint64, error) {
	if v := ub.Get(key); len(v) == 8 {
		return readU64(v), nil
	}
	return countUser(ub, key)
}

// countUser counts by reading: the keys of the events bucket, or the
// pending items with status open.
func countUser(ub *bolt.Bucket, key []byte) (uint64, error) {
	if string(key) == string(keyEventCount) {
		var n uint64
		c := ub.Bucket(ubEvents).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return n, nil
	}
	return countStatus(ub.Bucket(ubPending), PendingOpen, "pending item")
}

// countStatus counts the values of b (JSON with a "status" field, Pending
// or OutboxItem) whose status is want, decoding only that field; what
// names the values in errors.
func countStatus(b *bolt.Bucket, want, what string) (uint64, error) {
	var n uint64
	err := b.ForEach(func(k, v []byte) error {
		var st struct {
			Status string `json:"status"`
		}
		if err := decode(v, &st); err != nil {
			return fmt.Errorf("%s %x: %w", what, k, err)
		}
		if st.Status == want {
			n++
		}
		return nil
	})
	return n, err
}

// addCount changes a count key of the user (primary address) by delta,
// before the change it counts is written; an absent key is counted first.
func (t *tx) addCount(primary string, key []byte, delta int) error {
	ub := t.btx.Bucket(bucketUserdata).Bucket([]byte(primary))
	if ub == nil {
		return fmt.Errorf("%w: data of user %s missing (run check)", ErrNotFound, primary)
	}
	if delta == 0 && ub.Get(key) != nil {
		return nil
	}
	n, err := userCount(ub, key)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", key, primary, err)
	}
	v := max(int64(n)+int64(delta), 0)
	if err := ub.Put(key, u64(uint64(v))); err != nil {
		return fmt.Errorf("%s of %s: %w", key, primary, mapErr(err))
	}
	return nil
}

// checkCounts reports a count key of a user's data bucket that disagrees
// with what it counts (DB.Check).
func checkCounts(ub *bolt.Bucket, user string) error {
	for _, key := range [][]byte{keyEventCount, keyOpenPending} {
		v := ub.Get(key)
		if v == nil || ub.Bucket(ubEvents) == nil || ub.Bucket(ubPending) == nil {
			continue
		}
		n, err := countUser(ub, key)
		if err != nil {
			return fmt.Errorf("user %s: %s: %w", user, key, err)
		}
		if got := readU64(v); got != n {
			return fmt.Errorf("user %s: %s counter is %d, the store holds %d", user, key, got, n)
		}
	}
	return nil
}
