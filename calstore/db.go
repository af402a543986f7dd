package calstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Options configure Open.
type Options struct {
	// Timeout is how long Open waits for the file lock held by another
	// process (or another Open in this one) before returning ErrLocked.
	// Zero or negative means the default, 1s.
	Timeout time.Duration

	// NoSync skips fsync after each commit. For tests only, never in
	// production: a crash can then lose acknowledged changes or corrupt the
	// file.
	NoSync bool

	// ReadOnly opens the file with a shared lock and without writing
	// anything; Write returns ErrReadOnly. The file must exist and have the
	// current schema version (an older one needs a read-write Open to
	// migrate). A daemon holding the file makes Open return ErrLocked.
	ReadOnly bool
}

// DefaultTimeout is the file lock wait used when Options.Timeout is zero.
const DefaultTimeout = time.Second

// DB is the bbolt implementation of Store. It is safe for concurrent use.
type DB struct {
	bdb      *bolt.DB
	path     string
	readOnly bool
	closed   atomic.Bool
	batch    batcher
	users    userCache
	faults   fault // Fault's state
}

var _ Store = (*DB)(nil)

// Top-level bucket names; see doc.go.
var (
	bucketMeta     = []byte("meta")
	bucketUsers    = []byte("users")
	bucketAddrs    = []byte("addrs")
	bucketUserdata = []byte("userdata")
	bucketLog      = []byte("log")
	bucketOutbox   = []byte("outbox")
	bucketBudget   = []byte("budget")     // schema 3: uses of budgets by key (budget.go)
	bucketBudgetEx = []byte("budget-exp") // schema 3: the same uses by expiry, for pruning
	// bucketOutboxDue and bucketOutboxSent (schema 4) are in outbox.go.

	topBuckets = [][]byte{bucketMeta, bucketUsers, bucketAddrs, bucketUserdata, bucketLog, bucketOutbox, bucketBudget, bucketBudgetEx,
		bucketOutboxDue, bucketOutboxSent}

	keySchema       = []byte("schema")
	keyPendingSeq   = []byte("pending-seq")
	keyOutboxQueued = []byte("outbox-queued") // schema 3: u64, outbox items with status queued
)

// Per-user bucket names, nested in userdata/<primary address>.
var (
	ubEvents     = []byte("events")
	ubLog        = []byte("log")
	ubLogKeys    = []byte("logkeys")
	ubPending    = []byte("pending")
	ubPendingUID = []byte("pending-uid")
	ubContacts   = []byte("contacts")

	userBuckets = [][]byte{ubEvents, ubLog, ubLogKeys, ubPending, ubPendingUID, ubContacts}

	// Optional parts of a user's data bucket, created on first use (files
	// written before they existed lack them; readers treat absence as
	// empty, so no schema bump).
	ubDeleted  = []byte("deleted") // bucket: UID -> u64 change counter at deletion
	ubHistory  = []byte("history") // bucket: UID NUL u64 sequence -> HistoryEntry (schema 2)
	keyChanges = []byte("changes") // key: u64 change counter
	// Counts for the per-user caps (counts.go): keys, kept by PutEvent,
	// DeleteEvent and the pending methods; a file written before they
	// existed lacks them, and the first change counts once by reading.
	keyEventCount  = []byte("event-count")  // key: u64 events stored
	keyOpenPending = []byte("open-pending") // key: u64 pending items with status open
)

// migrations[v] turns a file of schema version v into version v+1, inside
// the Open transaction.
var migrations = map[int]func(*bolt.Tx) error{
	1: migrateHistory,
	2: migrateOutboxQueued,
	3: migrateOutboxIndex,
}

// migrateOutboxQueued (schema 2 → 3) counts the queued outbox items once,
// into meta/outbox-queued, which Enqueue, PutOutbox and DeleteOutbox keep
// from then on: the queue gauge reads one key instead of the outbox. (The
// budget buckets of schema 3 start empty; initSchema creates them.) An
// older binary refuses the file, so none can change the outbox without
// keeping the counter.
func migrateOutboxQueued(btx *bolt.Tx) error {
	n, err := countQueued(btx)
	if err != nil {
		return err
	}
	return btx.Bucket(bucketMeta).Put(keyOutboxQueued, u64(n))
}

// countQueued counts the outbox items with status queued by reading them.
func countQueued(btx *bolt.Tx) (uint64, error) {
	ob := btx.Bucket(bucketOutbox)
	if ob == nil {
		return 0, nil
	}
	return countStatus(ob, OutboxQueued, "outbox item")
}

// migrateHistory (schema 1 → 2) moves each event's history out of the event
// value into the user's history bucket, so a delivery no longer decodes and
// re-encodes up to MaxHistory entries with every event it touches.
func migrateHistory(btx *bolt.Tx) error {
	ud := btx.Bucket(bucketUserdata)
	if ud == nil {
		return nil
	}
	return ud.ForEachBucket(func(user []byte) error {
		ub := ud.Bucket(user)
		evs := ub.Bucket(ubEvents)
		if evs == nil {
			return nil
		}
		type legacy struct {
			History []HistoryEntry `json:"history"`
		}
		type move struct {
			uid  string
			hist []HistoryEntry
			ev   []byte
		}
		var moves []move
		err := evs.ForEach(func(k, v []byte) error {
			var l legacy
			if err := decode(v, &l); err != nil {
				return fmt.Errorf("event %q of %s: %w", k, user, err)
			}
			if len(l.History) == 0 {
				return nil
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			delete(m, "history")
			nv, err := json.Marshal(m)
			if err != nil {
				return err
			}
			moves = append(moves, move{string(k), l.History, nv})
			return nil
		})
		if err != nil {
			return err
		}
		hb, err := ub.CreateBucketIfNotExists(ubHistory)
		if err != nil {
			return err
		}
		for _, m := range moves {
			if err := evs.Put([]byte(m.uid), m.ev); err != nil {
				return err
			}
			for _, h := range m.hist {
				if err := putHistory(hb, m.uid, h); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Open opens or creates the store at path (mode 0600), creates missing
// buckets, writes schemaVersion into a new file, refuses a newer version
// (ErrSchema) and migrates an older one. A file that is a bbolt database
// but not a calstore one is refused with ErrSchema. ErrLocked if another
// process holds the file for longer than opt.Timeout.
func Open(path string, opt Options) (db *DB, err error) {
	defer faultsAsPanics()()
	ok := false
	var bdb *bolt.DB
	defer func() {
		if !ok && fromBbolt() {
			err = fmt.Errorf("open %s: %w", path, corruptErr(recover()))
			db = nil
			if bdb != nil {
				closeDamaged(bdb)
			}
		}
	}()
	db, err = open(path, opt, &bdb)
	ok = true
	return db, err
}

// open is Open without the recovery of bbolt's panics; *bdbp is the bbolt
// handle once there is one, for Open to close.
func open(path string, opt Options, bdbp **bolt.DB) (*DB, error) {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  timeout,
		NoSync:   opt.NoSync,
		ReadOnly: opt.ReadOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, mapErr(err))
	}
	*bdbp = bdb
	db := &DB{bdb: bdb, path: path, readOnly: opt.ReadOnly}
	if opt.ReadOnly {
		err = bdb.View(checkSchema)
	} else {
		err = bdb.Update(initSchema)
	}
	if err != nil {
		if cerr := bdb.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("open %s: %w", path, mapErr(err))
	}
	return db, nil
}

// readSchema returns the version stored in meta, 0 with ok false when the
// file has no meta bucket or no version.
func readSchema(btx *bolt.Tx) (v int, ok bool, err error) {
	meta := btx.Bucket(bucketMeta)
	if meta == nil {
		return 0, false, nil
	}
	buf := meta.Get(keySchema)
	if buf == nil {
		return 0, false, nil
	}
	v, err = strconv.Atoi(string(buf))
	if err != nil || v <= 0 {
		return 0, false, fmt.Errorf("%w: schema value %q", ErrSchema, buf)
	}
	return v, true, nil
}

// checkSchema accepts only the current version (read-only opens).
func checkSchema(btx *bolt.Tx) error {
	v, ok, err := readSchema(btx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: no schema version, not a calstore file or never opened read-write", ErrSchema)
	}
	if v != schemaVersion {
		return fmt.Errorf("%w: file has version %d, this program %d (open read-write to migrate an older file)", ErrSchema, v, schemaVersion)
	}
	return nil
}

// initSchema creates a new layout or validates and migrates an existing one.
func initSchema(btx *bolt.Tx) error {
	v, ok, err := readSchema(btx)
	if err != nil {
		return err
	}
	if !ok {
		// A new file has no buckets at all; anything else is someone
		// else's database and is left alone.
		if k, _ := btx.Cursor().First(); k != nil {
			return fmt.Errorf("%w: no schema version in a non-empty file (bucket %q), not a calstore file", ErrSchema, k)
		}
		v = schemaVersion
	}
	if v > schemaVersion {
		return fmt.Errorf("%w: file has version %d, this program only knows up to %d", ErrSchema, v, schemaVersion)
	}
	for ; v < schemaVersion; v++ {
		m := migrations[v]
		if m == nil {
			return fmt.Errorf("%w: no migration from version %d", ErrSchema, v)
		}
		if err := m(btx); err != nil {
			return fmt.Errorf("migrate from schema version %d: %w", v, err)
		}
	}
	for _, name := range topBuckets {
		if _, err := btx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := btx.Bucket(bucketMeta)
	if cur := meta.Get(keySchema); !bytes.Equal(cur, []byte(strconv.Itoa(schemaVersion))) {
		if err := meta.Put(keySchema, []byte(strconv.Itoa(schemaVersion))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	}
	return nil
}

// Path returns the file name the store was opened with.
func (db *DB) Path() string { return db.path }

// Read implements Store.
func (db *DB) Read(ctx context.Context, fn func(Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.closed.Load() {
		return ErrClosed
	}
	defer faultsAsPanics()()
	btx, err := db.bdb.Begin(false)
	if err != nil {
		return fmt.Errorf("begin read: %w", mapErr(err))
	}
	t := &tx{btx: btx, users: &db.users}
	ok := false
	defer func() {
		t.done = true
		if !ok && fromBbolt() {
			err = corruptErr(recover())
			db.noteCorrupt(err)
			rollback(btx)
			return
		}
		// A read transaction's rollback only releases it; its error is
		// ErrTxClosed at worst, which cannot happen here.
		_ = btx.Rollback()
	}()
	err = fn(t)
	ok = true
	return err
}

// Write implements Store.
func (db *DB) Write(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.closed.Load() {
		return ErrClosed
	}
	if db.readOnly {
		return fmt.Errorf("write: %w", ErrReadOnly)
	}
	defer faultsAsPanics()()
	btx, err := db.bdb.Begin(true)
	if err != nil {
		err = fmt.Errorf("begin write: %w", mapErr(err))
		db.noteWrite(err)
		return err
	}
	t := &tx{btx: btx, users: &db.users, writable: true}
	committed, ok := false, false
	defer func() {
		t.done = true
		if !ok && fromBbolt() {
			// bbolt panicked on a damaged page while fn read or wrote.
			err = corruptErr(recover())
			db.noteWrite(err)
			rollback(btx)
			return
		}
		if !committed {
			// Also on panic in fn: release the writer lock, drop changes.
			_ = btx.Rollback()
		}
	}()
	err = fn(t)
	ok = true
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.done = true
	committed = true
	err = commit(btx)
	if err != nil {
		err = fmt.Errorf("commit: %w", mapErr(err))
	}
	db.noteWrite(err)
	return err
}

// Close implements Store. It waits for running transactions to finish.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	if db.faults.corrupt.Load() != nil {
		// A panic on a damaged page may have left a lock held.
		closeDamaged(db.bdb)
		return nil
	}
	if err := db.bdb.Close(); err != nil {
		return fmt.Errorf("close %s: %w", db.path, mapErr(err))
	}
	return nil
}

// Check runs bbolt's page-level consistency check and calstore's own
// invariants (the address index matches the users, every user has its
// data buckets, once-only keys point at log entries). It returns all
// problems found, joined, or nil. It holds the writer lock while it runs
// (bbolt's check is not safe alongside writers), so it stalls Write on a
// large file.
func (db *DB) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.closed.Load() {
		return ErrClosed
	}
	btx, err := db.bdb.Begin(!db.readOnly)
	if err != nil {
		return fmt.Errorf("begin check: %w", mapErr(err))
	}
	defer func() { _ = btx.Rollback() }()

	var errs []error
	for err := range btx.Check() {
		errs = append(errs, fmt.Errorf("bbolt: %w", err))
	}
	if len(errs) == 0 {
		// The page structure is sound; only then walk the data.
		errs = append(errs, checkData(ctx, btx)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("check %s: %w", db.path, errors.Join(errs...))
	}
	return nil
}

// checkData verifies calstore's invariants.
func checkData(ctx context.Context, btx *bolt.Tx) []error {
	var errs []error
	for _, name := range topBuckets {
		if btx.Bucket(name) == nil {
			errs = append(errs, fmt.Errorf("bucket %s missing", name))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	users := btx.Bucket(bucketUsers)
	addrs := btx.Bucket(bucketAddrs)
	udata := btx.Bucket(bucketUserdata)
	glog := btx.Bucket(bucketLog)

	owners := map[string]string{} // address -> primary, from the user records
	err := users.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var u User
		if err := decode(v, &u); err != nil {
			errs = append(errs, fmt.Errorf("user %s: %v", k, err))
			return nil
		}
		if u.Address != string(k) {
			errs = append(errs, fmt.Errorf("user %s: record has address %q", k, u.Address))
		}
		for _, a := range u.Addresses() {
			owners[a] = string(k)
			if got := addrs.Get([]byte(a)); string(got) != string(k) {
				errs = append(errs, fmt.Errorf("user %s: address %s indexed to %q", k, a, got))
			}
		}
		ub := udata.Bucket(k)
		if ub == nil {
			errs = append(errs, fmt.Errorf("user %s: no data bucket", k))
			return nil
		}
		for _, name := range userBuckets {
			if ub.Bucket(name) == nil {
				errs = append(errs, fmt.Errorf("user %s: bucket %s missing", k, name))
			}
		}
		if err := checkCounts(ub, string(k)); err != nil {
			errs = append(errs, err)
		}
		if lk := ub.Bucket(ubLogKeys); lk != nil {
			if err := lk.ForEach(func(key, seq []byte) error {
				if glog.Get(seq) == nil {
					errs = append(errs, fmt.Errorf("user %s: log key %q points at missing entry %x", k, key, seq))
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return append(errs, err)
	}
	err = addrs.ForEach(func(k, v []byte) error {
		if owners[string(k)] != string(v) {
			errs = append(errs, fmt.Errorf("address %s indexed to %s, which does not list it", k, v))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	err = udata.ForEach(func(k, v []byte) error {
		if users.Get(k) == nil {
			errs = append(errs, fmt.Errorf("data bucket for unknown user %s", k))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if n, err := countQueued(btx); err != nil {
		errs = append(errs, err)
	} else if got := readU64(btx.Bucket(bucketMeta).Get(keyOutboxQueued)); got != n {
		errs = append(errs, fmt.Errorf("outbox-queued counter is %d, the outbox holds %d queued items", got, n))
	}
	return append(errs, checkOutboxIndex(btx)...)
}

// mapErr maps bbolt errors to package errors, keeping the original in the
// chain (both match errors.Is). Other errors are returned unchanged.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrLocked, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("%w (or not a bbolt file): %w", ErrCorrupt, err)
	case errors.Is(err, berrors.ErrDatabaseNotOpen), errors.Is(err, berrors.ErrTxClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.Is(err, berrors.ErrDatabaseReadOnly), errors.Is(err, berrors.ErrTxNotWritable):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	case errors.Is(err, berrors.ErrKeyRequired), errors.Is(err, berrors.ErrKeyTooLarge), errors.Is(err, berrors.ErrValueTooLarge),
		errors.Is(err, berrors.ErrIncompatibleValue), errors.Is(err, berrors.ErrBucketNameRequired):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}
