package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Round trips. A delivery is a few short statements, and on a machine
// where imipd and the server share the cores each round trip costs both
// sides a wake-up (BenchmarkStoreReply16 in filter). So a session sends
// what needs no answer of its own (BEGIN, SAVEPOINT, RELEASE, and writes
// whose only answer is an error: queue) in one pipeline (a pgx.Batch)
// with the next statement whose answer is needed, or with COMMIT. A
// queued statement's error is returned by the statement it went out
// with, or by commit: either way the transaction fails, so "nothing
// changed" holds. PostgreSQL runs a pipeline's statements in order and
// skips the rest after an error.

// session is one transaction on a connection of the pool, begun lazily:
// BEGIN goes out with the first statement, and a transaction that sent
// none ends without a round trip.
type session struct {
	conn   *pgxpool.Conn
	queued []queued
	sent   int  // statements sent so far
	begun  bool // BEGIN was sent
	closed bool // ended: conn is back in the pool
}

// queued is a statement that goes out with the next one.
type queued struct {
	what, sql string
	args      []any
	begin     bool // BEGIN
	control   bool // SAVEPOINT, RELEASE, ROLLBACK TO: changes nothing
}

// beginSQL starts a transaction as opts says.
func beginSQL(opts pgx.TxOptions) string {
	sql := "BEGIN ISOLATION LEVEL " + string(opts.IsoLevel)
	if opts.AccessMode != "" {
		sql += " " + string(opts.AccessMode)
	}
	return sql
}

// acquire takes a connection of the pool for a transaction as opts says.
func acquire(ctx context.Context, pool *pgxpool.Pool, opts pgx.TxOptions) (*session, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &session{conn: c, queued: []queued{{what: "begin", sql: beginSQL(opts), begin: true}}}, nil
}

// queue adds a statement whose only answer is an error to those that go
// out with the next statement.
func (s *session) queue(what, sql string, args ...any) {
	s.queued = append(s.queued, queued{what: what, sql: sql, args: args})
}

// send sends the queued statements and then b's in one pipeline, reads
// the queued ones' answers and returns the results of b's.
func (s *session) send(ctx context.Context, b *pgx.Batch) (pgx.BatchResults, error) {
	if s.closed {
		return nil, pgx.ErrTxClosed
	}
	qs := s.queued
	s.queued = nil
	all := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(qs)+b.Len())}
	for _, q := range qs {
		all.Queue(q.sql, q.args...)
		s.begun = s.begun || q.begin
	}
	s.sent += len(qs) + b.Len()
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	br := s.conn.SendBatch(ctx, all)
	for _, q := range qs {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("pgstore: %s: %w", q.what, err)
		}
	}
	return br, nil
}

// Exec runs a statement, after the queued ones.
func (s *session) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(s.queued) == 0 && !s.closed {
		return s.conn.Exec(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br, err := s.send(ctx, &b)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr // else the same error again
	}
	return tag, err
}

// Query runs a query, after the queued statements.
func (s *session) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if len(s.queued) == 0 && !s.closed {
		return s.conn.Query(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br, err := s.send(ctx, &b)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return batchRows{rows, br}, nil
}

// QueryRow runs a query of one row, after the queued statements.
func (s *session) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if len(s.queued) == 0 && !s.closed {
		return s.conn.QueryRow(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br, err := s.send(ctx, &b)
	if err != nil {
		return errRow{err}
	}
	return batchRow{br.QueryRow(), br}
}

// SendBatch sends b's statements after the queued ones. The results are
// b's.
func (s *session) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	br, err := s.send(ctx, b)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return br
}

// commit sends the queued statements and COMMIT. A transaction that sent
// nothing has nothing to commit.
func (s *session) commit(ctx context.Context) error {
	if s.closed {
		return pgx.ErrTxClosed
	}
	if !s.begun && onlyBegin(s.queued) {
		s.release()
		return nil
	}
	tag, err := s.Exec(ctx, "COMMIT")
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback // the transaction had failed
	}
	if err != nil && s.conn.Conn().PgConn().TxStatus() != 'I' {
		// A queued statement failed and COMMIT was skipped: end the
		// transaction, so the pool keeps the connection.
		s.queued = nil
		s.rollback(ctx)
		return err
	}
	s.release()
	return err
}

// onlyBegin reports whether qs holds nothing but BEGIN, SAVEPOINT and
// RELEASE: a transaction that wrote nothing.
func onlyBegin(qs []queued) bool {
	for _, q := range qs {
		if !q.begin && !q.control {
			return false
		}
	}
	return true
}

// savepoint queues a savepoint and returns its mark for release or
// rollbackTo.
func (s *session) savepoint() int {
	s.queued = append(s.queued, queued{what: "savepoint", sql: "SAVEPOINT call", control: true})
	return s.sent + len(s.queued) - 1
}

// unsent returns the queue index of the statement at mark, or -1 when
// it was sent.
func (s *session) unsent(mark int) int {
	if i := mark - s.sent; i >= 0 {
		return i
	}
	return -1
}

// releaseSavepoint keeps what was done since the savepoint at mark, and
// sends it: a call of a group is answered only once its statements ran.
func (s *session) releaseSavepoint(ctx context.Context, mark int) error {
	if i := s.unsent(mark); i >= 0 && i == len(s.queued)-1 {
		s.queued = s.queued[:i] // nothing done since: nothing to release
		return nil
	}
	_, err := s.Exec(ctx, "RELEASE SAVEPOINT call")
	return err
}

// rollbackTo undoes what was done since the savepoint at mark: the
// statements still queued since it are dropped, those sent rolled back.
func (s *session) rollbackTo(mark int) {
	if i := s.unsent(mark); i >= 0 {
		s.queued = s.queued[:i]
		return
	}
	// The savepoint was sent, and every statement queued before it: what
	// is queued is the call's.
	s.queued = append(s.queued[:0], queued{what: "rollback to savepoint", sql: "ROLLBACK TO SAVEPOINT call", control: true})
}

// rollback ends the transaction without its changes and gives the
// connection back; a connection whose rollback failed, or that is not
// idle after it, is closed by the pool.
func (s *session) rollback(ctx context.Context) {
	if s.closed {
		return
	}
	s.queued = nil
	if s.begun {
		_, _ = s.conn.Exec(ctx, "ROLLBACK") // on an error the pool drops the connection
	}
	s.release()
}

// release gives the connection back to the pool.
func (s *session) release() {
	s.queued = nil
	s.closed = true
	s.conn.Release()
}

// broken reports whether the connection was lost (the server away, the
// network cut): pgx closes a connection it cannot resynchronise.
func (s *session) broken() bool { return s.conn.Conn().IsClosed() }

// batchRows are a query's rows in a pipeline: closing them finishes the
// pipeline.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r batchRows) Close() {
	r.Rows.Close()
	r.br.Close()
}

// batchRow is a query's row in a pipeline: scanning it finishes the
// pipeline.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
