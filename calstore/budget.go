package calstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxBudgetKeyLen is the longest budget key TakeBudget and BudgetUsed
// accept; longer keys give ErrInvalid (callers hash what may be longer).
const MaxBudgetKeyLen = 2048

// A use of a budget is stored twice (doc.go, "budget" and "budget-exp"):
//
//	budget       u16 key length, key, u64 expiry, u64 seq -> empty
//	budget-exp   u64 expiry, u64 seq -> the budget key above
//
// Expiry is Unix nanoseconds (times before 1970 count as 0). The first
// makes counting one key's uses a seek over at most its live uses; the
// second lets pruning take the expired uses of every key from the front.

// budgetPrefix is the key prefix of key's uses in the budget bucket.
func budgetPrefix(key string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(key)))
	return append(b, key...)
}

// nanos is t in Unix nanoseconds for keys: times before 1970 as 0, times
// past what int64 holds (the year 2262) as its largest value.
func nanos(t time.Time) uint64 {
	if t.Unix() >= math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	if n := t.UnixNano(); n > 0 {
		return uint64(n)
	}
	return 0
}

func validBudgetKey(key string) error {
	if key == "" || len(key) > MaxBudgetKeyLen {
		return fmt.Errorf("%w: budget key of %d bytes (want 1 to %d)", ErrInvalid, len(key), MaxBudgetKeyLen)
	}
	return nil
}

// TakeBudget implements Tx.
func (t *tx) TakeBudget(key string, at time.Time, window time.Duration, limit int) (bool, error) {
	if err := t.check(true); err != nil {
		return false, err
	}
	if err := CheckBudget(key, window); err != nil {
		return false, err
	}
	uses, exp := t.btx.Bucket(bucketBudget), t.btx.Bucket(bucketBudgetEx)
	if err := pruneBudget(uses, exp, nanos(at)); err != nil {
		return false, err
	}
	if limit <= 0 || countBudget(uses, key, nanos(at)) >= limit {
		return false, nil
	}
	seq, err := exp.NextSequence()
	if err != nil {
		return false, fmt.Errorf("budget sequence: %w", mapErr(err))
	}
	tail := binary.BigEndian.AppendUint64(u64(nanos(at.Add(window))), seq)
	k := append(budgetPrefix(key), tail...)
	if err := uses.Put(k, nil); err != nil {
		return false, fmt.Errorf("budget %q: %w", key, mapErr(err))
	}
	if err := exp.Put(tail, k); err != nil {
		return false, fmt.Errorf("budget %q: %w", key, mapErr(err))
	}
	return true, nil
}

// BudgetUsed implements Tx.
func (t *tx) BudgetUsed(key string, at time.Time) (int, error) {
	if err := t.check(false); err != nil {
		return 0, err
	}
	if err := validBudgetKey(key); err != nil {
		return 0, err
	}
	return countBudget(t.btx.Bucket(bucketBudget), key, nanos(at)), nil
}

// countBudget counts key's uses that expire after at.
func countBudget(uses *bolt.Bucket, key string, at uint64) int {
	prefix := budgetPrefix(key)
	n := 0
	c := uses.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) == len(prefix)+16 && binary.BigEndian.Uint64(k[len(prefix):]) > at {
			n++
		}
	}
	return n
}

// pruneBudget deletes every use, of any key, expired at at. Each use is
// deleted once, so the work is proportional to what was added.
func pruneBudget(uses, exp *bolt.Bucket, at uint64) error {
	var old [][2][]byte
	c := exp.Cursor()
	for k, v := c.First(); k != nil && len(k) == 16 && binary.BigEndian.Uint64(k) <= at; k, v = c.Next() {
		old = append(old, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
	}
	for _, o := range old {
		if err := exp.Delete(o[0]); err != nil {
			return fmt.Errorf("prune budget: %w", mapErr(err))
		}
		if err := uses.Delete(o[1]); err != nil {
			return fmt.Errorf("prune budget: %w", mapErr(err))
		}
	}
	return nil
}
