package filter

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-ical"

	"imipd/calstore"
	"imipd/itip"
	"imipd/itip/ics"
)

// storedLimits bound decoding of the store's own objects (ics.StoredLimits).
var storedLimits = ics.StoredLimits()

// errStoredUnreadable marks a stored event that does not decode: damage to
// one user's copy of one event (written by an older imipd, or by hand), not
// a failure of the store.
var errStoredUnreadable = errors.New("stored event unreadable")

// loadEvent reads and decodes a user's copy of a UID; cal is nil when there
// is none (ev is then a new record for uid). With a cache (nil: none), a
// calendar decoded or written before from the same bytes is reused: the
// caller must not change it (itip.Apply does not).
func loadEvent(tx calstore.EventTx, user, uid string, cache *calCache) (ev calstore.Event, cal *ical.Calendar, err error) {
	ev, err = tx.Event(user, uid)
	if errors.Is(err, calstore.ErrNotFound) {
		return calstore.Event{UID: uid}, nil, nil
	}
	if err != nil {
		return ev, nil, err
	}
	if cal = cache.get(user, uid, ev.Data); cal != nil {
		return ev, cal, nil
	}
	if cal, err = ics.Decode(ev.Data, storedLimits); err != nil {
		return ev, nil, fmt.Errorf("stored event %s of %s: %w: %w", uid, user, errStoredUnreadable, err)
	}
	cache.put(user, uid, ev.Data, cal)
	return ev, cal, nil
}

// ensureUser returns the itip view of a user, creating the record of a
// recipient at a local domain on first use (docs/rules.md "Users and addresses"); a
// user without a policy of their own gets the server default.
func (p *Processor) ensureUser(tx calstore.Tx, addr string, now time.Time) (itip.User, error) {
	u, err := tx.User(addr)
	if errors.Is(err, calstore.ErrNotFound) {
		u = calstore.User{Address: addr, Created: now}
		err = tx.PutUser(u)
	}
	if err != nil {
		return itip.User{}, err
	}
	return p.UserView(u), nil
}

// origin is the message a decision came from, kept with pending items so
// the user can decide later.
type origin struct {
	From, Method, MessageID string
	Data                    []byte // the iTIP object as received
	Outgoing                bool
}

// commit writes what a decision changed for one user and UID, inside the
// caller's transaction: the stored object with a history entry, open pending
// items made obsolete (except keep), new pending items, and the outgoing
// messages into the outbox. Process and Respond both end here.
// old is the stored copy the decision was taken on (nil when there was none).
// encoded, when not nil, is ics.Marshal(res.Cal), which the caller needed
// too (Processor.record caches the calendar under the bytes written).
func commit(tx calstore.Tx, user string, ev calstore.Event, old *ical.Calendar, res itip.Result, h calstore.HistoryEntry, o origin, keep uint64, now time.Time, encoded []byte) error {
	exists := old != nil
	if res.Cal != nil || res.ReplyStamps != nil || (exists && res.Note != "") {
		if res.Cal != nil {
			ev.Data = encoded
			if ev.Data == nil {
				ev.Data = ics.Marshal(res.Cal)
			}
			if err := learnParties(tx, user, res.Cal, old); err != nil {
				return err
			}
		}
		if res.ReplyStamps != nil {
			ev.ReplyStamps = res.ReplyStamps
		}
		h.Time = now
		ev.History = append(ev.History, h)
		ev.Updated = now
		if err := tx.PutEvent(user, ev); err != nil {
			return err
		}
	}
	if res.Obsolete != "" {
		open, err := tx.PendingForUID(user, ev.UID)
		if err != nil {
			return err
		}
		for _, pi := range open {
			if pi.ID == keep || res.ObsoleteInstance != "" && pi.RecurrenceID != res.ObsoleteInstance {
				continue
			}
			pi.Status, pi.Resolution, pi.Updated = calstore.PendingObsolete, string(res.Obsolete), now
			if err := tx.PutPending(pi); err != nil {
				return err
			}
		}
	}
	if err := supersede(tx, user, ev.UID, res.Supersede, o, keep, now); err != nil {
		return err
	}
	for _, pi := range res.Pending {
		if _, err := tx.AddPending(calstore.Pending{
			User: user, UID: ev.UID, RecurrenceID: pi.RecurrenceID, Kind: string(pi.Kind), Reason: string(pi.Reason),
			Summary: pi.Summary, Actions: pi.Actions, Attendee: pi.Attendee,
			From: o.From, Method: o.Method, MessageID: o.MessageID, Data: o.Data, Outgoing: o.Outgoing,
			Created: now, Updated: now,
		}); err != nil {
			return err
		}
	}
	return enqueue(tx, user, ev.UID, res.Send, now)
}

// supersede carries out itip.Result.Supersede: each open invitation or
// rescheduled item of the user for uid that an update describes again is
// closed as "superseded" and opened again, same kind, with the new
// description and the message o that changed the event (README "Pending
// items stay current"). The new item gets a new ID: an answer to the old
// one is refused (errNotOpen), so nobody decides on the old description.
func supersede(tx calstore.Tx, user, uid string, items []itip.PendingItem, o origin, keep uint64, now time.Time) error {
	if len(items) == 0 {
		return nil
	}
	open, err := tx.PendingForUID(user, uid)
	if err != nil {
		return err
	}
	for _, pi := range open {
		if pi.ID == keep || pi.Status != calstore.PendingOpen || (itip.Kind(pi.Kind) != itip.KindInvitation && itip.Kind(pi.Kind) != itip.KindRescheduled) {
			continue
		}
		i := slices.IndexFunc(items, func(s itip.PendingItem) bool { return s.RecurrenceID == pi.RecurrenceID })
		if i < 0 {
			continue
		}
		pi.Status, pi.Resolution, pi.Updated = calstore.PendingObsolete, "superseded", now
		if err := tx.PutPending(pi); err != nil {
			return err
		}
		if _, err := tx.AddPending(calstore.Pending{
			User: user, UID: uid, RecurrenceID: pi.RecurrenceID, Kind: pi.Kind, Reason: pi.Reason,
			Summary: items[i].Summary, Actions: itip.ActionsFor(itip.Kind(pi.Kind)), Attendee: pi.Attendee,
			From: o.From, Method: o.Method, MessageID: o.MessageID, Data: o.Data, Outgoing: o.Outgoing,
			Created: now, Updated: now,
		}); err != nil {
			return err
		}
	}
	return nil
}
