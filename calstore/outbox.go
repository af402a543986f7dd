package calstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"imipd/address"
)

// The outbox's indexes (schema 4; doc.go), kept by Enqueue, PutOutbox
// and DeleteOutbox beside meta/outbox-queued, so that the sender reads
// what is due, learns when the next item is, and prunes sent items past
// their retention without reading the rest of the outbox:
//
//	outbox-due    u64 NextAttempt (Unix ns), u64 ID -> u64 Created (Unix ns),
//	              one key per queued item
//	outbox-sent   u64 Updated (Unix ns), u64 ID -> empty, one key per sent item
var (
	bucketOutboxDue  = []byte("outbox-due")
	bucketOutboxSent = []byte("outbox-sent")
)

// outboxKeys is what the indexes hold of an item: decoding it from a
// stored item skips the body.
type outboxKeys struct {
	ID          uint64    `json:"id"`
	Status      string    `json:"status"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	NextAttempt time.Time `json:"next_attempt"`
}

func keysOf(o OutboxItem) outboxKeys {
	return outboxKeys{ID: o.ID, Status: o.Status, Created: o.Created, Updated: o.Updated, NextAttempt: o.NextAttempt}
}

// timeID is an index key: a time, then an ID.
func timeID(t time.Time, id uint64) []byte {
	return binary.BigEndian.AppendUint64(u64(nanos(t)), id)
}

// outboxIndex is the index bucket name (nil: none), key and value of an
// item with keys k.
func outboxIndex(k outboxKeys) (bucket, key, val []byte) {
	switch k.Status {
	case OutboxQueued:
		return bucketOutboxDue, timeID(k.NextAttempt, k.ID), u64(nanos(k.Created))
	case OutboxSent:
		return bucketOutboxSent, timeID(k.Updated, k.ID), []byte{}
	}
	return nil, nil, nil
}

// reindexOutbox moves an item's index entries and the queued counter from
// what old says (nil: the item did not exist) to what new says (nil: it
// no longer exists).
func (t *tx) reindexOutbox(old, new *outboxKeys) error {
	var oldStatus, newStatus string
	if old != nil {
		oldStatus = old.Status
		if name, key, _ := outboxIndex(*old); name != nil {
			if err := t.btx.Bucket(name).Delete(key); err != nil {
				return fmt.Errorf("outbox index: %w", mapErr(err))
			}
		}
	}
	if new != nil {
		newStatus = new.Status
		if name, key, val := outboxIndex(*new); name != nil {
			if err := t.btx.Bucket(name).Put(key, val); err != nil {
				return fmt.Errorf("outbox index: %w", mapErr(err))
			}
		}
	}
	return t.countQueued(oldStatus, newStatus)
}

// storedOutboxKeys decodes the index keys of a stored item.
func storedOutboxKeys(buf []byte) (outboxKeys, error) {
	var k outboxKeys
	err := decode(buf, &k)
	return k, err
}

func validOutboxStatus(s string) error {
	switch s {
	case OutboxQueued, OutboxSent, OutboxFailed:
		return nil
	}
	return fmt.Errorf("%w: outbox status %q", ErrInvalid, s)
}

// normOutbox normalises the addresses of o.
func normOutbox(o *OutboxItem) error {
	o.User = address.Normalize(o.User)
	var err error
	if o.From, err = validAddress("from", o.From); err != nil {
		return err
	}
	if len(o.To) == 0 {
		return fmt.Errorf("%w: outbox item without recipients", ErrInvalid)
	}
	if o.To, err = normList("to", o.To, ""); err != nil {
		return err
	}
	return nil
}

// Enqueue implements Tx. From and To are normalised and required.
func (t *tx) Enqueue(o OutboxItem) (OutboxItem, error) {
	if err := t.check(true); err != nil {
		return OutboxItem{}, err
	}
	if err := normOutbox(&o); err != nil {
		return OutboxItem{}, err
	}
	b := t.btx.Bucket(bucketOutbox)
	id, err := b.NextSequence()
	if err != nil {
		return OutboxItem{}, fmt.Errorf("outbox sequence: %w", mapErr(err))
	}
	QueueOutbox(&o, id)
	buf, err := encode(o)
	if err != nil {
		return OutboxItem{}, err
	}
	if err := b.Put(u64(id), buf); err != nil {
		return OutboxItem{}, fmt.Errorf("put outbox item %d: %w", id, mapErr(err))
	}
	k := keysOf(o)
	if err := t.reindexOutbox(nil, &k); err != nil {
		return OutboxItem{}, err
	}
	o.To = slices.Clone(o.To)
	o.Body = bytes.Clone(o.Body)
	return o, nil
}

// OutboxItem implements Tx.
func (t *tx) OutboxItem(id uint64) (OutboxItem, error) {
	if err := t.check(false); err != nil {
		return OutboxItem{}, err
	}
	buf := t.btx.Bucket(bucketOutbox).Get(u64(id))
	if buf == nil {
		return OutboxItem{}, fmt.Errorf("%w: outbox item %d", ErrNotFound, id)
	}
	var o OutboxItem
	if err := decode(buf, &o); err != nil {
		return OutboxItem{}, fmt.Errorf("outbox item %d: %w", id, err)
	}
	return o, nil
}

// Outbox implements Tx.
func (t *tx) Outbox() ([]OutboxItem, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	var l []OutboxItem
	err := t.btx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		var o OutboxItem
		if err := decode(v, &o); err != nil {
			return fmt.Errorf("outbox item %x: %w", k, err)
		}
		l = append(l, o)
		return nil
	})
	return l, err
}

// PutOutbox implements Tx.
func (t *tx) PutOutbox(o OutboxItem) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := normOutbox(&o); err != nil {
		return err
	}
	if err := validOutboxStatus(o.Status); err != nil {
		return err
	}
	b := t.btx.Bucket(bucketOutbox)
	old := b.Get(u64(o.ID))
	if old == nil {
		return fmt.Errorf("%w: outbox item %d", ErrNotFound, o.ID)
	}
	prev, err := storedOutboxKeys(old)
	if err != nil {
		return fmt.Errorf("outbox item %d: %w", o.ID, err)
	}
	if o.Updated.IsZero() {
		o.Updated = now()
	}
	k := keysOf(o)
	if err := t.reindexOutbox(&prev, &k); err != nil {
		return err
	}
	buf, err := encode(o)
	if err != nil {
		return err
	}
	if err := b.Put(u64(o.ID), buf); err != nil {
		return fmt.Errorf("put outbox item %d: %w", o.ID, mapErr(err))
	}
	return nil
}

// DeleteOutbox implements Tx.
func (t *tx) DeleteOutbox(id uint64) error {
	if err := t.check(true); err != nil {
		return err
	}
	b := t.btx.Bucket(bucketOutbox)
	old := b.Get(u64(id))
	if old == nil {
		return fmt.Errorf("%w: outbox item %d", ErrNotFound, id)
	}
	prev, err := storedOutboxKeys(old)
	if err != nil {
		return fmt.Errorf("outbox item %d: %w", id, err)
	}
	if err := t.reindexOutbox(&prev, nil); err != nil {
		return err
	}
	if err := b.Delete(u64(id)); err != nil {
		return fmt.Errorf("delete outbox item %d: %w", id, mapErr(err))
	}
	return nil
}

// OutboxQueued implements Tx.
func (t *tx) OutboxQueued() (int, error) {
	if err := t.check(false); err != nil {
		return 0, err
	}
	return int(readU64(t.btx.Bucket(bucketMeta).Get(keyOutboxQueued))), nil
}

// countQueued keeps meta/outbox-queued when an item's status changes from
// old to new ("" for an item that did not or no longer exists).
func (t *tx) countQueued(old, new string) error {
	if (old == OutboxQueued) == (new == OutboxQueued) {
		return nil
	}
	meta := t.btx.Bucket(bucketMeta)
	n := readU64(meta.Get(keyOutboxQueued))
	if new == OutboxQueued {
		n++
	} else if n > 0 {
		n--
	}
	if err := meta.Put(keyOutboxQueued, u64(n)); err != nil {
		return fmt.Errorf("outbox-queued counter: %w", mapErr(err))
	}
	return nil
}

// OutboxDue implements Tx: the due part of outbox-due, sorted by its
// values (Created) and IDs; only the items returned are read.
func (t *tx) OutboxDue(at time.Time, limit int) ([]OutboxItem, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	type due struct{ created, id uint64 }
	var l []due
	end := nanos(at)
	c := t.btx.Bucket(bucketOutboxDue).Cursor()
	for k, v := c.First(); len(k) == 16 && binary.BigEndian.Uint64(k) <= end; k, v = c.Next() {
		l = append(l, due{readU64(v), binary.BigEndian.Uint64(k[8:])})
	}
	slices.SortFunc(l, func(a, b due) int { return cmp.Or(cmp.Compare(a.created, b.created), cmp.Compare(a.id, b.id)) })
	if limit > 0 && len(l) > limit {
		l = l[:limit]
	}
	out := make([]OutboxItem, 0, len(l))
	for _, d := range l {
		o, err := t.OutboxItem(d.id)
		if err != nil {
			return nil, fmt.Errorf("outbox-due index: %w (run check)", err)
		}
		out = append(out, o)
	}
	return out, nil
}

// OutboxNextDue implements Tx: the first key of outbox-due after at.
func (t *tx) OutboxNextDue(after time.Time) (time.Time, error) {
	if err := t.check(false); err != nil {
		return time.Time{}, err
	}
	k, _ := t.btx.Bucket(bucketOutboxDue).Cursor().Seek(u64(nanos(after) + 1))
	if len(k) != 16 {
		return time.Time{}, nil
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC(), nil
}

// OutboxSentBefore implements Tx: the front of outbox-sent.
func (t *tx) OutboxSentBefore(before time.Time, limit int) ([]uint64, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	var ids []uint64
	end := nanos(before)
	c := t.btx.Bucket(bucketOutboxSent).Cursor()
	for k, _ := c.First(); len(k) == 16 && binary.BigEndian.Uint64(k) < end && (limit <= 0 || len(ids) < limit); k, _ = c.Next() {
		ids = append(ids, binary.BigEndian.Uint64(k[8:]))
	}
	return ids, nil
}

// migrateOutboxIndex (schema 3 → 4) builds outbox-due and outbox-sent
// from the outbox. An older binary refuses the file, so none changes the
// outbox without keeping them (Check compares them with the outbox).
func migrateOutboxIndex(btx *bolt.Tx) error {
	for _, name := range [][]byte{bucketOutboxDue, bucketOutboxSent} {
		if _, err := btx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	ob := btx.Bucket(bucketOutbox)
	if ob == nil {
		return nil
	}
	return ob.ForEach(func(id, v []byte) error {
		k, err := storedOutboxKeys(v)
		if err != nil {
			return fmt.Errorf("outbox item %x: %w", id, err)
		}
		if name, key, val := outboxIndex(k); name != nil {
			return btx.Bucket(name).Put(key, val)
		}
		return nil
	})
}

// checkOutboxIndex reports index entries that disagree with the outbox
// (DB.Check): every queued and every sent item has its one entry, and
// nothing else has one.
func checkOutboxIndex(btx *bolt.Tx) []error {
	want := map[string]map[string][]byte{string(bucketOutboxDue): {}, string(bucketOutboxSent): {}}
	var errs []error
	err := btx.Bucket(bucketOutbox).ForEach(func(id, v []byte) error {
		k, err := storedOutboxKeys(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("outbox item %x: %w", id, err))
			return nil
		}
		if name, key, val := outboxIndex(k); name != nil {
			want[string(name)][string(key)] = val
		}
		return nil
	})
	if err != nil {
		return append(errs, err)
	}
	for name, keys := range want {
		err := btx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
			w, ok := keys[string(k)]
			if !ok || !bytes.Equal(w, v) {
				errs = append(errs, fmt.Errorf("%s: entry %x for no such item", name, k))
			}
			delete(keys, string(k))
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		for k := range keys {
			errs = append(errs, fmt.Errorf("%s: entry %x missing", name, k))
		}
	}
	return errs
}
