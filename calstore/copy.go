package calstore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// Copy copies everything in src into dst, which must hold no users and no
// outbox items (imipctl migrate: bbolt to PostgreSQL and back). It runs in
// one read transaction of src and one write transaction of dst, so dst
// gets all of it or nothing. What a store assigns is assigned anew:
// pending and outbox IDs, and change counters (each user's restarts from
// the copy: CalDAV clients resynchronise once). Budgets are not copied
// (they expire within their window). Dump of both stores compares what
// is copied.
func Copy(ctx context.Context, src, dst Store) error {
	return src.Read(ctx, func(from Tx) error {
		return dst.Write(ctx, func(to Tx) error {
			if l, err := to.Users(); err != nil || len(l) > 0 {
				return fmt.Errorf("%w: the destination holds %d users (want an empty store)%v", ErrExists, len(l), errSuffix(err))
			}
			if l, err := to.Outbox(); err != nil || len(l) > 0 {
				return fmt.Errorf("%w: the destination holds %d outbox items (want an empty store)%v", ErrExists, len(l), errSuffix(err))
			}
			return copyAll(from, to)
		})
	})
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

// copyAll copies inside the two transactions.
func copyAll(from, to Tx) error {
	users, err := from.Users()
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := copyUser(from, to, u); err != nil {
			return fmt.Errorf("user %s: %w", u.Address, err)
		}
	}
	log, err := from.Log("", 0)
	if err != nil {
		return err
	}
	for _, e := range slices.Backward(log) { // oldest first: the order of adding
		if err := to.AddLog(e); err != nil {
			return fmt.Errorf("log of %s: %w", e.User, err)
		}
	}
	items, err := from.Outbox()
	if err != nil {
		return err
	}
	for _, o := range items {
		n, err := to.Enqueue(o)
		if err != nil {
			return fmt.Errorf("outbox item %d: %w", o.ID, err)
		}
		o.ID = n.ID
		if err := to.PutOutbox(o); err != nil {
			return fmt.Errorf("outbox item %d: %w", o.ID, err)
		}
	}
	at, err := from.Alive()
	if err != nil {
		return err
	}
	if !at.IsZero() {
		if err := to.SetAlive(at); err != nil {
			return err
		}
	}
	dts, err := from.Downtimes()
	if err != nil {
		return err
	}
	return to.PutDowntimes(dts)
}

// eventsWithHistory is user's events, each with its History filled in
// (Tx.Events leaves it out), as Copy writes them and Dump compares them.
func eventsWithHistory(tx Tx, user string) ([]Event, error) {
	evs, err := tx.Events(user)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		if evs[i].History, err = tx.EventHistory(user, evs[i].UID); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

func copyUser(from, to Tx, u User) error {
	if err := to.PutUser(u); err != nil {
		return err
	}
	evs, err := eventsWithHistory(from, u.Address)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if err := to.PutEvent(u.Address, ev); err != nil {
			return err
		}
	}
	_, _, deleted, err := from.Changes(u.Address, 0)
	if err != nil {
		return err
	}
	for _, uid := range deleted { // remembered for sync-collection clients
		if err := to.PutEvent(u.Address, Event{UID: uid}); err != nil {
			return err
		}
		if err := to.DeleteEvent(u.Address, uid); err != nil {
			return err
		}
	}
	ps, err := from.PendingList(u.Address, false)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if _, err := to.AddPending(p); err != nil {
			return err
		}
	}
	cs, err := from.Contacts(u.Address)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := to.AddContact(c); err != nil {
			return err
		}
	}
	return nil
}

// Dump writes what Copy copies, one JSON value per line, without what a
// store assigns (IDs, change counters): two stores with equal dumps hold
// the same calendars, logs, pending items, contacts and outbox.
func Dump(ctx context.Context, s Store, w io.Writer) error {
	enc := json.NewEncoder(w)
	return s.Read(ctx, func(tx Tx) error {
		users, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range users {
			if err := enc.Encode(u); err != nil {
				return err
			}
			evs, err := eventsWithHistory(tx, u.Address)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				ev.Change = 0
				if err := enc.Encode(struct {
					Event
					History []HistoryEntry
				}{ev, ev.History}); err != nil {
					return err
				}
			}
			_, _, deleted, err := tx.Changes(u.Address, 0)
			if err != nil {
				return err
			}
			ps, err := tx.PendingList(u.Address, false)
			if err != nil {
				return err
			}
			for i := range ps {
				ps[i].ID = 0
			}
			cs, err := tx.Contacts(u.Address)
			if err != nil {
				return err
			}
			if err := enc.Encode([]any{deleted, ps, cs}); err != nil {
				return err
			}
		}
		log, err := tx.Log("", 0)
		if err != nil {
			return err
		}
		items, err := tx.Outbox()
		if err != nil {
			return err
		}
		for i := range items {
			items[i].ID = 0
		}
		at, err := tx.Alive()
		if err != nil {
			return err
		}
		dts, err := tx.Downtimes()
		if err != nil {
			return err
		}
		return enc.Encode([]any{log, items, at, dts})
	})
}
