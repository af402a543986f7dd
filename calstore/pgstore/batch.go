package pgstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"imipd/address"
	"imipd/calstore"
)

// Per-user batching (BatchUser): the calls for one user that arrive while
// a group of that user runs form the next group, which runs in one
// transaction, each call's function inside a savepoint of its own. A
// function that fails (or panics) is rolled back to its savepoint alone;
// the others commit together, with one commit (one WAL flush) for all. So
// the replies to a big meeting, which all lock the organizer's row, take
// the lock once per group, not once per message. Groups of different users
// run in parallel, each on a connection of its own. (Groups mixing users
// would lock users in different orders in different groups, and
// deadlock.)

// maxGroup bounds the calls of one group (how long the first call waits
// for the last).
const maxGroup = 16

// groupTimeout bounds a group's statements and commit. A caller's own
// context is checked before and after its function, not inside the
// statements: its cancellation would cut the connection of the group.
const groupTimeout = 2 * commitTimeout

type batcher struct {
	mu     sync.Mutex
	queues map[string][]*batchCall // by user; a key is present while its loop runs
}

type batchCall struct {
	user  string
	ctx   context.Context
	fn    func(calstore.Tx) error
	tries int
	done  chan batchResult
}

type batchResult struct {
	err   error
	panic any
}

// Batch implements calstore.Store: a Write of its own, run again when
// PostgreSQL aborted it for a deadlock, a serialisation failure or a
// once-only key another transaction committed first (its check then sees
// the entry). Callers that know the user use BatchUser.
func (s *Store) Batch(ctx context.Context, fn func(calstore.Tx) error) error {
	return s.retry(ctx, fn, retryable, true)
}

// BatchUser is Batch for a function that writes the data of one user (by
// any address; others only incidentally): it shares a transaction with
// the concurrent calls for the same user (above). fn may run more than
// once, as with Batch.
func (s *Store) BatchUser(ctx context.Context, user string, fn func(calstore.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return calstore.ErrClosed
	}
	c := &batchCall{user: address.Normalize(user), ctx: ctx, fn: fn, done: make(chan batchResult, 1)}
	s.enqueue(c)
	r := <-c.done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// enqueue queues calls by user and starts the loop of a user that has
// none running.
func (s *Store) enqueue(cs ...*batchCall) {
	b := &s.batch
	var start []string
	b.mu.Lock()
	if b.queues == nil {
		b.queues = map[string][]*batchCall{}
	}
	for _, c := range cs {
		q, running := b.queues[c.user]
		if !running {
			start = append(start, c.user)
		}
		b.queues[c.user] = append(q, c)
	}
	b.mu.Unlock()
	for _, u := range start {
		go s.batchLoop(u)
	}
}

// batchLoop runs groups of user's calls until none are queued.
func (s *Store) batchLoop(user string) {
	b := &s.batch
	for {
		b.mu.Lock()
		q := b.queues[user]
		n := min(len(q), maxGroup)
		if n == 0 {
			delete(b.queues, user)
			b.mu.Unlock()
			return
		}
		calls := q[:n:n]
		b.queues[user] = q[n:]
		b.mu.Unlock()
		s.runGroup(calls)
	}
}

// runGroup runs calls in one transaction, each in a savepoint when
// there are several, answers each, and queues again those to retry.
func (s *Store) runGroup(calls []*batchCall) {
	if s.closed.Load() {
		for _, c := range calls {
			c.done <- batchResult{err: calstore.ErrClosed}
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	ses, err := acquire(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		err = fmt.Errorf("pgstore: begin write: %w", mapErr(err))
		s.note(err)
		for _, c := range calls {
			c.done <- batchResult{err: err}
		}
		return
	}
	defer ses.rollback(ctx) // unless committed
	// A lone call needs no savepoint: when it fails, nothing commits.
	savepoints := len(calls) > 1
	results := make([]batchResult, len(calls))
	ok := make([]bool, len(calls))      // ran without error: commits with the group
	retried := make([]bool, len(calls)) // queued again, answered later
	var retry []*batchCall
	anyOK := false
	for i, c := range calls {
		if ses.broken() {
			results[i] = batchResult{err: fmt.Errorf("pgstore: connection lost: %w", pgx.ErrTxClosed)}
			continue
		}
		if err := c.ctx.Err(); err != nil {
			results[i] = batchResult{err: err}
			continue
		}
		mark := 0
		if savepoints {
			mark = ses.savepoint()
		}
		r := runCall(ctx, ses, c)
		if r.err == nil && r.panic == nil {
			r.err = c.ctx.Err() // cancelled while fn ran: rolled back
		}
		if r.err == nil && r.panic == nil && savepoints {
			if err := ses.releaseSavepoint(ctx, mark); err != nil {
				r.err = fmt.Errorf("pgstore: %w", mapErr(err))
			}
		}
		if r.err != nil || r.panic != nil {
			if r.err != nil && ses.broken() {
				s.note(r.err)
			}
			if savepoints {
				ses.rollbackTo(mark)
			}
			if r.panic == nil && retryable(r.err) && c.tries+1 < maxTries {
				c.tries++
				retry, retried[i] = append(retry, c), true
				continue
			}
			results[i] = r
			continue
		}
		ok[i], anyOK = true, true
	}
	if anyOK {
		if err := ses.commit(ctx); err != nil {
			err = fmt.Errorf("pgstore: commit: %w", mapErr(err))
			s.note(err)
			for i, c := range calls {
				if !ok[i] {
					continue
				}
				if retryable(err) && c.tries+1 < maxTries {
					c.tries++
					retry, retried[i] = append(retry, c), true
					continue
				}
				results[i] = batchResult{err: err}
			}
		} else {
			s.note(nil)
		}
	}
	for i, c := range calls {
		if !retried[i] {
			c.done <- results[i]
		}
	}
	if len(retry) > 0 {
		s.enqueue(retry...)
	}
}

// runCall runs one call's function in the group's transaction; a panic
// is returned for the caller's goroutine.
func runCall(ctx context.Context, ses *session, c *batchCall) (r batchResult) {
	t := newTx(ctx, ses, true)
	t.batched = true
	defer func() {
		t.done = true
		if p := recover(); p != nil {
			r = batchResult{panic: p}
		}
	}()
	return batchResult{err: c.fn(t)}
}
