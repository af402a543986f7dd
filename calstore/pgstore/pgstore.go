// Package pgstore is the PostgreSQL implementation of calstore.Store, for
// sites that run several imipd instances (two MX hosts, a standby) on one
// calendar: every instance opens the same database, and the database, not
// the process, serialises what must be serialised.
//
// # Concurrency
//
// A Write is one transaction at READ COMMITTED. Its first use of a user
// (by any address) locks that user's row (SELECT … FOR UPDATE), and the
// lock is held to commit: writers of one user are serialised across all
// instances, and every statement after the lock sees what the previous
// writer committed, so a once-only check (Tx.LogEntry) in a Write sees a
// copy of the message another instance applied first. The log's UNIQUE
// (user, key) is the backstop: an AddLog racing outside the lock waits
// for the other transaction and reports calstore.ErrExists, and Batch
// retries its function, which then sees the duplicate. The change counter
// (CTag, sync token) is a column of the user's row, advanced under that
// lock, so counter values commit in order per user. The outbox senders
// of all instances share the queue: a sender claims the due items it
// gets from OutboxDue in a Write (SELECT … FOR UPDATE SKIP LOCKED), moves
// their next attempt (the lease) and commits; a second sender claiming at
// the same moment skips the locked rows instead of waiting for them, and
// after the commit sees the moved time and leaves the items alone. An item
// read with OutboxItem in a Write is locked (FOR UPDATE). Budgets take a
// transaction-scoped advisory lock per key. A Read is a REPEATABLE READ
// READ ONLY transaction: one snapshot, no locks.
//
// Writes of different users run in parallel; two Writes that lock two
// users in opposite orders deadlock, and PostgreSQL aborts one (Write
// and Batch run it again). BatchUser (batch.go) groups the concurrent
// deliveries to one user into one transaction, so a big meeting's
// replies share the organizer's lock and a commit.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"imipd/calstore"
)

// Store is the PostgreSQL implementation of calstore.Store. It is safe for
// concurrent use, and any number of Stores, in any number of processes,
// may use one database at once.
type Store struct {
	pool     *pgxpool.Pool
	closed   atomic.Bool
	lastFail atomic.Pointer[failure]
	batch    batcher
}

var _ calstore.Store = (*Store)(nil)

// failure is a transaction that failed in the database (begin, commit).
type failure struct {
	at  time.Time
	err error
}

// migrateLock is the advisory lock key Open holds while it creates or
// migrates the schema ("imip" in ASCII).
const migrateLock = 0x696d6970

// budgetLockClass is the first key of the two-key advisory locks
// TakeBudget takes per budget key ("bdgt").
const budgetLockClass = 0x62646774

// addressLockClass is the first key of the advisory locks on addresses
// of users that do not exist yet ("addr").
const addressLockClass = 0x61646472

// errRetry, in an error's chain, asks Batch to run the function again.
// It prints as nothing.
var errRetry = retryMark{}

type retryMark struct{}

func (retryMark) Error() string { return "" }

// commitTimeout bounds COMMIT and ROLLBACK, which run without the
// caller's cancellation: a commit cut off half-way leaves the caller not
// knowing whether it happened.
const commitTimeout = 30 * time.Second

// Open connects to the database named by dsn (a libpq connection string
// or URL, as pgx reads it: a passfile parameter or PGPASSFILE names a
// password file; pool_max_conns and connect_timeout size and bound the
// pool), creates the tables in an empty database, migrates an older
// schema and refuses a newer one (calstore.ErrSchema). Several instances
// may Open one database at once; one of them migrates.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, fmt.Errorf("pgstore: invalid dsn: %w", calstore.ErrInvalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// migrate creates or migrates the schema under the advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(t pgx.Tx) error {
		if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
			return fmt.Errorf("pgstore: connect: %w", err)
		}
		var meta, users bool
		if err := t.QueryRow(ctx, `SELECT to_regclass('imipd_meta') IS NOT NULL, to_regclass('users') IS NOT NULL`).Scan(&meta, &users); err != nil {
			return fmt.Errorf("pgstore: read schema: %w", err)
		}
		v := 0
		switch {
		case meta:
			if err := t.QueryRow(ctx, `SELECT version FROM imipd_meta`).Scan(&v); err != nil {
				return fmt.Errorf("pgstore: read schema version: %w", err)
			}
		case users:
			return fmt.Errorf("%w: the database has a users table but no imipd_meta: not an imipd database", calstore.ErrSchema)
		default:
			if _, err := t.Exec(ctx, `CREATE TABLE imipd_meta (version int NOT NULL); INSERT INTO imipd_meta VALUES (0)`); err != nil {
				return fmt.Errorf("pgstore: create schema: %w", err)
			}
		}
		if v > SchemaVersion {
			return fmt.Errorf("%w: database has version %d, this program only knows up to %d", calstore.ErrSchema, v, SchemaVersion)
		}
		for ; v < SchemaVersion; v++ {
			if _, err := t.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("pgstore: migrate from schema version %d: %w", v, err)
			}
		}
		if _, err := t.Exec(ctx, `UPDATE imipd_meta SET version = $1`, SchemaVersion); err != nil {
			return fmt.Errorf("pgstore: write schema version: %w", err)
		}
		return nil
	})
}

// Read implements calstore.Store: one snapshot (REPEATABLE READ, READ
// ONLY), no locks.
func (s *Store) Read(ctx context.Context, fn func(calstore.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return calstore.ErrClosed
	}
	ses, err := acquire(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("pgstore: begin read: %w", ctxErr(ctx, err))
	}
	t := newTx(ctx, ses, false)
	defer func() {
		t.done = true
		end(ctx, ses)
	}()
	return fn(t)
}

// Write implements calstore.Store: one READ COMMITTED transaction, users
// locked as they are used (package doc). A transaction PostgreSQL aborted
// for a deadlock or a serialisation failure (40P01, 40001) is run again,
// up to maxTries times: the abort rolled back everything fn did, so fn
// runs as from the start (like Batch's, a fn with effects outside the
// transaction has them twice).
func (s *Store) Write(ctx context.Context, fn func(calstore.Tx) error) error {
	return s.retry(ctx, fn, aborted, false)
}

// retry runs fn in a transaction of its own (write) until it commits, or
// fails with an error again does not accept, or maxTries runs failed.
// batched is Batch's: tx.AddLog may report a key present at commit.
func (s *Store) retry(ctx context.Context, fn func(calstore.Tx) error, again func(error) bool, batched bool) error {
	var err error
	for try := range maxTries {
		if try > 0 {
			if werr := backoff(ctx, try); werr != nil {
				return err
			}
		}
		if err = s.write(ctx, fn, batched); !again(err) {
			return err
		}
	}
	return err
}

// backoff waits before the try-th run again of an aborted transaction, a
// few milliseconds growing with try and drawn at random: run again at
// once, the victim of a deadlock can take its first lock back before the
// transaction it lost to gets it (PostgreSQL's row locks do not queue
// fairly), and the two deadlock again. It returns ctx's error when ctx
// ends first.
func backoff(ctx context.Context, try int) error {
	d := time.Duration(try)*5*time.Millisecond + rand.N(5*time.Millisecond)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// write runs fn in one READ COMMITTED transaction and commits it; batched
// as for retry.
func (s *Store) write(ctx context.Context, fn func(calstore.Tx) error, batched bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return calstore.ErrClosed
	}
	ses, err := acquire(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		err = fmt.Errorf("pgstore: begin write: %w", ctxErr(ctx, err))
		s.note(err)
		return err
	}
	t := newTx(ctx, ses, true)
	t.batched = batched
	defer func() {
		t.done = true
		// Also on a panic in fn: nothing fn did stays.
		end(ctx, ses)
	}()
	if err := fn(t); err != nil {
		if ses.broken() {
			s.note(err) // the server away, the connection lost
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.done = true
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := ses.commit(cctx); err != nil {
		err = fmt.Errorf("pgstore: commit: %w", mapErr(err))
		s.note(err)
		return err
	}
	s.note(nil)
	return nil
}

// maxTries bounds the runs of a function PostgreSQL aborted for a
// deadlock or a serialisation failure (Write, Batch), or, in Batch, for a
// once-only key another transaction committed first.
const maxTries = 3

// aborted reports whether PostgreSQL aborted the transaction of err for a
// deadlock (40P01) or a serialisation failure (40001): run again, it may
// commit.
func aborted(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// retryable reports whether Batch runs the function of err again: the
// transaction was aborted, or a once-only key was committed first by
// another transaction (23505, or found by AddLog rather than by the
// function's own check; the function's check then sees it).
func retryable(err error) bool {
	if aborted(err) || errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Close implements calstore.Store: it waits for running transactions and
// closes the pool. Read and Write then return calstore.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// Fault reports whether the last write transaction failed in the database
// itself (the server away, a connection lost, a full disk); the next
// write that commits clears it, and so does Ready's test write.
func (s *Store) Fault() error {
	if f := s.lastFail.Load(); f != nil {
		return fmt.Errorf("store writes failing since %s: %w", f.at.UTC().Format(time.RFC3339), f.err)
	}
	return nil
}

// Ready is the readiness check of /healthz (filter.StoreReady): nil when
// the database answers and, after a write failed (Fault), takes writes
// again. While a fault is recorded it tries a write of its own, a
// transaction that takes a transaction ID and commits (so a server that
// answers but cannot write, a full disk, a standby, stays unready); its
// commit clears the fault, so an instance without mail turns ready when
// the database is back. Else it pings the database.
func (s *Store) Ready(ctx context.Context) error {
	fault := s.Fault()
	if fault == nil {
		return s.Ping(ctx)
	}
	err := s.write(ctx, func(t calstore.Tx) error {
		_, err := t.(*tx).exec("test write", `SELECT txid_current()`)
		return err
	}, false)
	if err != nil {
		return fmt.Errorf("%w (a test write: %w)", fault, err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return calstore.ErrClosed
	}
	return s.pool.Ping(ctx)
}

func (s *Store) note(err error) {
	switch {
	case err == nil:
		if s.lastFail.Load() != nil {
			s.lastFail.Store(nil)
		}
	case s.lastFail.Load() == nil:
		s.lastFail.Store(&failure{at: time.Now(), err: err})
	}
}

// end rolls ses back unless it ended, without the caller's cancellation
// (a cancelled context would leave the connection's state unknown).
func end(ctx context.Context, ses *session) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	ses.rollback(cctx)
}

// ctxErr returns ctx's error when the context ended, else err.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return mapErr(err)
}

// mapErr maps the database's unique violations to the calstore errors
// they stand for; the PostgreSQL error stays in the chain.
func mapErr(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return err
	}
	switch pe.ConstraintName {
	case "log_once":
		return fmt.Errorf("%w: %w", calstore.ErrExists, err)
	case "addresses_pkey", "users_address_key":
		return fmt.Errorf("%w: %w", calstore.ErrConflict, err)
	}
	return err
}
