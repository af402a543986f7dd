// Package calstore is imipd's persistent state: users and their addresses,
// events with their scheduling metadata, pending actions, the
// processed-message log (the once-only record), contacts, the outbox, send
// budgets and the sign-of-life record. Store is the interface every
// backend implements; its Tx is composed of role interfaces (UserTx,
// EventTx, LogTx, PendingTx, ContactTx, OutboxTx, BudgetTx, DowntimeTx), so
// a helper takes the one it uses. DB is the implementation in one bbolt
// file (below); calstore/pgstore is the PostgreSQL one, and
// calstore/storetest the conformance suite both pass.
//
// # Use
//
// Open the file once per process and run work in transactions:
//
//	db, err := calstore.Open(filepath.Join(dataDir, "imipd.db"), calstore.Options{})
//	err = db.Write(ctx, func(tx calstore.Tx) error {
//		if _, err := tx.LogEntry(user, key); err == nil {
//			return errDuplicate // processed before
//		} else if !errors.Is(err, calstore.ErrNotFound) {
//			return err
//		}
//		// ... apply, then record:
//		return tx.AddLog(calstore.LogEntry{User: user, Key: key, ...})
//	})
//
// The once-only check and the change it guards belong in one Write (docs/rules.md
// "Ordering and once-only"): Write is atomic, and a nil error means the
// change is committed and synced to disk (unless Options.NoSync, which is
// for tests only). Any error, including a panic in fn or ctx ending before
// commit, leaves the store unchanged.
//
// bbolt allows one process to hold the file read-write (an exclusive file
// lock); a second Open waits Options.Timeout and returns ErrLocked. So
// imipctl talks to the daemon, and opens the file itself only when no
// daemon runs. Write transactions are serialised inside the process; reads
// run in parallel with each other and with the writer. Batch is Write with
// group commit (calstore's own, not bbolt's, which waits for more callers):
// it may run fn more than once.
//
// Values read are copies (decoded from JSON), valid after the transaction;
// values written are copied into the file. Addresses are compared after
// address.Normalize. The conformance suite in calstore/storetest states the
// behaviour of any Store in code.
//
// # File layout (schema version 4)
//
// Keys are bytes; "u64" is an 8-byte big-endian integer, so byte order is
// numeric order. Values are JSON of the exported types, using their json
// tags, unless noted.
//
//	meta                     bucket
//	  "schema"               decimal ASCII schema version ("1")
//	  "pending-seq"          u64, the last Pending.ID assigned
//	  "outbox-queued"        u64, how many outbox items have status queued
//	                         (schema 3; kept by Enqueue, PutOutbox,
//	                         DeleteOutbox; absent = 0)
//	users                    bucket: primary address -> User
//	addrs                    bucket: every address of every user (primary
//	                         and aliases) -> primary address; the alias index
//	userdata                 bucket of buckets, one per primary address:
//	  <primary>/events       UID -> Event
//	  <primary>/log          u64 log sequence -> empty: this user's entries in log
//	  <primary>/logkeys      once-only key -> u64 log sequence
//	  <primary>/pending      u64 ID -> Pending
//	  <primary>/pending-uid  UID + 0x00 + u64 ID -> empty: index for PendingForUID
//	  <primary>/contacts     address -> Contact
//	  <primary>/deleted      UID -> u64 change counter when it was deleted
//	                         (optional bucket, created by the first
//	                         DeleteEvent; CalDAV sync-collection)
//	  <primary> "changes"    a key (not a bucket) in the user's data bucket:
//	                         u64 change counter, advanced by PutEvent and
//	                         DeleteEvent (optional; absent = 0)
//	  <primary> "event-count", "open-pending"
//	                         keys: u64 events stored and pending items with
//	                         status open, kept by PutEvent, DeleteEvent and
//	                         the pending methods for Counts (the per-user
//	                         caps); optional: absent, they are counted by
//	                         reading, and the next change writes them
//	log                      bucket: u64 sequence (bucket NextSequence, so
//	                         commit order) -> LogEntry, for all users
//	outbox                   bucket: u64 ID (bucket NextSequence) -> OutboxItem
//	outbox-due               bucket (schema 4): u64 NextAttempt (Unix ns), u64
//	                         ID -> u64 Created (Unix ns): one key per queued
//	                         item (OutboxDue, OutboxNextDue)
//	outbox-sent              bucket (schema 4): u64 Updated (Unix ns), u64 ID
//	                         -> empty: one key per sent item (OutboxSentBefore)
//	budget                   bucket (schema 3): u16 key length, key, u64
//	                         expiry (Unix ns), u64 seq -> empty: one live
//	                         use of a budget (TakeBudget)
//	budget-exp               bucket (schema 3): u64 expiry, u64 seq (bucket
//	                         NextSequence) -> the budget key: the same uses
//	                         in expiry order, pruned from the front
//
// The change counter, the deleted bucket, Event.Change, User.PasswordHash
// and User.FeedHash were added within schema version 1: they are optional
// (absent reads as zero or empty), so older files open unchanged and an
// older binary ignores them (a CTag then lags until the next change made
// by a newer binary; clients resynchronise).
//
// Schema 2 moved each event's history into <primary>/history (UID NUL u64
// sequence -> HistoryEntry); schema 3 added the outbox-queued counter
// (counted from the outbox by the migration) and the budget buckets;
// schema 4 the outbox indexes (built from the outbox by the migration).
// An older binary refuses a newer file, so none changes the outbox without
// keeping the counter and the indexes (Check compares them with the
// outbox).
//
// Log order is the order entries were added (newest = highest sequence),
// not LogEntry.Time. Pending IDs come from meta/pending-seq rather than a
// bucket sequence so they stay unique across users and survive DeleteUser.
// DeleteUser removes the user's data bucket, addresses and log entries, but
// not outbox items, which are mail already decided on.
//
// # Schema changes
//
// Changing the layout or a json tag needs a schema version bump and an entry
// in migrations (db.go) that turns version N into N+1 inside the Open
// transaction. Open refuses files newer than it knows (ErrSchema), so an
// old binary never writes into a newer layout.
package calstore
