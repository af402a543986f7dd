package calstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store faults. bbolt trusts its file: on a damaged page it panics (an
// assertion such as "Page expected to be: 7", an index out of range) or
// reads past its memory map. calstore turns those panics into errors
// wrapping ErrCorrupt, at Open and in every transaction, and remembers
// them; a panic that did not come from bbolt (a bug in a caller's
// function) is left alone.

// ErrCorrupt means the file is damaged or is not a bbolt file: restore it
// from a backup (or rescue what is readable with `bbolt compact`).
var ErrCorrupt = errors.New("calstore: database file damaged")

// fault records what DB.Fault reports.
type fault struct {
	corrupt  atomic.Pointer[error] // the first damage found; stays until the file is reopened
	lastFail atomic.Pointer[failure]
}

// failure is a write transaction that failed in the store (begin, commit).
type failure struct {
	at  time.Time
	err error
}

// Fault reports whether the store is failing: a damaged page found by any
// transaction since Open (it stays: a damaged file does not heal), or the
// last write transaction failed in the store itself, at begin or commit
// (a full disk, an I/O error; cleared by the next write that commits). An
// error returned by a transaction's own function is not a store fault.
func (db *DB) Fault() error {
	if p := db.faults.corrupt.Load(); p != nil {
		return *p
	}
	if f := db.faults.lastFail.Load(); f != nil {
		return fmt.Errorf("store writes failing since %s: %w", f.at.UTC().Format(time.RFC3339), f.err)
	}
	return nil
}

// noteWrite records the end of a write transaction: err is a store
// failure (begin, commit, damage) or nil for a commit.
func (db *DB) noteWrite(err error) {
	if err == nil {
		if db.faults.lastFail.Load() != nil {
			db.faults.lastFail.Store(nil)
		}
		return
	}
	if errors.Is(err, ErrCorrupt) {
		db.noteCorrupt(err)
	}
	if f := db.faults.lastFail.Load(); f == nil {
		db.faults.lastFail.Store(&failure{at: time.Now(), err: err})
	}
}

// noteCorrupt records damage (the first one found is kept).
func (db *DB) noteCorrupt(err error) {
	db.faults.corrupt.CompareAndSwap(nil, &err)
}

// fromBbolt reports whether the goroutine is panicking out of bbolt: the
// first frame below the runtime's panic machinery is in package bbolt. It
// must be called by the deferred function directly, before recover.
func fromBbolt() bool {
	var pcs [64]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, "runtime."):
			if f.Function == "runtime.gopanic" {
				panicking = true
			}
		case panicking:
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// corruptErr is the error for a panic value recovered from bbolt.
func corruptErr(p any) error {
	return fmt.Errorf("%w: bbolt: %v", ErrCorrupt, p)
}

// rollback releases a transaction whose commit or work panicked; bbolt
// may panic again on its damaged state, which changes nothing then.
func rollback(btx *bolt.Tx) {
	defer func() {
		if fromBbolt() {
			_ = recover()
		}
	}()
	_ = btx.Rollback()
}

// commit commits btx; a panic in bbolt becomes ErrCorrupt and the
// transaction is rolled back.
func commit(btx *bolt.Tx) (err error) {
	ok := false
	defer func() {
		if !ok && fromBbolt() {
			err = corruptErr(recover())
			rollback(btx)
		}
	}()
	err = btx.Commit()
	ok = true
	return err
}

// faultsAsPanics makes a memory fault on this goroutine (bbolt reading
// past its map for a damaged page reference) a panic that can be recovered,
// rather than a crash; the returned function restores the setting.
func faultsAsPanics() func() {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}

// closeDamaged closes a bbolt handle that panicked, without waiting for a
// lock the panic may have left held (the process is about to stop anyway).
func closeDamaged(bdb *bolt.DB) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }() // a damaged handle may panic again while closing
		_ = bdb.Close()
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

// CheckPages runs bbolt's check of the page structure (every reachable
// page, the free list, no page lost or used twice) in a read transaction.
// Damage, or a panic of bbolt on the way, is an error wrapping ErrCorrupt,
// which Fault reports from then on. It visits every page (with the file in
// the page cache about a twentieth of the cost of reading every user's
// events: BenchmarkCheckPages) and, in a read transaction, must not run
// alongside writers: imipd runs it once at start, before anything writes.
func (db *DB) CheckPages(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	err = db.Read(ctx, func(t Tx) error {
		var errs []error
		for cerr := range t.(*tx).btx.Check() {
			if len(errs) < maxCheckErrors {
				errs = append(errs, cerr)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: bbolt check: %w", ErrCorrupt, errors.Join(errs...))
		}
		return nil
	})
	if errors.Is(err, ErrCorrupt) {
		db.noteCorrupt(err)
	}
	return err
}

// maxCheckErrors caps the problems CheckPages reports (a badly damaged file
// has one per page).
const maxCheckErrors = 5
