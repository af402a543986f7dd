package calstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"imipd/address"
)

// tx implements Tx on a bbolt transaction. Values are JSON-encoded; decoding
// copies them out of bbolt's memory map, which is invalid after the
// transaction.
type tx struct {
	btx      *bolt.Tx
	users    *userCache // the DB's
	writable bool
	done     bool
}

var _ Tx = (*tx)(nil)

// now is the clock for zero timestamps on new records.
func now() time.Time { return time.Now().UTC() }

func (t *tx) check(write bool) error {
	if t.done {
		return fmt.Errorf("%w: transaction used after its function returned", ErrClosed)
	}
	if write && !t.writable {
		return fmt.Errorf("%w: write in a Read transaction", ErrReadOnly)
	}
	return nil
}

func encode(v any) ([]byte, error) {
	buf, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf, nil
}

func decode(buf []byte, v any) error {
	if err := json.Unmarshal(buf, v); err != nil {
		return fmt.Errorf("decode stored value: %w", err)
	}
	return nil
}

func u64(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// readU64 decodes a u64 value; a missing or short value reads as 0.
func readU64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// validAddress normalises a and checks it can be a key.
func validAddress(what, a string) (string, error) {
	n := address.Normalize(a)
	if n == "" {
		return "", fmt.Errorf("%w: empty %s address", ErrInvalid, what)
	}
	if len(n) > MaxAddressLen {
		return "", fmt.Errorf("%w: %s address longer than %d bytes", ErrInvalid, what, MaxAddressLen)
	}
	return n, nil
}

func validUID(uid string) error {
	if uid == "" {
		return fmt.Errorf("%w: empty UID", ErrInvalid)
	}
	if len(uid) > maxUIDLen {
		return fmt.Errorf("%w: UID longer than %d bytes", ErrInvalid, maxUIDLen)
	}
	return nil
}

// primary resolves any address of a user to the primary one.
func (t *tx) primary(addr string) (string, error) {
	a := address.Normalize(addr)
	if a == "" {
		return "", fmt.Errorf("%w: empty address", ErrInvalid)
	}
	p := t.btx.Bucket(bucketAddrs).Get([]byte(a))
	if p == nil {
		return "", fmt.Errorf("%w: user %s", ErrNotFound, a)
	}
	return string(p), nil
}

// userBucket returns the named per-user bucket of the user with any of its
// addresses, and the primary address.
func (t *tx) userBucket(user string, name []byte) (*bolt.Bucket, string, error) {
	p, err := t.primary(user)
	if err != nil {
		return nil, "", err
	}
	ub := t.btx.Bucket(bucketUserdata).Bucket([]byte(p))
	if ub == nil {
		return nil, "", fmt.Errorf("%w: data of user %s missing (run check)", ErrNotFound, p)
	}
	b := ub.Bucket(name)
	if b == nil {
		return nil, "", fmt.Errorf("%w: bucket %s of user %s missing (run check)", ErrNotFound, name, p)
	}
	return b, p, nil
}

// User implements Tx.
func (t *tx) User(address string) (User, error) {
	if err := t.check(false); err != nil {
		return User{}, err
	}
	p, err := t.primary(address)
	if err != nil {
		return User{}, err
	}
	return t.userRecord(p)
}

func (t *tx) userRecord(primary string) (User, error) {
	buf := t.btx.Bucket(bucketUsers).Get([]byte(primary))
	if buf == nil {
		return User{}, fmt.Errorf("%w: user %s (address index is stale, run check)", ErrNotFound, primary)
	}
	if u, ok := t.users.get(primary, buf); ok {
		return u, nil
	}
	var u User
	if err := decode(buf, &u); err != nil {
		return User{}, fmt.Errorf("user %s: %w", primary, err)
	}
	t.users.put(primary, buf, u)
	return u, nil
}

// Users implements Tx.
func (t *tx) Users() ([]User, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	var l []User
	err := t.btx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		var u User
		if err := decode(v, &u); err != nil {
			return fmt.Errorf("user %s: %w", k, err)
		}
		l = append(l, u)
		return nil
	})
	return l, err
}

// normList normalises a list of addresses, dropping duplicates and skip.
func normList(what string, l []string, skip string) ([]string, error) {
	var r []string
	for _, a := range l {
		n, err := validAddress(what, a)
		if err != nil {
			return nil, err
		}
		if n != skip && !slices.Contains(r, n) {
			r = append(r, n)
		}
	}
	return r, nil
}

// PutUser implements Tx.
func (t *tx) PutUser(u User) error {
	if err := t.check(true); err != nil {
		return err
	}
	u, err := NormalizeUser(u)
	if err != nil {
		return err
	}

	users := t.btx.Bucket(bucketUsers)
	addrs := t.btx.Bucket(bucketAddrs)
	key := []byte(u.Address)

	for _, a := range u.Addresses() {
		if owner := addrs.Get([]byte(a)); owner != nil && !bytes.Equal(owner, key) {
			return fmt.Errorf("%w: %s is an address of %s", ErrConflict, a, owner)
		}
	}

	if old := users.Get(key); old != nil {
		var prev User
		if err := decode(old, &prev); err != nil {
			return fmt.Errorf("user %s: %w", u.Address, err)
		}
		if u.Created.IsZero() {
			u.Created = prev.Created
		}
		for _, a := range prev.Aliases {
			if !slices.Contains(u.Aliases, a) {
				if err := addrs.Delete([]byte(a)); err != nil {
					return fmt.Errorf("remove alias %s: %w", a, mapErr(err))
				}
			}
		}
	} else {
		if u.Created.IsZero() {
			u.Created = now()
		}
		ub, err := t.btx.Bucket(bucketUserdata).CreateBucketIfNotExists(key)
		if err != nil {
			return fmt.Errorf("create data of user %s: %w", u.Address, mapErr(err))
		}
		for _, name := range userBuckets {
			if _, err := ub.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create %s of user %s: %w", name, u.Address, mapErr(err))
			}
		}
	}
	for _, a := range u.Addresses() {
		if err := addrs.Put([]byte(a), key); err != nil {
			return fmt.Errorf("index address %s: %w", a, mapErr(err))
		}
	}
	buf, err := encode(u)
	if err != nil {
		return err
	}
	if err := users.Put(key, buf); err != nil {
		return fmt.Errorf("put user %s: %w", u.Address, mapErr(err))
	}
	return nil
}

// DeleteUser implements Tx.
func (t *tx) DeleteUser(address string) error {
	if err := t.check(true); err != nil {
		return err
	}
	p, err := t.primary(address)
	if err != nil {
		return err
	}
	u, err := t.userRecord(p)
	if err != nil {
		return err
	}
	addrs := t.btx.Bucket(bucketAddrs)
	for _, a := range u.Addresses() {
		if err := addrs.Delete([]byte(a)); err != nil {
			return fmt.Errorf("remove address %s: %w", a, mapErr(err))
		}
	}
	udata := t.btx.Bucket(bucketUserdata)
	if ub := udata.Bucket([]byte(p)); ub != nil {
		glog := t.btx.Bucket(bucketLog)
		if lb := ub.Bucket(ubLog); lb != nil {
			if err := lb.ForEach(func(seq, _ []byte) error {
				return glog.Delete(seq)
			}); err != nil {
				return fmt.Errorf("remove log of %s: %w", p, mapErr(err))
			}
		}
		if err := udata.DeleteBucket([]byte(p)); err != nil {
			return fmt.Errorf("remove data of %s: %w", p, mapErr(err))
		}
	}
	if err := t.btx.Bucket(bucketUsers).Delete([]byte(p)); err != nil {
		return fmt.Errorf("remove user %s: %w", p, mapErr(err))
	}
	return nil
}

// Event implements Tx.
func (t *tx) Event(user, uid string) (Event, error) {
	if err := t.check(false); err != nil {
		return Event{}, err
	}
	b, p, err := t.userBucket(user, ubEvents)
	if err != nil {
		return Event{}, err
	}
	buf := b.Get([]byte(uid))
	if buf == nil {
		return Event{}, fmt.Errorf("%w: event %q of %s", ErrNotFound, uid, p)
	}
	var ev Event
	if err := decodeEvent(buf, &ev); err != nil {
		return Event{}, fmt.Errorf("event %q of %s: %w", uid, p, err)
	}
	return ev, nil
}

// Events implements Tx.
func (t *tx) Events(user string) ([]Event, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	b, p, err := t.userBucket(user, ubEvents)
	if err != nil {
		return nil, err
	}
	var l []Event
	err = b.ForEach(func(k, v []byte) error {
		var ev Event
		if err := decodeEvent(v, &ev); err != nil {
			return fmt.Errorf("event %q of %s: %w", k, p, err)
		}
		l = append(l, ev)
		return nil
	})
	return l, err
}

// PutEvent implements Tx. History beyond MaxHistory is dropped, oldest first.
func (t *tx) PutEvent(user string, ev Event) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := validUID(ev.UID); err != nil {
		return err
	}
	b, p, err := t.userBucket(user, ubEvents)
	if err != nil {
		return err
	}
	add := ev.History
	ev.History = nil
	if len(add) > 0 {
		hb, err := t.btx.Bucket(bucketUserdata).Bucket([]byte(p)).CreateBucketIfNotExists(ubHistory)
		if err != nil {
			return fmt.Errorf("put event %q of %s: %w", ev.UID, p, mapErr(err))
		}
		for _, h := range add {
			if err := putHistory(hb, ev.UID, h); err != nil {
				return fmt.Errorf("put event %q of %s: %w", ev.UID, p, err)
			}
		}
	}
	if ev.Updated.IsZero() {
		ev.Updated = now()
	}
	if ev.Change, err = t.bumpCounter(p); err != nil {
		return err
	}
	if del := t.btx.Bucket(bucketUserdata).Bucket([]byte(p)).Bucket(ubDeleted); del != nil {
		if err := del.Delete([]byte(ev.UID)); err != nil {
			return fmt.Errorf("put event %q of %s: %w", ev.UID, p, mapErr(err))
		}
	}
	buf, err := encodeEvent(ev)
	if err != nil {
		return err
	}
	added := 0
	if b.Get([]byte(ev.UID)) == nil {
		added = 1
	}
	if err := t.addCount(p, keyEventCount, added); err != nil {
		return err
	}
	if err := b.Put([]byte(ev.UID), buf); err != nil {
		return fmt.Errorf("put event %q of %s: %w", ev.UID, p, mapErr(err))
	}
	return nil
}

// DeleteEvent implements Tx.
func (t *tx) DeleteEvent(user, uid string) error {
	if err := t.check(true); err != nil {
		return err
	}
	b, p, err := t.userBucket(user, ubEvents)
	if err != nil {
		return err
	}
	if b.Get([]byte(uid)) == nil {
		return fmt.Errorf("%w: event %q of %s", ErrNotFound, uid, p)
	}
	if err := t.addCount(p, keyEventCount, -1); err != nil {
		return err
	}
	if err := b.Delete([]byte(uid)); err != nil {
		return fmt.Errorf("delete event %q of %s: %w", uid, p, mapErr(err))
	}
	if hb := t.btx.Bucket(bucketUserdata).Bucket([]byte(p)).Bucket(ubHistory); hb != nil {
		if err := trimHistory(hb, uid, 0); err != nil {
			return fmt.Errorf("delete event %q of %s: %w", uid, p, err)
		}
	}
	n, err := t.bumpCounter(p)
	if err != nil {
		return err
	}
	del, err := t.btx.Bucket(bucketUserdata).Bucket([]byte(p)).CreateBucketIfNotExists(ubDeleted)
	if err != nil {
		return fmt.Errorf("delete event %q of %s: %w", uid, p, mapErr(err))
	}
	if err := del.Put([]byte(uid), u64(n)); err != nil {
		return fmt.Errorf("delete event %q of %s: %w", uid, p, mapErr(err))
	}
	return nil
}

// counter reads the change counter of a user (primary address).
func (t *tx) counter(primary string) uint64 {
	if ub := t.btx.Bucket(bucketUserdata).Bucket([]byte(primary)); ub != nil {
		if v := ub.Get(keyChanges); len(v) == 8 {
			return binary.BigEndian.Uint64(v)
		}
	}
	return 0
}

// bumpCounter advances the change counter of a user (primary address) and
// returns the new value.
func (t *tx) bumpCounter(primary string) (uint64, error) {
	ub := t.btx.Bucket(bucketUserdata).Bucket([]byte(primary))
	if ub == nil {
		return 0, fmt.Errorf("%w: data of user %s missing (run check)", ErrNotFound, primary)
	}
	n := t.counter(primary) + 1
	if err := ub.Put(keyChanges, u64(n)); err != nil {
		return 0, fmt.Errorf("change counter of %s: %w", primary, mapErr(err))
	}
	return n, nil
}

// ChangeCounter implements Tx.
func (t *tx) ChangeCounter(user string) (uint64, error) {
	if err := t.check(false); err != nil {
		return 0, err
	}
	_, p, err := t.userBucket(user, ubEvents)
	if err != nil {
		return 0, err
	}
	return t.counter(p), nil
}

// Changes implements Tx.
func (t *tx) Changes(user string, since uint64) (cur uint64, changed, deleted []string, err error) {
	if err := t.check(false); err != nil {
		return 0, nil, nil, err
	}
	b, p, err := t.userBucket(user, ubEvents)
	if err != nil {
		return 0, nil, nil, err
	}
	err = b.ForEach(func(k, v []byte) error {
		var ev struct {
			Change uint64 `json:"change"`
		}
		if err := decode(v, &ev); err != nil {
			return fmt.Errorf("event %q of %s: %w", k, p, err)
		}
		if ev.Change > since || since == 0 {
			changed = append(changed, string(k))
		}
		return nil
	})
	if err != nil {
		return 0, nil, nil, err
	}
	if del := t.btx.Bucket(bucketUserdata).Bucket([]byte(p)).Bucket(ubDeleted); del != nil {
		err = del.ForEach(func(k, v []byte) error {
			if len(v) == 8 && binary.BigEndian.Uint64(v) > since {
				deleted = append(deleted, string(k))
			}
			return nil
		})
		if err != nil {
			return 0, nil, nil, err
		}
	}
	return t.counter(p), changed, deleted, nil
}

// LogEntry implements Tx.
func (t *tx) LogEntry(user, key string) (LogEntry, error) {
	if err := t.check(false); err != nil {
		return LogEntry{}, err
	}
	b, p, err := t.userBucket(user, ubLogKeys)
	if err != nil {
		return LogEntry{}, err
	}
	seq := b.Get([]byte(key))
	if seq == nil {
		return LogEntry{}, fmt.Errorf("%w: log key %q of %s", ErrNotFound, key, p)
	}
	buf := t.btx.Bucket(bucketLog).Get(seq)
	if buf == nil {
		return LogEntry{}, fmt.Errorf("%w: log entry %x of %s (index is stale, run check)", ErrNotFound, seq, p)
	}
	var e LogEntry
	if err := decode(buf, &e); err != nil {
		return LogEntry{}, fmt.Errorf("log entry %x: %w", seq, err)
	}
	return e, nil
}

// AddLog implements Tx.
func (t *tx) AddLog(e LogEntry) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := CheckLogKey(e.Key); err != nil {
		return err
	}
	keys, p, err := t.userBucket(e.User, ubLogKeys)
	if err != nil {
		return err
	}
	if keys.Get([]byte(e.Key)) != nil {
		return fmt.Errorf("%w: log key %q of %s", ErrExists, e.Key, p)
	}
	e.User = p
	if e.Time.IsZero() {
		e.Time = now()
	}
	glog := t.btx.Bucket(bucketLog)
	n, err := glog.NextSequence()
	if err != nil {
		return fmt.Errorf("log sequence: %w", mapErr(err))
	}
	seq := u64(n)
	buf, err := encode(e)
	if err != nil {
		return err
	}
	if err := glog.Put(seq, buf); err != nil {
		return fmt.Errorf("put log entry: %w", mapErr(err))
	}
	if err := keys.Put([]byte(e.Key), seq); err != nil {
		return fmt.Errorf("put log key: %w", mapErr(err))
	}
	// The per-user index; its parent is the user's data bucket.
	idx := t.btx.Bucket(bucketUserdata).Bucket([]byte(p)).Bucket(ubLog)
	if err := idx.Put(seq, nil); err != nil {
		return fmt.Errorf("put log index: %w", mapErr(err))
	}
	return nil
}

// Log implements Tx.
func (t *tx) Log(user string, limit int) ([]LogEntry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	glog := t.btx.Bucket(bucketLog)
	var c *bolt.Cursor
	if user == "" {
		c = glog.Cursor()
	} else {
		idx, _, err := t.userBucket(user, ubLog)
		if err != nil {
			return nil, err
		}
		c = idx.Cursor()
	}
	var l []LogEntry
	for k, v := c.Last(); k != nil && (limit <= 0 || len(l) < limit); k, v = c.Prev() {
		if user != "" {
			v = glog.Get(k)
			if v == nil {
				return nil, fmt.Errorf("%w: log entry %x (index is stale, run check)", ErrNotFound, k)
			}
		}
		var e LogEntry
		if err := decode(v, &e); err != nil {
			return nil, fmt.Errorf("log entry %x: %w", k, err)
		}
		l = append(l, e)
	}
	return l, nil
}

// pendingUIDKey is the key of the UID index: uid, NUL, 8-byte ID.
func pendingUIDKey(uid string, id uint64) []byte {
	k := append([]byte(uid), 0)
	return binary.BigEndian.AppendUint64(k, id)
}

// AddPending implements Tx.
func (t *tx) AddPending(p Pending) (Pending, error) {
	if err := t.check(true); err != nil {
		return Pending{}, err
	}
	if err := CheckPendingUID(p.UID); err != nil {
		return Pending{}, err
	}
	if p.Status == "" {
		p.Status = PendingOpen
	}
	if err := validPendingStatus(p.Status); err != nil {
		return Pending{}, err
	}
	b, user, err := t.userBucket(p.User, ubPending)
	if err != nil {
		return Pending{}, err
	}
	meta := t.btx.Bucket(bucketMeta)
	var id uint64 = 1
	if cur := meta.Get(keyPendingSeq); len(cur) == 8 {
		id = binary.BigEndian.Uint64(cur) + 1
	}
	if err := meta.Put(keyPendingSeq, u64(id)); err != nil {
		return Pending{}, fmt.Errorf("pending sequence: %w", mapErr(err))
	}
	p.ID = id
	p.User = user
	stampNew(&p.Created, &p.Updated)
	if err := t.putPending(b, p, nil); err != nil {
		return Pending{}, err
	}
	return clonePending(p), nil
}

func clonePending(p Pending) Pending {
	p.Actions = slices.Clone(p.Actions)
	p.Data = bytes.Clone(p.Data)
	return p
}

func validPendingStatus(s string) error {
	switch s {
	case PendingOpen, PendingDone, PendingObsolete:
		return nil
	}
	return fmt.Errorf("%w: pending status %q", ErrInvalid, s)
}

// putPending writes p into the user's pending bucket b and maintains the UID
// index; old is the previous version, if any.
func (t *tx) putPending(b *bolt.Bucket, p Pending, old *Pending) error {
	idx := t.btx.Bucket(bucketUserdata).Bucket([]byte(p.User)).Bucket(ubPendingUID)
	if old != nil && old.UID != p.UID && old.UID != "" {
		if err := idx.Delete(pendingUIDKey(old.UID, p.ID)); err != nil {
			return fmt.Errorf("pending uid index: %w", mapErr(err))
		}
	}
	if p.UID != "" {
		if err := idx.Put(pendingUIDKey(p.UID, p.ID), nil); err != nil {
			return fmt.Errorf("pending uid index: %w", mapErr(err))
		}
	}
	buf, err := encode(p)
	if err != nil {
		return err
	}
	opened := 0
	if p.Status == PendingOpen {
		opened++
	}
	if old != nil && old.Status == PendingOpen {
		opened--
	}
	if err := t.addCount(p.User, keyOpenPending, opened); err != nil {
		return err
	}
	if err := b.Put(u64(p.ID), buf); err != nil {
		return fmt.Errorf("put pending %d of %s: %w", p.ID, p.User, mapErr(err))
	}
	return nil
}

func getPending(b *bolt.Bucket, user string, id uint64) (Pending, error) {
	buf := b.Get(u64(id))
	if buf == nil {
		return Pending{}, fmt.Errorf("%w: pending item %d of %s", ErrNotFound, id, user)
	}
	var p Pending
	if err := decode(buf, &p); err != nil {
		return Pending{}, fmt.Errorf("pending item %d of %s: %w", id, user, err)
	}
	return p, nil
}

// PendingItem implements Tx.
func (t *tx) PendingItem(user string, id uint64) (Pending, error) {
	if err := t.check(false); err != nil {
		return Pending{}, err
	}
	b, p, err := t.userBucket(user, ubPending)
	if err != nil {
		return Pending{}, err
	}
	return getPending(b, p, id)
}

// PendingList implements Tx.
func (t *tx) PendingList(user string, openOnly bool) ([]Pending, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	b, u, err := t.userBucket(user, ubPending)
	if err != nil {
		return nil, err
	}
	var l []Pending
	err = b.ForEach(func(k, v []byte) error {
		var p Pending
		if err := decode(v, &p); err != nil {
			return fmt.Errorf("pending item %x of %s: %w", k, u, err)
		}
		if !openOnly || p.Status == PendingOpen {
			l = append(l, p)
		}
		return nil
	})
	return l, err
}

// PendingForUID implements Tx.
func (t *tx) PendingForUID(user, uid string) ([]Pending, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	idx, u, err := t.userBucket(user, ubPendingUID)
	if err != nil {
		return nil, err
	}
	b, _, err := t.userBucket(u, ubPending)
	if err != nil {
		return nil, err
	}
	prefix := append([]byte(uid), 0)
	var l []Pending
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue // a longer UID that contains NUL
		}
		p, err := getPending(b, u, binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, err
		}
		if p.Status == PendingOpen {
			l = append(l, p)
		}
	}
	return l, nil
}

// PutPending implements Tx.
func (t *tx) PutPending(p Pending) error {
	if err := t.check(true); err != nil {
		return err
	}
	if err := CheckPendingUID(p.UID); err != nil {
		return err
	}
	if err := validPendingStatus(p.Status); err != nil {
		return err
	}
	b, u, err := t.userBucket(p.User, ubPending)
	if err != nil {
		return err
	}
	old, err := getPending(b, u, p.ID)
	if err != nil {
		return err
	}
	p.User = u
	if p.Updated.IsZero() {
		p.Updated = now()
	}
	return t.putPending(b, p, &old)
}

// AddContact implements Tx.
func (t *tx) AddContact(c Contact) error {
	if err := t.check(true); err != nil {
		return err
	}
	c, err := NormalizeContact(c)
	if err != nil {
		return err
	}
	b, u, err := t.userBucket(c.User, ubContacts)
	if err != nil {
		return err
	}
	c.User = u
	if buf := b.Get([]byte(c.Address)); buf != nil {
		var old Contact
		if err := decode(buf, &old); err != nil {
			return fmt.Errorf("contact %s of %s: %w", c.Address, u, err)
		}
		var store bool
		if c, store = MergeContact(old, c); !store {
			return nil
		}
	}
	buf, err := encode(c)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(c.Address), buf); err != nil {
		return fmt.Errorf("put contact %s of %s: %w", c.Address, u, mapErr(err))
	}
	return nil
}

// Contacts implements Tx.
func (t *tx) Contacts(user string) ([]Contact, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	b, u, err := t.userBucket(user, ubContacts)
	if err != nil {
		return nil, err
	}
	var l []Contact
	err = b.ForEach(func(k, v []byte) error {
		var c Contact
		if err := decode(v, &c); err != nil {
			return fmt.Errorf("contact %s of %s: %w", k, u, err)
		}
		l = append(l, c)
		return nil
	})
	return l, err
}

// IsContact implements Tx.
func (t *tx) IsContact(user, addr string) (bool, error) {
	if err := t.check(false); err != nil {
		return false, err
	}
	b, _, err := t.userBucket(user, ubContacts)
	if err != nil {
		return false, err
	}
	a := address.Normalize(addr)
	return a != "" && b.Get([]byte(a)) != nil, nil
}

// historyPrefix is the key prefix of an event's history entries.
func historyPrefix(uid string) []byte { return append([]byte(uid), 0) }

// putHistory appends h to uid's history and drops the oldest entries
// beyond MaxHistory. Keys are UID NUL sequence, so an event's entries are
// adjacent and in order.
func putHistory(hb *bolt.Bucket, uid string, h HistoryEntry) error {
	if h.Time.IsZero() {
		h.Time = now()
	}
	seq, err := hb.NextSequence()
	if err != nil {
		return mapErr(err)
	}
	buf, err := encode(h)
	if err != nil {
		return err
	}
	if err := hb.Put(append(historyPrefix(uid), u64(seq)...), buf); err != nil {
		return mapErr(err)
	}
	return trimHistory(hb, uid, MaxHistory)
}

// trimHistory keeps the newest keep entries of uid's history. It counts
// without copying keys (a delivery to a busy event finds the history full
// every time, and usually drops one entry), then deletes the oldest, the
// first keys under the prefix, seeking again after each delete.
func trimHistory(hb *bolt.Bucket, uid string, keep int) error {
	prefix := historyPrefix(uid)
	c := hb.Cursor()
	n := 0
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	for ; n > keep; n-- {
		if k, _ := c.Seek(prefix); k == nil || !bytes.HasPrefix(k, prefix) {
			return nil
		}
		if err := c.Delete(); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// EventHistory implements Tx.
func (t *tx) EventHistory(user, uid string) ([]HistoryEntry, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	p, err := t.primary(user)
	if err != nil {
		return nil, err
	}
	ub := t.btx.Bucket(bucketUserdata).Bucket([]byte(p))
	if ub == nil {
		return nil, fmt.Errorf("%w: data of user %s missing (run check)", ErrNotFound, p)
	}
	hb := ub.Bucket(ubHistory)
	if hb == nil {
		return nil, nil
	}
	var out []HistoryEntry
	prefix := historyPrefix(uid)
	c := hb.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var h HistoryEntry
		if err := decode(v, &h); err != nil {
			return nil, fmt.Errorf("history of event %q of %s: %w", uid, p, err)
		}
		out = append(out, h)
	}
	return out, nil
}
