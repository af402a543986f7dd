package calstore

import (
	"fmt"
	"time"
)

// Meta keys of the catch-up record (README "Catching up after downtime").
var (
	keyAlive     = []byte("alive")     // u64 Unix nanoseconds: imipd's last recorded sign of life
	keyDowntimes = []byte("downtimes") // JSON []Downtime, oldest first
)

// MaxDowntimes is how many downtimes the store keeps: PutDowntimes merges
// the oldest into one until the list fits, so a catch-up that never runs
// costs a bounded record and still covers every stretch.
const MaxDowntimes = 64

// Downtime is a stretch of time in which imipd did not run: from its last
// sign of life to its next start. Mail that passed then is untagged until a
// catch-up processes it.
type Downtime struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Alive implements Tx.
func (t *tx) Alive() (time.Time, error) {
	if err := t.check(false); err != nil {
		return time.Time{}, err
	}
	n := readU64(t.btx.Bucket(bucketMeta).Get(keyAlive))
	if n == 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, int64(n)).UTC(), nil
}

// SetAlive implements Tx.
func (t *tx) SetAlive(at time.Time) error {
	if err := t.check(true); err != nil {
		return err
	}
	return t.btx.Bucket(bucketMeta).Put(keyAlive, u64(nanos(at)))
}

// Downtimes implements Tx.
func (t *tx) Downtimes() ([]Downtime, error) {
	if err := t.check(false); err != nil {
		return nil, err
	}
	buf := t.btx.Bucket(bucketMeta).Get(keyDowntimes)
	if buf == nil {
		return nil, nil
	}
	var l []Downtime
	if err := decode(buf, &l); err != nil {
		return nil, fmt.Errorf("downtimes: %w", err)
	}
	return l, nil
}

// PutDowntimes implements Tx.
func (t *tx) PutDowntimes(l []Downtime) error {
	if err := t.check(true); err != nil {
		return err
	}
	meta := t.btx.Bucket(bucketMeta)
	if len(l) == 0 {
		return meta.Delete(keyDowntimes)
	}
	l, err := NormalizeDowntimes(l)
	if err != nil {
		return err
	}
	buf, err := encode(l)
	if err != nil {
		return err
	}
	return meta.Put(keyDowntimes, buf)
}

// NormalizeDowntimes checks a list of downtimes (a stretch ending before
// it starts is ErrInvalid) and returns a copy with the oldest merged into
// one until at most MaxDowntimes remain (Tx.PutDowntimes).
func NormalizeDowntimes(l []Downtime) ([]Downtime, error) {
	for _, d := range l {
		if d.To.Before(d.From) {
			return nil, fmt.Errorf("%w: downtime ends (%v) before it starts (%v)", ErrInvalid, d.To, d.From)
		}
	}
	l = append([]Downtime(nil), l...)
	for len(l) > MaxDowntimes {
		l[1].From = l[0].From
		l = l[1:]
	}
	return l, nil
}
