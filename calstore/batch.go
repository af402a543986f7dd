package calstore

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// batcher implements group commit for DB.Batch.
type batcher struct {
	mu      sync.Mutex
	queue   []*batchCall
	running bool
}

type batchCall struct {
	ctx  context.Context
	fn   func(Tx) error
	done chan batchResult
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
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.closed.Load() {
		return ErrClosed
	}
	if db.readOnly {
		return fmt.Errorf("batch: %w", ErrReadOnly)
	}
	c := &batchCall{ctx: ctx, fn: fn, done: make(chan batchResult, 1)}
	b := &db.batch
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	if lead {
		// Nobody is committing: this caller commits its own group (and
		// whatever joined it meanwhile) without a hand-over to another
		// goroutine, then leaves the calls that queued up during its
		// commit to a loop of their own.
		db.lead()
	}
	r := <-c.done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// lead runs one group on the caller's goroutine, then leaves the calls
// that queued meanwhile to batchLoop.
func (db *DB) lead() {
	if db.next() {
		go db.batchLoop()
	}
}

// batchLoop commits queued calls group by group until the queue is empty.
func (db *DB) batchLoop() {
	for db.next() {
	}
}

// next commits the queued calls as one group and reports whether more
// have queued since; when none have, the batcher stops running (the next
// Batch call leads).
func (db *DB) next() bool {
	b := &db.batch
	b.mu.Lock()
	calls := b.queue
	b.queue = nil
	b.mu.Unlock()
	db.runGroup(calls)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.running = false
		return false
	}
	return true
}

// runGroup runs calls in one transaction; a failing call is answered with
// its error and the others are run again without it.
func (db *DB) runGroup(calls []*batchCall) {
	defer faultsAsPanics()()
	for len(calls) > 0 {
		if db.closed.Load() {
			for _, c := range calls {
				c.done <- batchResult{err: ErrClosed}
			}
			return
		}
		btx, err := db.bdb.Begin(true)
		if err != nil {
			err = fmt.Errorf("begin write: %w", mapErr(err))
			db.noteWrite(err)
			for _, c := range calls {
				c.done <- batchResult{err: err}
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
			rollback(btx)
			calls[failed].done <- res
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		if err := commit(btx); err != nil {
			err = fmt.Errorf("commit: %w", mapErr(err))
			db.noteWrite(err)
			for _, c := range calls {
				c.done <- batchResult{err: err}
			}
			return
		}
		db.noteWrite(nil)
		for _, c := range calls {
			c.done <- batchResult{}
		}
		return
	}
}

// runOne runs one call's fn. A panic of bbolt (a damaged page) is the
// call's error, ErrCorrupt; any other panic goes to the caller.
func (db *DB) runOne(btx *bolt.Tx, fn func(Tx) error) (r batchResult) {
	t := &tx{btx: btx, users: &db.users, writable: true}
	ok := false
	defer func() {
		t.done = true
		if ok {
			return
		}
		damaged := fromBbolt()
		if p := recover(); p != nil {
			r = batchResult{panic: p}
			if damaged {
				r = batchResult{err: corruptErr(p)}
				db.noteWrite(r.err)
			}
		}
	}()
	r = batchResult{err: fn(t)}
	ok = true
	return r
}
