package calstore

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// testBeforeCommit, set by tests only, runs after a group's functions and
// before its commit.
var testBeforeCommit func()

var _ DecidedBatcher = (*DB)(nil)

// batcher implements group commit for DB.Batch.
type batcher struct {
	mu      sync.Mutex
	queue   []*batchCall
	running bool
}

type batchCall struct {
	ctx     context.Context
	fn      func(Tx) error
	done    chan batchResult
	decided chan struct{} // BatchDecided: closed when the group's commit begins
}

type batchResult struct {
	err   error
	panic any
}

// Batch runs fn in a write transaction shared with other concurrent Batch
// calls: one commit and one fsync for all of them (group commit). A lone
// call starts at once (no collection delay: the calls that arrive while a
// transaction commits form the next one). The effect of each fn is atomic
// and durable when Batch returns nil, exactly as with Write.
//
// fn may run more than once: when another fn of the same group fails, the
// group's transaction is rolled back and the others run again in a new one.
// So fn must not have effects outside the transaction that are not safe to
// repeat (set results from the last run only). A panic in fn is passed to
// its caller, and the rest of the group is retried without it.
func (db *DB) Batch(ctx context.Context, fn func(Tx) error) error {
	c, err := db.enqueue(ctx, fn, false)
	if err != nil {
		return err
	}
	r := <-c.done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// BatchDecided is Batch that returns as soon as fn's run is final: fn and
// the rest of its group ran without error in a transaction that is about
// to commit. The caller may act on what fn decided (tag and forward a
// message) while the commit is written and synced; wait returns the
// commit's outcome (nil: fn's effect is durable, as when Batch returns
// nil) and must be called before the effect is reported as done. An error
// or a panic in fn, or any failure before the commit, is returned (or
// raised) by BatchDecided itself, and wait is nil.
func (db *DB) BatchDecided(ctx context.Context, fn func(Tx) error) (wait func() error, err error) {
	c, err := db.enqueue(ctx, fn, true)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.decided:
		return func() error { return (<-c.done).err }, nil
	case r := <-c.done: // failed before its group committed
		if r.panic != nil {
			panic(r.panic)
		}
		if r.err == nil { // a group of one is committed before the select sees decided
			return func() error { return nil }, nil
		}
		return nil, r.err
	}
}

// enqueue queues a call. A Batch call that finds nobody committing commits
// its own group on its goroutine (no hand-over: the calls that arrive
// meanwhile form the next group, run by batchLoop); a BatchDecided call
// leaves its group to batchLoop, so that it can return before the commit.
func (db *DB) enqueue(ctx context.Context, fn func(Tx) error, decided bool) (*batchCall, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if db.readOnly {
		return nil, fmt.Errorf("batch: %w", ErrReadOnly)
	}
	c := &batchCall{ctx: ctx, fn: fn, done: make(chan batchResult, 1)}
	if decided {
		c.decided = make(chan struct{})
	}
	b := &db.batch
	b.mu.Lock()
	b.queue = append(b.queue, c)
	start := !b.running
	b.running = true
	b.mu.Unlock()
	switch {
	case start && decided:
		go db.batchLoop()
	case start:
		db.lead()
	}
	return c, nil
}

// lead runs one group as the caller's, then hands a non-empty queue to
// batchLoop.
func (db *DB) lead() {
	b := &db.batch
	b.mu.Lock()
	calls := b.queue
	b.queue = nil
	b.mu.Unlock()
	db.runGroup(calls)
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running = false
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go db.batchLoop()
}

// batchLoop commits queued calls group by group until the queue is empty.
func (db *DB) batchLoop() {
	b := &db.batch
	for {
		b.mu.Lock()
		calls := b.queue
		b.queue = nil
		if len(calls) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		db.runGroup(calls)
	}
}

// runGroup runs calls in one transaction; a failing call is answered with
// its error and the others are run again without it.
func (db *DB) runGroup(calls []*batchCall) {
	for len(calls) > 0 {
		if db.closed.Load() {
			for _, c := range calls {
				c.done <- batchResult{err: ErrClosed}
			}
			return
		}
		btx, err := db.bdb.Begin(true)
		if err != nil {
			for _, c := range calls {
				c.done <- batchResult{err: fmt.Errorf("begin write: %w", mapErr(err))}
			}
			return
		}
		failed := -1
		var res batchResult
		for i, c := range calls {
			if err := c.ctx.Err(); err != nil {
				failed, res = i, batchResult{err: err}
				break
			}
			if r := db.runOne(btx, c.fn); r.err != nil || r.panic != nil {
				failed, res = i, r
				break
			}
		}
		if failed >= 0 {
			_ = btx.Rollback()
			calls[failed].done <- res
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, c := range calls {
			if c.decided != nil {
				close(c.decided)
			}
		}
		if testBeforeCommit != nil {
			testBeforeCommit()
		}
		if err := btx.Commit(); err != nil {
			for _, c := range calls {
				c.done <- batchResult{err: fmt.Errorf("commit: %w", mapErr(err))}
			}
			return
		}
		for _, c := range calls {
			c.done <- batchResult{}
		}
		return
	}
}

func (db *DB) runOne(btx *bolt.Tx, fn func(Tx) error) (r batchResult) {
	t := &tx{btx: btx, users: &db.users, writable: true}
	defer func() {
		t.done = true
		if p := recover(); p != nil {
			r = batchResult{panic: p}
		}
	}()
	return batchResult{err: fn(t)}
}
