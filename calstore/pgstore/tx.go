package pgstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"imipd/address"
	"imipd/calstore"
)

// tx implements calstore.Tx on a pgx transaction.
type tx struct {
	ctx      context.Context
	pt       *session
	writable bool
	done     bool
	// batched: the function runs in Batch or BatchUser, which run it
	// again for a once-only key present (retryable), so AddLog may leave
	// finding it to the statements that follow, COMMIT at the latest.
	batched bool
	// users caches resolved addresses for the transaction: in a Write the
	// row is locked, in a Read the snapshot does not move; PutUser and
	// DeleteUser empty it. changes holds the change counters of the users
	// resolved, by id.
	users   map[string]userRef
	changes map[int64]int64
}

// userRef is a resolved user: its row id, primary address and record.
type userRef struct {
	id      int64
	primary string
	record  []byte
}

var _ calstore.Tx = (*tx)(nil)

func newTx(ctx context.Context, pt *session, writable bool) *tx {
	return &tx{ctx: ctx, pt: pt, writable: writable}
}

func (t *tx) check(write bool) error {
	if t.done {
		return fmt.Errorf("%w: transaction used after its function returned", calstore.ErrClosed)
	}
	if write && !t.writable {
		return fmt.Errorf("%w: write in a Read transaction", calstore.ErrReadOnly)
	}
	return nil
}

// dbErr wraps a database error with what was being done.
func (t *tx) dbErr(what string, err error) error {
	return fmt.Errorf("pgstore: %s: %w", what, ctxErr(t.ctx, err))
}

func (t *tx) exec(what, sql string, args ...any) (int64, error) {
	tag, err := t.pt.Exec(t.ctx, sql, args...)
	if err != nil {
		return 0, t.dbErr(what, err)
	}
	return tag.RowsAffected(), nil
}

// list runs a query of one bytea column and returns the values.
func (t *tx) list(what, sql string, args ...any) ([][]byte, error) {
	rows, err := t.pt.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.dbErr(what, err)
	}
	l, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, t.dbErr(what, err)
	}
	return l, nil
}

func decode(what string, buf []byte, v any) error {
	if err := json.Unmarshal(buf, v); err != nil {
		return fmt.Errorf("%s: decode stored value: %w", what, err)
	}
	return nil
}

// user resolves any address of a user; in a Write it locks the user's
// row until commit (package doc).
func (t *tx) user(addr string) (userRef, error) {
	r, _, err := t.userAlso(addr, nil)
	return r, err
}

// also is a query that goes out with a user's resolution (userAlso) in
// one round trip. Its $1 is the user's address: a query naming the user
// by id would have to wait for the answer.
type also struct {
	sql  string
	args []any // $2…
	scan func(pgx.Row) error
}

// userAlso is user, and when the user is not resolved yet in the
// transaction, also runs q after the resolution, in the same round trip
// (in a Write after the user's lock is taken, so it sees what the last
// writer committed). ran tells whether q ran; if not, the caller asks
// with the user's id.
func (t *tx) userAlso(addr string, q *also) (r userRef, ran bool, err error) {
	a := address.Normalize(addr)
	if a == "" {
		return userRef{}, false, fmt.Errorf("%w: empty address", calstore.ErrInvalid)
	}
	if r, ok := t.users[a]; ok {
		return r, false, nil
	}
	sql := `SELECT u.id, u.address, u.record, u.changes FROM addresses a JOIN users u ON u.id = a.user_id WHERE a.address = $1`
	if t.writable {
		sql += ` FOR UPDATE OF u`
	}
	var primary []byte
	var changes int64
	var b pgx.Batch
	b.Queue(sql, []byte(a))
	if q != nil {
		b.Queue(q.sql, append([]any{[]byte(a)}, q.args...)...)
	}
	br := t.pt.SendBatch(t.ctx, &b)
	err = br.QueryRow().Scan(&r.id, &primary, &r.record, &changes)
	if err == nil && q != nil {
		err, ran = q.scan(br.QueryRow()), true
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, pgx.ErrNoRows) && t.writable {
		// No row to lock: lock the address instead, as PutUser does
		// before it creates a user, and look again. A Write that found
		// no user keeps it that way until it ends, so a once-only check
		// on a user another instance is creating waits for that one.
		if err := t.lockAddress(a); err != nil {
			return userRef{}, false, err
		}
		err = t.pt.QueryRow(t.ctx, sql, []byte(a)).Scan(&r.id, &primary, &r.record, &changes)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return userRef{}, false, fmt.Errorf("%w: user %s", calstore.ErrNotFound, a)
	} else if err != nil {
		return userRef{}, false, t.dbErr("user "+a, err)
	}
	r.primary = string(primary)
	if t.users == nil {
		t.users = map[string]userRef{}
	}
	if t.changes == nil {
		t.changes = map[int64]int64{}
	}
	t.users[a] = r
	// The counter does not move under the lock (Write) or in the snapshot
	// (Read) but by this transaction's bump.
	t.changes[r.id] = changes
	return r, ran, nil
}

// lockAddress takes the transaction's advisory lock on an address (held
// to commit): the lock of a user that does not exist yet.
func (t *tx) lockAddress(a string) error {
	h := fnv.New32a()
	h.Write([]byte(a))
	if _, err := t.pt.Exec(t.ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(addressLockClass), int32(h.Sum32())); err != nil {
		return t.dbErr("lock address "+a, err)
	}
	return nil
}

// User implements calstore.Tx.
func (t *tx) User(address string) (calstore.User, error) {
	if err := t.check(false); err != nil {
		return calstore.User{}, err
	}
	r, err := t.user(address)
	if err != nil {
		return calstore.User{}, err
	}
	var u calstore.User
	return u, decode("user "+r.primary, r.record, &u)
}

// Users implements calstore.Tx.
func (t *tx) Users() ([]calstore.User, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	recs, err := t.list("users", `SELECT record FROM users ORDER BY address`)
	if err != nil {
		return nil, err
	}
	var l []calstore.User // nil for none, as bbolt's
	for _, rec := range recs {
		var u calstore.User
		if err := decode("user", rec, &u); err != nil {
			return nil, err
		}
		l = append(l, u)
	}
	return l, nil
}

// PutUser implements calstore.Tx.
func (t *tx) PutUser(u calstore.User) error {
	if err := t.check(true); err != nil {
		return err
	}
	u, err := calstore.NormalizeUser(u)
	if err != nil {
		return err
	}
	t.users = nil
	addrs := make([][]byte, 0, 1+len(u.Aliases))
	for _, a := range slices.Sorted(slices.Values(u.Addresses())) {
		if err := t.lockAddress(a); err != nil {
			return err
		}
		addrs = append(addrs, []byte(a))
	}
	// Whose are the addresses now?
	rows, err := t.pt.Query(t.ctx, `SELECT a.address, u.address FROM addresses a JOIN users u ON u.id = a.user_id WHERE a.address = ANY($1)`, addrs)
	if err != nil {
		return t.dbErr("put user "+u.Address, err)
	}
	owned := map[string]bool{}
	var conflict error
	for rows.Next() {
		var a, owner []byte
		if err := rows.Scan(&a, &owner); err != nil {
			rows.Close()
			return t.dbErr("put user "+u.Address, err)
		}
		if string(owner) != u.Address && conflict == nil {
			conflict = fmt.Errorf("%w: %s is an address of %s", calstore.ErrConflict, a, owner)
		}
		owned[string(a)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t.dbErr("put user "+u.Address, err)
	}
	if conflict != nil {
		return conflict
	}

	var id int64
	var old []byte
	err = t.pt.QueryRow(t.ctx, `SELECT id, record FROM users WHERE address = $1 FOR UPDATE`, []byte(u.Address)).Scan(&id, &old)
	switch {
	case err == nil:
		var prev calstore.User
		if err := decode("user "+u.Address, old, &prev); err != nil {
			return err
		}
		if u.Created.IsZero() {
			u.Created = prev.Created
		}
	case errors.Is(err, pgx.ErrNoRows):
		if u.Created.IsZero() {
			u.Created = calstore.Now()
		}
		id = 0
	default:
		return t.dbErr("put user "+u.Address, err)
	}
	rec, err := calstore.Encode(u)
	if err != nil {
		return err
	}
	if id == 0 {
		err = t.pt.QueryRow(t.ctx, `INSERT INTO users (address, record) VALUES ($1, $2) RETURNING id`, []byte(u.Address), rec).Scan(&id)
		if err != nil {
			return t.dbErr("create user "+u.Address, err)
		}
	} else {
		if _, err := t.exec("put user "+u.Address, `UPDATE users SET record = $2 WHERE id = $1`, id, rec); err != nil {
			return err
		}
		if _, err := t.exec("put user "+u.Address, `DELETE FROM addresses WHERE user_id = $1 AND NOT address = ANY($2)`, id, addrs); err != nil {
			return err
		}
	}
	var add [][]byte
	for _, a := range addrs {
		if !owned[string(a)] {
			add = append(add, a)
		}
	}
	if len(add) > 0 {
		if _, err := t.exec("index addresses of "+u.Address, `INSERT INTO addresses (address, user_id) SELECT unnest($1::bytea[]), $2`, add, id); err != nil {
			return err
		}
	}
	return nil
}

// DeleteUser implements calstore.Tx: the user's row goes, and with it
// (ON DELETE CASCADE) its addresses, events, history, log, pending items
// and contacts; outbox items stay.
func (t *tx) DeleteUser(address string) error {
	if err := t.check(true); err != nil {
		return err
	}
	r, err := t.user(address)
	if err != nil {
		return err
	}
	t.users = nil
	_, err = t.exec("delete user "+r.primary, `DELETE FROM users WHERE id = $1`, r.id)
	return err
}

// Event implements calstore.Tx.
func (t *tx) Event(user, uid string) (calstore.Event, error) {
	if err := t.check(false); err != nil {
		return calstore.Event{}, err
	}
	r, err := t.user(user)
	if err != nil {
		return calstore.Event{}, err
	}
	var buf []byte
	err = t.pt.QueryRow(t.ctx, `SELECT data FROM events WHERE user_id = $1 AND uid = $2`, r.id, []byte(uid)).Scan(&buf)
	if errors.Is(err, pgx.ErrNoRows) {
		return calstore.Event{}, fmt.Errorf("%w: event %q of %s", calstore.ErrNotFound, uid, r.primary)
	} else if err != nil {
		return calstore.Event{}, t.dbErr(fmt.Sprintf("event %q of %s", uid, r.primary), err)
	}
	var ev calstore.Event
	if err := calstore.DecodeEvent(buf, &ev); err != nil {
		return calstore.Event{}, fmt.Errorf("event %q of %s: %w", uid, r.primary, err)
	}
	return ev, nil
}

// Events implements calstore.Tx.
func (t *tx) Events(user string) ([]calstore.Event, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	r, err := t.user(user)
	if err != nil {
		return nil, err
	}
	bufs, err := t.list("events of "+r.primary, `SELECT data FROM events WHERE user_id = $1 ORDER BY uid`, r.id)
	if err != nil {
		return nil, err
	}
	var l []calstore.Event
	for _, buf := range bufs {
		var ev calstore.Event
		if err := calstore.DecodeEvent(buf, &ev); err != nil {
			return nil, fmt.Errorf("event of %s: %w", r.primary, err)
		}
		l = append(l, ev)
	}
	return l, nil
}

// bump advances the user's change counter (under the row lock) and
// returns the new value. The update goes out with the next statement.
func (t *tx) bump(r userRef) uint64 {
	n := t.changes[r.id] + 1
	t.changes[r.id] = n
	t.pt.queue("change counter of "+r.primary, `UPDATE users SET changes = $2 WHERE id = $1`, r.id, n)
	return uint64(n)
}

// PutEvent implements calstore.Tx.
func (t *tx) PutEvent(user string, ev calstore.Event) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := calstore.CheckUID(ev.UID); err != nil {
		return err
	}
	r, err := t.user(user)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("put event %q of %s", ev.UID, r.primary)
	add := ev.History
	ev.History = nil
	if ev.Updated.IsZero() {
		ev.Updated = calstore.Now()
	}
	ev.Change = t.bump(r)
	buf, err := calstore.EncodeEvent(ev)
	if err != nil {
		return err
	}
	// The rest goes out with the next statement (session.go).
	uid := []byte(ev.UID)
	if len(add) > 0 {
		entries := make([][]byte, 0, len(add))
		for _, h := range add {
			if h.Time.IsZero() {
				h.Time = calstore.Now()
			}
			hb, err := calstore.Encode(h)
			if err != nil {
				return err
			}
			entries = append(entries, hb)
		}
		t.pt.queue(what, `INSERT INTO history (user_id, uid, entry) SELECT $1, $2, unnest($3::bytea[])`, r.id, uid, entries)
		t.pt.queue(what, `DELETE FROM history WHERE user_id = $1 AND uid = $2 AND id <= (
			SELECT id FROM history WHERE user_id = $1 AND uid = $2 ORDER BY id DESC OFFSET $3 LIMIT 1)`,
			r.id, uid, calstore.MaxHistory)
	}
	t.pt.queue(what, `DELETE FROM deleted WHERE user_id = $1 AND uid = $2`, r.id, uid)
	t.pt.queue(what, `INSERT INTO events (user_id, uid, change, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, uid) DO UPDATE SET change = EXCLUDED.change, data = EXCLUDED.data`,
		r.id, uid, int64(ev.Change), buf)
	return nil
}

// DeleteEvent implements calstore.Tx.
func (t *tx) DeleteEvent(user, uid string) error {
	if err := t.check(true); err != nil {
		return err
	}
	r, err := t.user(user)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("delete event %q of %s", uid, r.primary)
	n, err := t.exec(what, `DELETE FROM events WHERE user_id = $1 AND uid = $2`, r.id, []byte(uid))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: event %q of %s", calstore.ErrNotFound, uid, r.primary)
	}
	t.pt.queue(what, `DELETE FROM history WHERE user_id = $1 AND uid = $2`, r.id, []byte(uid))
	c := t.bump(r)
	t.pt.queue(what, `INSERT INTO deleted (user_id, uid, change) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, uid) DO UPDATE SET change = EXCLUDED.change`, r.id, []byte(uid), int64(c))
	return nil
}

// EventHistory implements calstore.Tx.
func (t *tx) EventHistory(user, uid string) ([]calstore.HistoryEntry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	r, err := t.user(user)
	if err != nil {
		return nil, err
	}
	bufs, err := t.list("history of "+uid, `SELECT entry FROM history WHERE user_id = $1 AND uid = $2 ORDER BY id`, r.id, []byte(uid))
	if err != nil {
		return nil, err
	}
	var l []calstore.HistoryEntry
	for _, buf := range bufs {
		var h calstore.HistoryEntry
		if err := decode(fmt.Sprintf("history of event %q of %s", uid, r.primary), buf, &h); err != nil {
			return nil, err
		}
		l = append(l, h)
	}
	return l, nil
}

// Counts implements calstore.Tx: two index-only counts.
func (t *tx) Counts(user string) (events, openPending int, err error) {
	if err := t.check(false); err != nil {
		return 0, 0, err
	}
	r, err := t.user(user)
	if err != nil {
		return 0, 0, err
	}
	err = t.pt.QueryRow(t.ctx, `SELECT (SELECT count(*) FROM events WHERE user_id = $1),
		(SELECT count(*) FROM pending WHERE user_id = $1 AND status = 'open')`, r.id).Scan(&events, &openPending)
	if err != nil {
		return 0, 0, t.dbErr("counts of "+r.primary, err)
	}
	return events, openPending, nil
}

// counter is the user's change counter (userAlso).
func (t *tx) counter(r userRef) uint64 { return uint64(t.changes[r.id]) }

// ChangeCounter implements calstore.Tx.
func (t *tx) ChangeCounter(user string) (uint64, error) {
	if err := t.check(false); err != nil {
		return 0, err
	}
	r, err := t.user(user)
	if err != nil {
		return 0, err
	}
	return t.counter(r), nil
}

// Changes implements calstore.Tx.
func (t *tx) Changes(user string, since uint64) (cur uint64, changed, deleted []string, err error) {
	if err := t.check(false); err != nil {
		return 0, nil, nil, err
	}
	r, err := t.user(user)
	if err != nil {
		return 0, nil, nil, err
	}
	cur = t.counter(r)
	ch, err := t.list("changes of "+r.primary, `SELECT uid FROM events WHERE user_id = $1 AND ($2 = 0 OR change > $2) ORDER BY uid`, r.id, int64(since))
	if err != nil {
		return 0, nil, nil, err
	}
	del, err := t.list("changes of "+r.primary, `SELECT uid FROM deleted WHERE user_id = $1 AND change > $2 ORDER BY uid`, r.id, int64(since))
	if err != nil {
		return 0, nil, nil, err
	}
	return cur, strs(ch), strs(del), nil
}

func strs(l [][]byte) []string {
	var r []string
	for _, b := range l {
		r = append(r, string(b))
	}
	return r
}

// LogEntry implements calstore.Tx. The first use of the user in a
// transaction is usually the once-only check: user and entry then take
// one round trip.
func (t *tx) LogEntry(user, key string) (calstore.LogEntry, error) {
	if err := t.check(false); err != nil {
		return calstore.LogEntry{}, err
	}
	var buf []byte
	found := func(row pgx.Row) error {
		err := row.Scan(&buf)
		if errors.Is(err, pgx.ErrNoRows) {
			buf = nil
			return nil
		}
		return err
	}
	r, ran, err := t.userAlso(user, &also{
		sql:  `SELECT entry FROM log WHERE user_id = (SELECT user_id FROM addresses WHERE address = $1) AND key = $2`,
		args: []any{[]byte(key)},
		scan: found,
	})
	if err != nil {
		return calstore.LogEntry{}, err
	}
	if !ran {
		if err := found(t.pt.QueryRow(t.ctx, `SELECT entry FROM log WHERE user_id = $1 AND key = $2`, r.id, []byte(key))); err != nil {
			return calstore.LogEntry{}, t.dbErr("log of "+r.primary, err)
		}
	}
	if buf == nil {
		return calstore.LogEntry{}, fmt.Errorf("%w: log key %q of %s", calstore.ErrNotFound, key, r.primary)
	}
	var e calstore.LogEntry
	return e, decode("log entry", buf, &e)
}

// AddLog implements calstore.Tx. A key present, or committed meanwhile by
// another transaction (which this one waits for), is calstore.ErrExists.
func (t *tx) AddLog(e calstore.LogEntry) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := calstore.CheckLogKey(e.Key); err != nil {
		return err
	}
	r, err := t.user(e.User)
	if err != nil {
		return err
	}
	e.User = r.primary
	if e.Time.IsZero() {
		e.Time = calstore.Now()
	}
	buf, err := calstore.Encode(e)
	if err != nil {
		return err
	}
	what := "add log of " + r.primary
	if t.batched {
		// Goes out with the next statement or COMMIT; a key present
		// fails it (23505, log_once: calstore.ErrExists), and the
		// function runs again.
		t.pt.queue(what, `INSERT INTO log (user_id, key, entry) VALUES ($1, $2, $3)`, r.id, []byte(e.Key), buf)
		return nil
	}
	n, err := t.exec(what, `INSERT INTO log (user_id, key, entry) VALUES ($1, $2, $3) ON CONFLICT (user_id, key) DO NOTHING`,
		r.id, []byte(e.Key), buf)
	if err != nil {
		return err
	}
	if n == 0 {
		// Present before, or committed meanwhile by a transaction this
		// one waited for: Batch runs the function again, and its
		// once-only check then sees the entry.
		return fmt.Errorf("%w: log key %q of %s%w", calstore.ErrExists, e.Key, r.primary, errRetry)
	}
	return nil
}

// Log implements calstore.Tx.
func (t *tx) Log(user string, limit int) ([]calstore.LogEntry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	var bufs [][]byte
	var err error
	if user == "" {
		bufs, err = t.list("log", `SELECT entry FROM log ORDER BY id DESC LIMIT $1`, lim)
	} else {
		r, rerr := t.user(user)
		if rerr != nil {
			return nil, rerr
		}
		bufs, err = t.list("log of "+r.primary, `SELECT entry FROM log WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, r.id, lim)
	}
	if err != nil {
		return nil, err
	}
	var l []calstore.LogEntry
	for _, buf := range bufs {
		var e calstore.LogEntry
		if err := decode("log entry", buf, &e); err != nil {
			return nil, err
		}
		l = append(l, e)
	}
	return l, nil
}

// AddPending implements calstore.Tx. IDs come from the table's sequence:
// unique per database and increasing.
func (t *tx) AddPending(p calstore.Pending) (calstore.Pending, error) {
	if err := t.check(true); err != nil {
		return calstore.Pending{}, err
	}
	if err := calstore.CheckPendingUID(p.UID); err != nil {
		return calstore.Pending{}, err
	}
	if p.Status == "" {
		p.Status = calstore.PendingOpen
	}
	if err := calstore.CheckPendingStatus(p.Status); err != nil {
		return calstore.Pending{}, err
	}
	r, err := t.user(p.User)
	if err != nil {
		return calstore.Pending{}, err
	}
	var id int64
	if err := t.pt.QueryRow(t.ctx, `SELECT nextval('pending_id_seq')`).Scan(&id); err != nil {
		return calstore.Pending{}, t.dbErr("pending sequence", err)
	}
	p.ID, p.User = uint64(id), r.primary
	if p.Created.IsZero() {
		p.Created = calstore.Now()
	}
	if p.Updated.IsZero() {
		p.Updated = p.Created
	}
	buf, err := calstore.Encode(p)
	if err != nil {
		return calstore.Pending{}, err
	}
	if _, err := t.exec("add pending of "+r.primary, `INSERT INTO pending (id, user_id, uid, status, record) VALUES ($1, $2, $3, $4, $5)`,
		id, r.id, []byte(p.UID), p.Status, buf); err != nil {
		return calstore.Pending{}, err
	}
	p.Actions = slices.Clone(p.Actions)
	p.Data = slices.Clone(p.Data)
	return p, nil
}

// pendings decodes pending records.
func pendings(bufs [][]byte) ([]calstore.Pending, error) {
	var l []calstore.Pending
	for _, buf := range bufs {
		var p calstore.Pending
		if err := decode("pending item", buf, &p); err != nil {
			return nil, err
		}
		l = append(l, p)
	}
	return l, nil
}

// PendingItem implements calstore.Tx.
func (t *tx) PendingItem(user string, id uint64) (calstore.Pending, error) {
	if err := t.check(false); err != nil {
		return calstore.Pending{}, err
	}
	r, err := t.user(user)
	if err != nil {
		return calstore.Pending{}, err
	}
	bufs, err := t.list("pending of "+r.primary, `SELECT record FROM pending WHERE user_id = $1 AND id = $2`, r.id, int64(id))
	if err != nil {
		return calstore.Pending{}, err
	}
	if len(bufs) == 0 {
		return calstore.Pending{}, fmt.Errorf("%w: pending item %d of %s", calstore.ErrNotFound, id, r.primary)
	}
	l, err := pendings(bufs)
	if err != nil {
		return calstore.Pending{}, err
	}
	return l[0], nil
}

// PendingList implements calstore.Tx.
func (t *tx) PendingList(user string, openOnly bool) ([]calstore.Pending, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	r, err := t.user(user)
	if err != nil {
		return nil, err
	}
	bufs, err := t.list("pending of "+r.primary, `SELECT record FROM pending WHERE user_id = $1 AND (NOT $2 OR status = 'open') ORDER BY id`, r.id, openOnly)
	if err != nil {
		return nil, err
	}
	return pendings(bufs)
}

// PendingForUID implements calstore.Tx.
func (t *tx) PendingForUID(user, uid string) ([]calstore.Pending, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	r, err := t.user(user)
	if err != nil {
		return nil, err
	}
	bufs, err := t.list("pending of "+r.primary, `SELECT record FROM pending WHERE user_id = $1 AND uid = $2 AND status = 'open' ORDER BY id`, r.id, []byte(uid))
	if err != nil {
		return nil, err
	}
	return pendings(bufs)
}

// PutPending implements calstore.Tx.
func (t *tx) PutPending(p calstore.Pending) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := calstore.CheckPendingUID(p.UID); err != nil {
		return err
	}
	if err := calstore.CheckPendingStatus(p.Status); err != nil {
		return err
	}
	r, err := t.user(p.User)
	if err != nil {
		return err
	}
	p.User = r.primary
	if p.Updated.IsZero() {
		p.Updated = calstore.Now()
	}
	buf, err := calstore.Encode(p)
	if err != nil {
		return err
	}
	n, err := t.exec("put pending of "+r.primary, `UPDATE pending SET uid = $3, status = $4, record = $5 WHERE user_id = $1 AND id = $2`,
		r.id, int64(p.ID), []byte(p.UID), p.Status, buf)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: pending item %d of %s", calstore.ErrNotFound, p.ID, r.primary)
	}
	return nil
}

// AddContact implements calstore.Tx.
func (t *tx) AddContact(c calstore.Contact) error {
	if err := t.check(true); err != nil {
		return err
	}
	c, err := calstore.NormalizeContact(c)
	if err != nil {
		return err
	}
	r, err := t.user(c.User)
	if err != nil {
		return err
	}
	c.User = r.primary
	what := fmt.Sprintf("contact %s of %s", c.Address, r.primary)
	bufs, err := t.list(what, `SELECT record FROM contacts WHERE user_id = $1 AND address = $2`, r.id, []byte(c.Address))
	if err != nil {
		return err
	}
	if len(bufs) > 0 {
		var old calstore.Contact
		if err := decode(what, bufs[0], &old); err != nil {
			return err
		}
		var store bool
		if c, store = calstore.MergeContact(old, c); !store {
			return nil
		}
	}
	buf, err := calstore.Encode(c)
	if err != nil {
		return err
	}
	_, err = t.exec(what, `INSERT INTO contacts (user_id, address, record) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, address) DO UPDATE SET record = EXCLUDED.record`, r.id, []byte(c.Address), buf)
	return err
}

// Contacts implements calstore.Tx.
func (t *tx) Contacts(user string) ([]calstore.Contact, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	r, err := t.user(user)
	if err != nil {
		return nil, err
	}
	bufs, err := t.list("contacts of "+r.primary, `SELECT record FROM contacts WHERE user_id = $1 ORDER BY address`, r.id)
	if err != nil {
		return nil, err
	}
	var l []calstore.Contact
	for _, buf := range bufs {
		var c calstore.Contact
		if err := decode("contact of "+r.primary, buf, &c); err != nil {
			return nil, err
		}
		l = append(l, c)
	}
	return l, nil
}

// IsContact implements calstore.Tx.
func (t *tx) IsContact(user, addr string) (bool, error) {
	if err := t.check(false); err != nil {
		return false, err
	}
	r, err := t.user(user)
	if err != nil {
		return false, err
	}
	a := address.Normalize(addr)
	if a == "" {
		return false, nil
	}
	var ok bool
	if err := t.pt.QueryRow(t.ctx, `SELECT EXISTS (SELECT 1 FROM contacts WHERE user_id = $1 AND address = $2)`, r.id, []byte(a)).Scan(&ok); err != nil {
		return false, t.dbErr("contacts of "+r.primary, err)
	}
	return ok, nil
}

// Enqueue implements calstore.Tx.
func (t *tx) Enqueue(o calstore.OutboxItem) (calstore.OutboxItem, error) {
	if err := t.check(true); err != nil {
		return calstore.OutboxItem{}, err
	}
	if err := calstore.NormalizeOutbox(&o); err != nil {
		return calstore.OutboxItem{}, err
	}
	var id int64
	if err := t.pt.QueryRow(t.ctx, `SELECT nextval('outbox_id_seq')`).Scan(&id); err != nil {
		return calstore.OutboxItem{}, t.dbErr("outbox sequence", err)
	}
	calstore.QueueOutbox(&o, uint64(id))
	buf, err := calstore.Encode(o)
	if err != nil {
		return calstore.OutboxItem{}, err
	}
	created, updated, next := outboxTimes(o)
	if _, err := t.exec("enqueue", `INSERT INTO outbox (id, status, record, created, updated, next_attempt) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, o.Status, buf, created, updated, next); err != nil {
		return calstore.OutboxItem{}, err
	}
	o.To = slices.Clone(o.To)
	o.Body = slices.Clone(o.Body)
	return o, nil
}

// outboxTimes are the indexed columns of an item.
func outboxTimes(o calstore.OutboxItem) (created, updated, next int64) {
	return int64(calstore.KeyNanos(o.Created)), int64(calstore.KeyNanos(o.Updated)), int64(calstore.KeyNanos(o.NextAttempt))
}

// OutboxItem implements calstore.Tx. In a Write the item is locked until
// commit (package doc).
func (t *tx) OutboxItem(id uint64) (calstore.OutboxItem, error) {
	if err := t.check(false); err != nil {
		return calstore.OutboxItem{}, err
	}
	q := `SELECT record FROM outbox WHERE id = $1`
	if t.writable {
		q += ` FOR UPDATE`
	}
	bufs, err := t.list(fmt.Sprint("outbox item ", id), q, int64(id))
	if err != nil {
		return calstore.OutboxItem{}, err
	}
	if len(bufs) == 0 {
		return calstore.OutboxItem{}, fmt.Errorf("%w: outbox item %d", calstore.ErrNotFound, id)
	}
	var o calstore.OutboxItem
	return o, decode(fmt.Sprint("outbox item ", id), bufs[0], &o)
}

// Outbox implements calstore.Tx.
func (t *tx) Outbox() ([]calstore.OutboxItem, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	return t.outboxItems("outbox", `SELECT record FROM outbox ORDER BY id`)
}

// outboxItems runs a query of outbox records and decodes them.
func (t *tx) outboxItems(what, sql string, args ...any) ([]calstore.OutboxItem, error) {
	bufs, err := t.list(what, sql, args...)
	if err != nil {
		return nil, err
	}
	var l []calstore.OutboxItem
	for _, buf := range bufs {
		var o calstore.OutboxItem
		if err := decode("outbox item", buf, &o); err != nil {
			return nil, err
		}
		l = append(l, o)
	}
	return l, nil
}

// OutboxDue implements calstore.Tx: a range of the outbox_due index. In
// a Write the rows are locked FOR UPDATE SKIP LOCKED: two instances'
// senders claiming at once get different items and never wait for each
// other (package doc).
func (t *tx) OutboxDue(at time.Time, limit int) ([]calstore.OutboxItem, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	q := `SELECT record FROM outbox WHERE status = 'queued' AND next_attempt <= $1 ORDER BY created, id`
	args := []any{int64(calstore.KeyNanos(at))}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	if t.writable {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	return t.outboxItems("outbox due", q, args...)
}

// OutboxNextDue implements calstore.Tx.
func (t *tx) OutboxNextDue(after time.Time) (time.Time, error) {
	if err := t.check(false); err != nil {
		return time.Time{}, err
	}
	var n *int64
	if err := t.pt.QueryRow(t.ctx, `SELECT min(next_attempt) FROM outbox WHERE status = 'queued' AND next_attempt > $1`,
		int64(calstore.KeyNanos(after))).Scan(&n); err != nil {
		return time.Time{}, t.dbErr("outbox next due", err)
	}
	if n == nil {
		return time.Time{}, nil
	}
	return time.Unix(0, *n).UTC(), nil
}

// OutboxSentBefore implements calstore.Tx: a range of the outbox_sent
// index.
func (t *tx) OutboxSentBefore(before time.Time, limit int) ([]uint64, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	q := `SELECT id FROM outbox WHERE status = 'sent' AND updated < $1 ORDER BY updated, id`
	args := []any{int64(calstore.KeyNanos(before))}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := t.pt.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.dbErr("outbox sent", err)
	}
	l, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, t.dbErr("outbox sent", err)
	}
	ids := make([]uint64, len(l))
	for i, id := range l {
		ids[i] = uint64(id)
	}
	return ids, nil
}

// PutOutbox implements calstore.Tx.
func (t *tx) PutOutbox(o calstore.OutboxItem) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := calstore.NormalizeOutbox(&o); err != nil {
		return err
	}
	if err := calstore.CheckOutboxStatus(o.Status); err != nil {
		return err
	}
	if o.Updated.IsZero() {
		o.Updated = calstore.Now()
	}
	buf, err := calstore.Encode(o)
	if err != nil {
		return err
	}
	created, updated, next := outboxTimes(o)
	n, err := t.exec(fmt.Sprint("put outbox item ", o.ID), `UPDATE outbox SET status = $2, record = $3, created = $4, updated = $5, next_attempt = $6 WHERE id = $1`,
		int64(o.ID), o.Status, buf, created, updated, next)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: outbox item %d", calstore.ErrNotFound, o.ID)
	}
	return nil
}

// DeleteOutbox implements calstore.Tx.
func (t *tx) DeleteOutbox(id uint64) error {
	if err := t.check(true); err != nil {
		return err
	}
	n, err := t.exec(fmt.Sprint("delete outbox item ", id), `DELETE FROM outbox WHERE id = $1`, int64(id))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: outbox item %d", calstore.ErrNotFound, id)
	}
	return nil
}

// OutboxQueued implements calstore.Tx: a count over the partial index of
// queued items (no counter row, which every Enqueue of every instance
// would have to lock).
func (t *tx) OutboxQueued() (int, error) {
	if err := t.check(false); err != nil {
		return 0, err
	}
	var n int
	if err := t.pt.QueryRow(t.ctx, `SELECT count(*) FROM outbox WHERE status = 'queued'`).Scan(&n); err != nil {
		return 0, t.dbErr("outbox queued", err)
	}
	return n, nil
}

// TakeBudget implements calstore.Tx. The key's advisory lock (held to
// commit) makes count-then-insert atomic across instances.
func (t *tx) TakeBudget(key string, at time.Time, window time.Duration, limit int) (bool, error) {
	if err := t.check(true); err != nil {
		return false, err
	}
	if err := calstore.CheckBudget(key, window); err != nil {
		return false, err
	}
	now := int64(calstore.KeyNanos(at))
	if _, err := t.exec("prune budgets", `DELETE FROM budget WHERE expiry <= $1`, now); err != nil {
		return false, err
	}
	if limit <= 0 {
		return false, nil
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	if _, err := t.exec("budget lock", `SELECT pg_advisory_xact_lock($1, $2)`, int32(budgetLockClass), int32(h.Sum32())); err != nil {
		return false, err
	}
	n, err := t.budgetUsed(key, now)
	if err != nil || n >= limit {
		return false, err
	}
	_, err = t.exec("take budget", `INSERT INTO budget (key, expiry) VALUES ($1, $2)`, []byte(key), int64(calstore.KeyNanos(at.Add(window))))
	return err == nil, err
}

func (t *tx) budgetUsed(key string, at int64) (int, error) {
	var n int
	if err := t.pt.QueryRow(t.ctx, `SELECT count(*) FROM budget WHERE key = $1 AND expiry > $2`, []byte(key), at).Scan(&n); err != nil {
		return 0, t.dbErr("budget", err)
	}
	return n, nil
}

// BudgetUsed implements calstore.Tx.
func (t *tx) BudgetUsed(key string, at time.Time) (int, error) {
	if err := t.check(false); err != nil {
		return 0, err
	}
	if err := calstore.CheckBudgetKey(key); err != nil {
		return 0, err
	}
	return t.budgetUsed(key, int64(calstore.KeyNanos(at)))
}

// metaValue reads a row of meta (nil when absent), locked in a Write.
func (t *tx) metaValue(name string) ([]byte, error) {
	q := `SELECT value FROM meta WHERE name = $1`
	if t.writable {
		q += ` FOR UPDATE`
	}
	l, err := t.list(name, q, name)
	if err != nil || len(l) == 0 {
		return nil, err
	}
	return l[0], nil
}

func (t *tx) putMeta(name string, value []byte) error {
	if value == nil {
		_, err := t.exec(name, `DELETE FROM meta WHERE name = $1`, name)
		return err
	}
	_, err := t.exec(name, `INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, value)
	return err
}

// Alive implements calstore.Tx: the last sign of life of any instance.
func (t *tx) Alive() (time.Time, error) {
	if err := t.check(false); err != nil {
		return time.Time{}, err
	}
	v, err := t.metaValue("alive")
	if err != nil || len(v) != 8 {
		return time.Time{}, err
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), nil
}

// SetAlive implements calstore.Tx.
func (t *tx) SetAlive(at time.Time) error {
	if err := t.check(true); err != nil {
		return err
	}
	return t.putMeta("alive", binary.BigEndian.AppendUint64(nil, calstore.KeyNanos(at)))
}

// Downtimes implements calstore.Tx.
func (t *tx) Downtimes() ([]calstore.Downtime, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	v, err := t.metaValue("downtimes")
	if err != nil || v == nil {
		return nil, err
	}
	var l []calstore.Downtime
	return l, decode("downtimes", v, &l)
}

// PutDowntimes implements calstore.Tx.
func (t *tx) PutDowntimes(l []calstore.Downtime) error {
	if err := t.check(true); err != nil {
		return err
	}
	if len(l) == 0 {
		return t.putMeta("downtimes", nil)
	}
	l, err := calstore.NormalizeDowntimes(l)
	if err != nil {
		return err
	}
	buf, err := calstore.Encode(l)
	if err != nil {
		return err
	}
	return t.putMeta("downtimes", buf)
}
