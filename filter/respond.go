package filter

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/calstore"
	"imipd/itip"
	"imipd/itip/ics"
)

// errNotOpen is returned when a pending item was already decided or made
// obsolete.
var errNotOpen = errors.New("filter: pending item is not open")

// RespondRequest is a user's decision on one item: an open pending item,
// a stored event or one of its occurrences. Name the item one way:
//   - Pending (with UID and Instance empty): an open pending item's
//     number (imipctl respond);
//   - UID, with RecurrenceID for one occurrence in itip's RECURRENCE-ID
//     form ("" = the whole event): a calendar app's answer (CalDAV);
//   - Ref and Instance: an occurrence as the user typed it (imipctl
//     respond -instance): Ref is an open pending item's number or the
//     event's UID, Instance what itip.ParseInstance reads.
type RespondRequest struct {
	User          string
	Pending       uint64
	UID           string
	RecurrenceID  string
	Ref, Instance string
	// Action is what the user decided: accept, tentative or decline for an
	// event or occurrence; for a pending item also its kind's other
	// actions (itip.Respond: apply, ignore, ...).
	Action string
	// As, when not empty, is a delegate of the user deciding on the user's
	// behalf (docs/rules.md "Working on behalf of").
	As string
}

// Answered is what Respond did: the decision, and the event and occurrence
// it was about (for Ref and Instance, as resolved; for a pending item, the
// UID is not filled in).
type Answered struct {
	Result       itip.Result
	UID          string
	RecurrenceID string
}

// Respond is the one call for a user's decision (docs/rules.md "Admin
// CLI": respond; a calendar app's PARTSTAT): it records the decision and
// queues the iTIP messages it sends, and OnEnqueue wakes the sender. See
// RespondRequest for the ways to name the item.
func (p *Processor) Respond(ctx context.Context, r RespondRequest) (Answered, error) {
	switch {
	case r.Instance != "":
		return p.respondInstance(ctx, r.User, r.Ref, r.Instance, r.Action, r.As)
	case r.UID != "":
		res, err := p.answer(ctx, r.User, r.UID, r.RecurrenceID, r.Action, r.As)
		return Answered{Result: res, UID: r.UID, RecurrenceID: r.RecurrenceID}, err
	default:
		res, err := p.respondPending(ctx, r.User, r.Pending, r.Action, r.As)
		return Answered{Result: res}, err
	}
}

// respondPending records the user's decision on pending item id and queues
// the iTIP messages it sends. One transaction: the item, the event and the
// outbox change together.
func (p *Processor) respondPending(ctx context.Context, user string, id uint64, action, as string) (itip.Result, error) {
	now := p.now()
	var res itip.Result
	err := p.Store.Write(ctx, func(tx calstore.Tx) error {
		pi, err := tx.PendingItem(user, id)
		if err != nil {
			return fmt.Errorf("pending %d of %s: %w", id, user, err)
		}
		if pi.Status != calstore.PendingOpen {
			return fmt.Errorf("pending %d of %s is %s: %w", id, user, pi.Status, errNotOpen)
		}
		u, err := p.ensureUser(tx, pi.User, now)
		if err != nil {
			return err
		}
		cal, err := ics.Decode(pi.Data, p.Cfg.ICS)
		if err != nil {
			return fmt.Errorf("pending %d: stored message: %w", id, err)
		}
		msg, err := itip.ParseMessage(cal)
		if err != nil && !(action == "ignore" && errors.Is(err, itip.ErrInvalid)) {
			// A message kept before a stricter intake rule (itip/validate.go)
			// can no longer be answered, but it can still be dismissed.
			return fmt.Errorf("pending %d: stored message: %w", id, err)
		}
		ev, stored, err := loadEvent(tx, pi.User, pi.UID, nil)
		if err != nil {
			return err
		}
		if itip.Kind(pi.Kind) == itip.KindHeld && action == "apply" {
			// The user vouches for the message: apply it as if every gate
			// passed; the ordering rules still hold.
			res = itip.Apply(itip.Input{Msg: msg, Stored: stored, ReplyStamps: ev.ReplyStamps, User: u,
				From: pi.From, Now: now, Outgoing: pi.Outgoing, Force: true})
		} else {
			res, err = itip.Respond(itip.Decision{Kind: itip.Kind(pi.Kind), Action: action, RecurrenceID: pi.RecurrenceID,
				Attendee: pi.Attendee, Msg: msg, Stored: stored, User: u, Now: now, SentBy: address.Normalize(as)})
			if err != nil {
				return err
			}
		}
		h := calstore.HistoryEntry{Method: "respond", Outcome: string(res.Outcome), Reason: action, Summary: fmt.Sprintf("pending %d (%s): %s", id, pi.Kind, action)}
		o := origin{From: pi.From, Method: pi.Method, MessageID: pi.MessageID, Data: pi.Data, Outgoing: pi.Outgoing}
		if err := commit(tx, pi.User, ev, stored, res, h, o, pi.ID, now, nil); err != nil {
			return err
		}
		pi.Status, pi.Resolution, pi.Updated = calstore.PendingDone, action, now
		return tx.PutPending(pi)
	})
	if err == nil && len(res.Send) > 0 && p.OnEnqueue != nil {
		p.OnEnqueue()
	}
	return res, err
}

// answer sets the user's PARTSTAT on a stored event (whole event, or the
// instance rid in itip's RECURRENCE-ID form: an occurrence of the series
// without an override gets one) with action accept, tentative or decline,
// for a calendar app's write and for `imipctl respond -instance`. It reuses
// the decision of `imipctl respond`: the open invitation or rescheduled
// item of the UID and instance is decided with respondPending; when none is
// open (the user answered before and changes their mind), the same
// itip.Respond decision is taken on the stored copy. Either way the REPLY
// goes to the outbox.
func (p *Processor) answer(ctx context.Context, user, uid, rid, action, as string) (itip.Result, error) {
	if _, ok := map[string]bool{"accept": true, "tentative": true, "decline": true}[action]; !ok {
		return itip.Result{}, fmt.Errorf("%w: %q", itip.ErrAction, action)
	}
	var id uint64
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		open, err := tx.PendingForUID(user, uid)
		for _, pi := range open {
			if (itip.Kind(pi.Kind) == itip.KindInvitation || itip.Kind(pi.Kind) == itip.KindRescheduled) && pi.RecurrenceID == rid {
				id = pi.ID
			}
		}
		return err
	})
	if err != nil {
		return itip.Result{}, err
	}
	if id != 0 {
		res, err := p.respondPending(ctx, user, id, action, as)
		if !errors.Is(err, errNotOpen) {
			return res, err
		}
		// Decided meanwhile: answer on the stored copy.
	}
	now := p.now()
	var res itip.Result
	err = p.Store.Write(ctx, func(tx calstore.Tx) error {
		u, err := p.ensureUser(tx, user, now)
		if err != nil {
			return err
		}
		ev, stored, err := loadEvent(tx, u.Address, uid, nil)
		if err != nil {
			return err
		}
		if stored == nil {
			return fmt.Errorf("event %s of %s: %w", uid, u.Address, calstore.ErrNotFound)
		}
		req, err := ics.Decode(ev.Data, storedLimits)
		if err != nil {
			return err
		}
		req.Props.SetText(ical.PropMethod, string(itip.Request))
		msg, err := itip.ParseMessage(req)
		if err != nil {
			return fmt.Errorf("event %s of %s: %w", uid, u.Address, err)
		}
		res, err = itip.Respond(itip.Decision{Kind: itip.KindInvitation, Action: action, RecurrenceID: rid, Msg: msg, Stored: stored, User: u, Now: now,
			SentBy: address.Normalize(as)})
		if err != nil {
			return err
		}
		summary := "answered: " + action
		if rid != "" {
			summary += " (occurrence " + rid + ")"
		}
		h := calstore.HistoryEntry{Method: "respond", Outcome: string(res.Outcome), Reason: action, Summary: summary}
		return commit(tx, u.Address, ev, stored, res, h, origin{}, 0, now, nil)
	})
	if err == nil && len(res.Send) > 0 && p.OnEnqueue != nil {
		p.OnEnqueue()
	}
	return res, err
}

// respondInstance answers one occurrence of an event (`imipctl respond
// -instance`): ref is an open pending item's number or the event's UID,
// instance the occurrence as the user typed it (itip.ParseInstance). The
// decision is answer's, the one path a calendar app's answer takes too. It
// returns the event's UID and the occurrence's RECURRENCE-ID key.
func (p *Processor) respondInstance(ctx context.Context, user, ref, instance, action, as string) (Answered, error) {
	uid := ref
	var data []byte
	var u calstore.User
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		if u, err = tx.User(user); err != nil {
			return fmt.Errorf("user %s: %w", user, err)
		}
		if id, err := strconv.ParseUint(ref, 10, 64); err == nil {
			if pi, err := tx.PendingItem(user, id); err == nil {
				uid = pi.UID
			} else if !errors.Is(err, calstore.ErrNotFound) {
				return err
			}
		}
		ev, err := tx.Event(user, uid)
		if err != nil {
			return fmt.Errorf("event %s of %s: %w", uid, user, err)
		}
		data = ev.Data
		return nil
	})
	if err != nil {
		return Answered{UID: uid}, err
	}
	cal, err := ics.Decode(data, storedLimits)
	if err != nil {
		return Answered{UID: uid}, fmt.Errorf("event %s of %s: %w", uid, user, err)
	}
	if uv := p.UserView(u); itip.OrganizedBy(cal, &uv) {
		return Answered{UID: uid}, fmt.Errorf("%w: %s is your own event (you organize it): there is nothing to answer", itip.ErrAction, uid)
	}
	rid, err := itip.ParseInstance(instance, cal)
	if err != nil {
		return Answered{UID: uid}, err
	}
	res, err := p.answer(ctx, user, uid, rid, action, as)
	return Answered{Result: res, UID: uid, RecurrenceID: rid}, err
}
