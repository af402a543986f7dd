package calstore

import (
	"context"
	"errors"
	"time"
)

// Errors returned by the store. They are wrapped with context (which user,
// which event, the underlying bbolt error); compare with errors.Is.
var (
	ErrNotFound = errors.New("calstore: not found")
	ErrExists   = errors.New("calstore: already exists")
	ErrConflict = errors.New("calstore: address belongs to another user")
	ErrClosed   = errors.New("calstore: store closed")
	ErrLocked   = errors.New("calstore: database locked by another process") // bbolt file lock timeout
	ErrSchema   = errors.New("calstore: unsupported schema version")
	ErrInvalid  = errors.New("calstore: invalid value")

	// ErrReadOnly is returned by a Tx method that writes when it is called
	// inside Read, and by Write on a store opened with Options.ReadOnly.
	ErrReadOnly = errors.New("calstore: read-only")
)

// schemaVersion is the version of the bucket layout and value encoding
// written by this package (see doc.go). Open refuses a file with a newer
// version (ErrSchema) and migrates a file with an older one.
const schemaVersion = 4

// MaxHistory is the number of HistoryEntry values kept per event; PutEvent
// drops the oldest beyond it.
const MaxHistory = 100

// Limits on key sizes. bbolt refuses keys over 32 KiB; these are far below
// and far above anything legitimate. Longer values give ErrInvalid.
const (
	MaxAddressLen = 1024 // bytes, after Normalize
	maxUIDLen     = 4096 // bytes, iCalendar UID
	maxKeyLen     = 1024 // bytes, LogEntry.Key
)

// Policy values for User.Policy (docs/rules.md "Policy"). The empty
// string means "the server's default_policy".
const (
	policyAlways = "always"
	policyKnown  = "known"
	policyNever  = "never"
)

// Status values for Pending.Status.
const (
	PendingOpen     = "open"
	PendingDone     = "done"
	PendingObsolete = "obsolete"
)

// Status values for OutboxItem.Status.
const (
	OutboxQueued = "queued"
	OutboxSent   = "sent"
	OutboxFailed = "failed"
)

// Source values for Contact.Source.
const (
	SourceManual = "manual"
	SourceVCard  = "vcard"
	SourceSent   = "sent"
	SourceEvent  = "event" // organizer or attendee of one of the user's events
)

// The json tags below define the on-disk encoding. Changing a tag or the
// meaning of a field needs a schema version bump and a migration.

// User is a local calendar user.
type User struct {
	Address   string   `json:"address"`             // primary calendar address, lower-case, no "mailto:"
	Aliases   []string `json:"aliases,omitempty"`   // further addresses of the same user (lower-case)
	Delegates []string `json:"delegates,omitempty"` // addresses allowed to act on the user's behalf (docs/rules.md "Working on behalf of")
	Policy    string   `json:"policy,omitempty"`    // "always" | "known" | "never" | "" (server default)
	// TimeZone is the IANA name of the zone the user reads times in
	// (imipctl user set -tz); "" = the server's default_timezone.
	TimeZone string    `json:"time_zone,omitempty"`
	Created  time.Time `json:"created"` // set by PutUser on creation when zero; kept on replace when zero

	// PasswordHash is the user's CalDAV app password as a bcrypt hash
	// (imipctl user password); "" = no CalDAV login with a password.
	// Never the password itself.
	PasswordHash string `json:"password_hash,omitempty"`
	// FeedHash is the hex SHA-256 of the user's ICS feed token (imipctl
	// user feed); "" = no feed. The token itself is shown once and not kept.
	FeedHash string `json:"feed_hash,omitempty"`
}

// Addresses returns the primary address followed by the aliases.
func (u User) Addresses() []string {
	return append([]string{u.Address}, u.Aliases...)
}

// HistoryEntry records one thing that happened to an event.
type HistoryEntry struct {
	Time      time.Time `json:"time"`
	MessageID string    `json:"message_id,omitempty"`
	Method    string    `json:"method,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	From      string    `json:"from,omitempty"`
	Summary   string    `json:"summary,omitempty"`
}

// Event is one calendar object of a user with its scheduling metadata.
type Event struct {
	UID         string               `json:"uid"`
	Data        []byte               `json:"data"`                   // iCalendar text: one VCALENDAR with master and overrides
	ReplyStamps map[string]time.Time `json:"reply_stamps,omitempty"` // per attendee (+ "\x00" + RECURRENCE-ID for an instance): DTSTAMP of the last applied REPLY
	// History, given to PutEvent, are entries to ADD to the event's history
	// (kept apart from the event, at most MaxHistory, oldest dropped).
	// Tx.Event leaves it empty: read it with Tx.EventHistory. So a delivery
	// does not decode and re-encode the whole history.
	History []HistoryEntry `json:"-"`
	Updated time.Time      `json:"updated"` // set by PutEvent when zero
	// Change is the user's change counter (Tx.ChangeCounter) after the
	// PutEvent that wrote this version; set by PutEvent, the caller's value
	// is ignored. 0 for events written before the counter existed.
	Change uint64 `json:"change,omitempty"`
}

// LogEntry records what was done to one message for one user. The (User,
// Key) pair is the once-only record: a message whose key is present for the
// user has been processed for that user.
type LogEntry struct {
	User      string    `json:"user"` // stored as the user's primary address
	Key       string    `json:"key"`  // the once-only key the caller computed for (message, user)
	Time      time.Time `json:"time"` // set by AddLog when zero
	MessageID string    `json:"message_id,omitempty"`
	From      string    `json:"from,omitempty"`
	Method    string    `json:"method,omitempty"`
	UID       string    `json:"uid,omitempty"`
	Outcome   string    `json:"outcome,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Transport string    `json:"transport,omitempty"`
}

// Pending is something that waits for the user's (or an admin's) decision.
type Pending struct {
	ID           uint64    `json:"id"`   // assigned by AddPending, unique per store, increasing
	User         string    `json:"user"` // stored as the user's primary address
	UID          string    `json:"uid,omitempty"`
	RecurrenceID string    `json:"recurrence_id,omitempty"`
	Kind         string    `json:"kind"` // "invitation", "rescheduled", "party-crasher", "counter", "refresh", "held", ...
	Reason       string    `json:"reason,omitempty"`
	Summary      string    `json:"summary,omitempty"` // human text
	Actions      []string  `json:"actions,omitempty"` // allowed actions
	From         string    `json:"from,omitempty"`
	Method       string    `json:"method,omitempty"`
	MessageID    string    `json:"message_id,omitempty"`
	Data         []byte    `json:"data,omitempty"`     // the iTIP object (iCalendar) that caused it
	Attendee     string    `json:"attendee,omitempty"` // the attendee concerned (party crasher, counter, refresh)
	Outgoing     bool      `json:"outgoing,omitempty"` // the message was the user's own (submission path)
	Status       string    `json:"status"`             // "open" | "done" | "obsolete"
	Resolution   string    `json:"resolution,omitempty"`
	Created      time.Time `json:"created"` // set by AddPending when zero
	Updated      time.Time `json:"updated"` // set by AddPending and PutPending when zero
}

// Contact is an address a user knows (docs/rules.md "Policy": known senders).
type Contact struct {
	User    string `json:"user"`    // stored as the user's primary address
	Address string `json:"address"` // normalised
	Name    string `json:"name,omitempty"`
	Source  string `json:"source"` // "manual" | "vcard" | "sent"; "" is stored as "manual"
}

// OutboxItem is an outgoing iTIP message waiting to be sent, or kept for a
// while after sending.
type OutboxItem struct {
	ID          uint64    `json:"id"`
	User        string    `json:"user,omitempty"` // normalised; not required to be a known user
	From        string    `json:"from"`
	SentBy      string    `json:"sent_by,omitempty"` // the delegate acting for the user (Sender header)
	To          []string  `json:"to"`
	Method      string    `json:"method,omitempty"`
	UID         string    `json:"uid,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	Body        []byte    `json:"body"`           // iCalendar payload
	Auto        bool      `json:"auto,omitempty"` // automatic answer (Auto-Submitted)
	Status      string    `json:"status"`         // "queued" | "sent" | "failed"
	Attempts    int       `json:"attempts,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	Created     time.Time `json:"created"`      // set by Enqueue when zero
	Updated     time.Time `json:"updated"`      // set by Enqueue and PutOutbox when zero
	NextAttempt time.Time `json:"next_attempt"` // set by Enqueue to Created when zero (due now)
}

// Store is the calendar store. *DB is the bbolt implementation; the
// conformance suite in package storetest states the contract in code.
type Store interface {
	// Read runs fn in a read-only transaction. Many may run at once, also
	// alongside one Write. fn's error is returned unchanged. Calling Write
	// from inside fn on the same goroutine deadlocks.
	Read(ctx context.Context, fn func(Tx) error) error

	// Write runs fn in a read-write transaction. Writes are serialised.
	// The transaction commits (and, unless Options.NoSync, is on disk)
	// only if fn returns nil; fn's error (returned unchanged) or a panic
	// rolls back everything fn did. If ctx is done when fn returns, the
	// transaction is rolled back too and ctx.Err() returned, so a nil
	// error always means "committed" and an error "nothing changed".
	Write(ctx context.Context, fn func(Tx) error) error

	// Batch is Write with group commit: concurrent calls share one
	// transaction and one sync, a lone call commits at once. Each fn's
	// effect is atomic as with Write, but fn may run more than once (when
	// another fn of its group fails, the group is retried without it), so
	// fn must only have effects inside the transaction or repeatable ones.
	Batch(ctx context.Context, fn func(Tx) error) error

	// Close closes the store, waiting for running transactions. Read and
	// Write then return ErrClosed. A second Close returns nil.
	Close() error
}

// Tx is a transaction: every role below in one. It is valid only inside
// the fn given to Read or Write; afterwards its methods return ErrClosed.
// It must not be used from several goroutines at once. A function that
// needs one role takes that role's interface (UserTx, EventTx, ...), so
// its signature says what it touches.
//
// Every address argument is normalised with address.Normalize. A "user"
// argument names a user by its primary address or any alias; User fields
// stored in records hold the primary address. Methods on per-user data
// return ErrNotFound when the user does not exist. Returned values are
// copies: changing them does not change the store; values passed in are
// copied too. Zero timestamps on new records are set to the current time.
type Tx interface {
	UserTx
	EventTx
	LogTx
	PendingTx
	ContactTx
	OutboxTx
	BudgetTx
	DowntimeTx
}

// UserTx is the users and their addresses.
type UserTx interface {
	User(address string) (User, error) // by primary address OR alias; ErrNotFound
	Users() ([]User, error)            // sorted by Address
	// PutUser creates or replaces the user identified by u.Address.
	// Addresses are normalised, duplicates and an alias equal to the
	// primary dropped; Policy must be one of the Policy constants or "".
	// ErrConflict if u.Address or an alias is an address of another user
	// (renaming a user to one of its aliases is such a conflict too).
	PutUser(u User) error
	DeleteUser(address string) error // removes the user, its events, log entries, pending items and contacts (not its outbox items)
}

// EventTx is a user's events, their history and the change counter
// (CalDAV CTag and sync-token).
type EventTx interface {
	Event(user, uid string) (Event, error)
	Events(user string) ([]Event, error) // sorted by UID
	// PutEvent stores ev (replacing the UID's object), advances the user's
	// change counter and sets ev.Change to its new value.
	PutEvent(user string, ev Event) error
	// DeleteEvent removes an event (ErrNotFound if absent), advances the
	// change counter and records the UID as deleted at the new value.
	DeleteEvent(user, uid string) error
	EventHistory(user, uid string) ([]HistoryEntry, error) // oldest first; empty for an unknown event
	// Counts returns how many events the user holds and how many of its
	// pending items are open: the per-user caps (SECURITY.md "Limits")
	// read it on every new event or pending item, so it decodes no event.
	Counts(user string) (events, openPending int, err error)

	// ChangeCounter is the user's change counter: it grows by one with
	// every PutEvent and DeleteEvent of the user and never goes back (CalDAV
	// CTag and sync-token). 0 for a user whose events never changed.
	ChangeCounter(user string) (uint64, error)
	// Changes lists what changed after counter value since: UIDs stored
	// (sorted) and UIDs deleted and not stored again (sorted), with the
	// current counter. Deleted UIDs are remembered for ever (one small key
	// each); since 0 lists every event and every deletion.
	Changes(user string, since uint64) (cur uint64, changed, deleted []string, err error)
}

// LogTx is the processed-message log: the once-only record.
type LogTx interface {
	LogEntry(user, key string) (LogEntry, error) // the once-only lookup; ErrNotFound
	AddLog(e LogEntry) error                     // ErrExists when (User,Key) present
	// Log returns the log, most recently added first; user "" = all users;
	// limit<=0 = all.
	Log(user string, limit int) ([]LogEntry, error)
}

// PendingTx is what waits for a user's or an admin's decision.
type PendingTx interface {
	AddPending(p Pending) (Pending, error) // assigns ID, Status "open" if empty
	PendingItem(user string, id uint64) (Pending, error)
	PendingList(user string, openOnly bool) ([]Pending, error) // by ID
	PendingForUID(user, uid string) ([]Pending, error)         // open items for an event (to mark obsolete), by ID
	PutPending(p Pending) error                                // replaces an existing item (by p.User, p.ID); ErrNotFound
}

// ContactTx is the addresses a user knows (docs/rules.md "Policy").
type ContactTx interface {
	// AddContact is idempotent per (User, Address): an existing contact
	// keeps its Source, and its Name unless c.Name is non-empty.
	AddContact(c Contact) error
	Contacts(user string) ([]Contact, error) // sorted by Address
	IsContact(user, address string) (bool, error)
}

// OutboxTx is the outgoing iTIP mail: what the decision call queues and
// the outbox sender delivers.
type OutboxTx interface {
	Enqueue(o OutboxItem) (OutboxItem, error) // assigns ID, Status "queued"
	OutboxItem(id uint64) (OutboxItem, error)
	// Outbox lists every item, by ID: for the admin listing and copying a
	// store, not for the sender (OutboxDue).
	Outbox() ([]OutboxItem, error)
	PutOutbox(o OutboxItem) error // replaces an existing item; ErrNotFound
	DeleteOutbox(id uint64) error // removes an item (retention); ErrNotFound
	// OutboxQueued is the number of outbox items with status queued, from
	// a counter or an index (the queue gauge reads no item).
	OutboxQueued() (int, error)

	// OutboxDue returns the queued items due at at (NextAttempt at or
	// before at), oldest first (by Created, then ID), at most limit of
	// them (limit <= 0: all); an index lookup that reads no other item.
	// In a Write the items returned are the transaction's: on a store
	// several processes share (pgstore) each is locked until commit, and
	// an item another transaction holds is skipped, not waited for. A
	// sender claims an item by moving its NextAttempt (its lease) in the
	// same Write.
	OutboxDue(at time.Time, limit int) ([]OutboxItem, error)
	// OutboxNextDue is the earliest NextAttempt after after of a queued
	// item: when the sender has something to do next. Zero when no queued
	// item is due after after.
	OutboxNextDue(after time.Time) (time.Time, error)
	// OutboxSentBefore lists the IDs of the sent items last Updated
	// before before, oldest first (by Updated, then ID), at most limit of
	// them (limit <= 0: all): what the sender's retention deletes. An
	// index lookup that reads no item.
	OutboxSentBefore(before time.Time, limit int) ([]uint64, error)
}

// BudgetTx counts uses of named budgets in a sliding window.
type BudgetTx interface {
	// TakeBudget spends one use of the budget named key at time at when
	// fewer than limit uses of key are live at at, and reports whether it
	// did; a use is live for window after it was taken. limit <= 0 never
	// spends. Uses expired at at are pruned, of every key, in the same
	// call. The key is the caller's name for what is counted (imipd's
	// filter: automatic mail per target address, REFRESH per user,
	// organizer and UID), 1 to MaxBudgetKeyLen bytes, compared as bytes;
	// window must be positive. Budgets are global, not per user (DeleteUser
	// leaves them to expire).
	TakeBudget(key string, at time.Time, window time.Duration, limit int) (bool, error)
	// BudgetUsed is the number of uses of key live at at. A lookup of the
	// key's own uses, never a scan of others'.
	BudgetUsed(key string, at time.Time) (int, error)
}

// DowntimeTx is the catch-up record: imipd's last sign of life and the
// stretches it did not run (README "Catching up after downtime").
type DowntimeTx interface {
	// Alive is the last sign of life imipd recorded with SetAlive; zero
	// when none was.
	Alive() (time.Time, error)
	SetAlive(at time.Time) error
	// Downtimes lists the stretches imipd did not run that no catch-up has
	// processed yet, oldest first (empty: none). PutDowntimes replaces the
	// list (empty: clears it); a stretch ending before it starts is
	// ErrInvalid; beyond MaxDowntimes the oldest are merged into one.
	Downtimes() ([]Downtime, error)
	PutDowntimes(l []Downtime) error
}
