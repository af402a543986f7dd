package filter

import (
	"context"
	"errors"
	"fmt"

	"imipd/calstore"
	"imipd/itip"
	"imipd/itip/ics"
)

// ErrNotOpen is returned when a pending item was already decided or made
// obsolete.
var ErrNotOpen = errors.New("filter: pending item is not open")

// Respond records the user's decision on pending item id and queues the iTIP
// messages it sends (SPEC "Admin CLI": respond). One transaction: the item,
// the event and the outbox change together.
func (p *Processor) Respond(ctx context.Context, user string, id uint64, action string) (itip.Result, error) {
	now := p.now()
	var res itip.Result
	err := p.Store.Write(ctx, func(tx calstore.Tx) error {
		pi, err := tx.PendingItem(user, id)
		if err != nil {
			return fmt.Errorf("pending %d of %s: %w", id, user, err)
		}
		if pi.Status != calstore.PendingOpen {
			return fmt.Errorf("pending %d of %s is %s: %w", id, user, pi.Status, ErrNotOpen)
		}
		u, err := p.userOf(tx, pi.User)
		if err != nil {
			return err
		}
		cal, err := ics.Decode(pi.Data, p.Cfg.ICS)
		if err != nil {
			return fmt.Errorf("pending %d: stored message: %w", id, err)
		}
		msg, err := itip.ParseMessage(cal)
		if err != nil {
			return fmt.Errorf("pending %d: stored message: %w", id, err)
		}
		ev, err := tx.Event(pi.User, pi.UID)
		exists := err == nil
		if err != nil && !errors.Is(err, calstore.ErrNotFound) {
			return err
		}
		var in itip.Input
		in.Msg, in.User, in.From, in.Now, in.Outgoing = msg, u, pi.From, now, pi.Outgoing
		if exists {
			if in.Stored, err = ics.Decode(ev.Data, storedLimits); err != nil {
				return fmt.Errorf("stored event %s of %s: %w", pi.UID, pi.User, err)
			}
			in.ReplyStamps = ev.ReplyStamps
		}
		if pi.Kind == itip.KindHeld && action == "apply" {
			// The user vouches for the message: apply it as if every gate
			// passed; the ordering rules still hold.
			in.Force = true
			res = itip.Apply(in)
		} else {
			res, err = itip.Respond(itip.Decision{Kind: pi.Kind, Action: action, RecurrenceID: pi.RecurrenceID,
				Attendee: pi.Attendee, Msg: msg, Stored: in.Stored, User: u, Now: now})
			if err != nil {
				return err
			}
		}
		if res.Cal != nil || res.ReplyStamps != nil {
			if !exists {
				ev = calstore.Event{UID: pi.UID}
			}
			if res.Cal != nil {
				ev.Data = ics.Marshal(res.Cal)
				if err := learnParties(tx, pi.User, res.Cal); err != nil {
					return err
				}
			}
			if res.ReplyStamps != nil {
				ev.ReplyStamps = res.ReplyStamps
			}
			ev.History = append(ev.History, calstore.HistoryEntry{Time: now, Method: "respond", Outcome: string(res.Outcome), Reason: action, Summary: fmt.Sprintf("pending %d (%s): %s", id, pi.Kind, action)})
			ev.Updated = now
			if err := tx.PutEvent(pi.User, ev); err != nil {
				return err
			}
		}
		if res.Obsolete != "" {
			open, err := tx.PendingForUID(pi.User, pi.UID)
			if err != nil {
				return err
			}
			for _, o := range open {
				if o.ID == pi.ID {
					continue
				}
				o.Status, o.Resolution, o.Updated = calstore.PendingObsolete, res.Obsolete, now
				if err := tx.PutPending(o); err != nil {
					return err
				}
			}
		}
		for _, np := range res.Pending {
			if _, err := tx.AddPending(calstore.Pending{User: pi.User, UID: pi.UID, RecurrenceID: np.RecurrenceID, Kind: np.Kind,
				Reason: np.Reason, Summary: np.Summary, Actions: np.Actions, From: pi.From, Method: pi.Method,
				MessageID: pi.MessageID, Data: pi.Data, Attendee: np.Attendee, Created: now, Updated: now}); err != nil {
				return err
			}
		}
		if err := enqueue(tx, pi.User, pi.UID, res.Send, now); err != nil {
			return err
		}
		pi.Status, pi.Resolution, pi.Updated = calstore.PendingDone, action, now
		return tx.PutPending(pi)
	})
	return res, err
}

// storedLimits bound decoding of the store's own objects: generous, since
// they were checked when they arrived, but still finite.
var storedLimits = ics.Limits{MaxBytes: 64 << 20, MaxComponents: 100000, MaxProperties: 100000, MaxAttendees: 100000, MaxRecurrenceDates: 100000}
