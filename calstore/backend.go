package calstore

import (
	"fmt"
	"time"
)

// Helpers for Store implementations outside this package (calstore/pgstore):
// the value checks and normalisation every backend applies before it
// writes, and the stored encoding of events, so that the backends agree on
// what they accept and on the bytes an export compares.

// NormalizeUser returns u with its addresses normalised, duplicates and an
// alias equal to the primary dropped, and its policy checked (Tx.PutUser).
func NormalizeUser(u User) (User, error) {
	var err error
	if u.Address, err = validAddress("user", u.Address); err != nil {
		return User{}, err
	}
	if u.Aliases, err = normList("alias", u.Aliases, u.Address); err != nil {
		return User{}, err
	}
	if u.Delegates, err = normList("delegate", u.Delegates, ""); err != nil {
		return User{}, err
	}
	switch u.Policy {
	case "", policyAlways, policyKnown, policyNever:
	default:
		return User{}, fmt.Errorf("%w: policy %q (want always, known, never or empty)", ErrInvalid, u.Policy)
	}
	return u, nil
}

// NormalizeContact returns c with its address normalised and its source
// checked ("" becomes SourceManual), as Tx.AddContact stores it.
func NormalizeContact(c Contact) (Contact, error) {
	var err error
	if c.Address, err = validAddress("contact", c.Address); err != nil {
		return Contact{}, err
	}
	switch c.Source {
	case "":
		c.Source = SourceManual
	case SourceManual, SourceVCard, SourceSent, SourceEvent:
	default:
		return Contact{}, fmt.Errorf("%w: contact source %q", ErrInvalid, c.Source)
	}
	return c, nil
}

// NormalizeOutbox normalises the addresses of o and requires From and To
// (Tx.Enqueue, Tx.PutOutbox).
func NormalizeOutbox(o *OutboxItem) error { return normOutbox(o) }

// CheckUID is ErrInvalid for an empty UID or one over 4096 bytes.
func CheckUID(uid string) error { return validUID(uid) }

// CheckPendingUID is ErrInvalid for a pending item's UID over 4096
// bytes (it may be empty).
func CheckPendingUID(uid string) error {
	if len(uid) > maxUIDLen {
		return fmt.Errorf("%w: UID longer than %d bytes", ErrInvalid, maxUIDLen)
	}
	return nil
}

// CheckPendingStatus is ErrInvalid for a status that is not a Pending one.
func CheckPendingStatus(s string) error { return validPendingStatus(s) }

// CheckOutboxStatus is ErrInvalid for a status that is not an outbox one.
func CheckOutboxStatus(s string) error { return validOutboxStatus(s) }

// CheckLogKey is ErrInvalid for a once-only key of 0 or over 1024
// bytes.
func CheckLogKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w: log key must have 1 to %d bytes", ErrInvalid, maxKeyLen)
	}
	return nil
}

// CheckBudget is ErrInvalid for a budget key of 0 or over MaxBudgetKeyLen
// bytes, or a window that is not positive (Tx.TakeBudget).
func CheckBudget(key string, window time.Duration) error {
	if err := validBudgetKey(key); err != nil {
		return err
	}
	if window <= 0 {
		return fmt.Errorf("%w: budget window %v", ErrInvalid, window)
	}
	return nil
}

// CheckBudgetKey is ErrInvalid for a budget key of 0 or over
// MaxBudgetKeyLen bytes (Tx.BudgetUsed).
func CheckBudgetKey(key string) error { return validBudgetKey(key) }

// KeyNanos is the encoding of times in keys and indexed columns (budget
// expiry, the outbox's times): Unix nanoseconds, times before 1970 as 0,
// times past the year 2262 as the largest int64.
func KeyNanos(t time.Time) uint64 { return nanos(t) }

// EncodeEvent returns the stored form of ev: the bytes json.Marshal gives.
func EncodeEvent(ev Event) ([]byte, error) { return encodeEvent(ev) }

// DecodeEvent decodes the stored form of an event.
func DecodeEvent(buf []byte, ev *Event) error { return decodeEvent(buf, ev) }

// Now is the clock for zero timestamps on new records (UTC).
func Now() time.Time { return now() }

// Encode is the stored encoding of a record (a user, contact, pending or
// outbox item): the same JSON in every backend.
func Encode(v any) ([]byte, error) { return encode(v) }

// MergeContact is what Tx.AddContact stores when old, the contact already
// kept under c's address, exists: old with c's name when c names it
// anew; store is false when nothing changes (an empty or equal name).
func MergeContact(old, c Contact) (merged Contact, store bool) {
	if c.Name == "" || c.Name == old.Name {
		return old, false
	}
	old.Name = c.Name
	return old, true
}

// QueueOutbox readies o for Tx.Enqueue under the id the backend drew: it
// is queued, Created defaults to now, and Updated and NextAttempt to
// Created.
func QueueOutbox(o *OutboxItem, id uint64) {
	o.ID = id
	o.Status = OutboxQueued
	stampNew(&o.Created, &o.Updated)
	if o.NextAttempt.IsZero() {
		o.NextAttempt = o.Created
	}
}

// stampNew gives a new record's unset times their defaults: created now,
// updated when created.
func stampNew(created, updated *time.Time) {
	if created.IsZero() {
		*created = now()
	}
	if updated.IsZero() {
		*updated = *created
	}
}
