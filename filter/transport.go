package filter

import (
	"context"

	"imipd/calstore"
)

// What the transport adapters (filter/lmtp, filter/push) ask the Processor
// besides the processing call: the store stays behind these methods.

// RecipientValues returns the header value (HeaderValue) each envelope
// recipient of rep's message gets: its own results, so that each copy
// carries the outcomes of its recipients only (LMTP, docs/rules.md "The
// header"). A second address of a user already processed (an alias, a
// subaddress, the same address spelled differently) gets that user's
// results: Process reports each user once, under the first address. A
// recipient without results, or a message without calendar data, gets "".
func (p *Processor) RecipientValues(ctx context.Context, rep *Report, rcpts []string) map[string]string {
	values := make(map[string]string, len(rcpts))
	if rep == nil || !rep.Calendar {
		return values
	}
	byRcpt := map[string][]Result{}
	byUser := map[string][]Result{}
	for _, r := range rep.Results {
		byRcpt[r.Recipient] = append(byRcpt[r.Recipient], r)
		byUser[r.User] = append(byUser[r.User], r)
	}
	for _, rc := range rcpts {
		res := byRcpt[rc]
		if res == nil && len(byUser) > 0 {
			_ = p.Store.Read(ctx, func(tx calstore.Tx) error {
				if u, _, ok, err := p.resolveUser(tx, rc); ok && err == nil {
					res = byUser[u]
				}
				return nil
			})
		}
		values[rc] = HeaderValue(res)
	}
	return values
}

// MailboxOwner resolves the owner of a mailbox a message was delivered to
// (the push's user field) to a local user's primary address (LocalUser);
// ok is false when it is nobody's. named reports whether one of the
// addresses in rcpts (the recipients the message's header names) is that
// same user. An error means the store failed.
func (p *Processor) MailboxOwner(ctx context.Context, owner string, rcpts []string) (user string, ok, named bool, err error) {
	err = p.Store.Read(ctx, func(tx calstore.Tx) error {
		primary, found, err := p.LocalUser(tx, owner)
		if err != nil || !found {
			return err
		}
		user, ok = primary, true
		for _, c := range rcpts {
			other, found, err := p.LocalUser(tx, c)
			if err != nil {
				return err
			}
			if found && other == primary {
				named = true
				return nil
			}
		}
		return nil
	})
	return user, ok, named, err
}

// StoreReady is the readiness check of /healthz for a store: it fails
// while the store reports a fault (calstore.DB.Fault: a damaged page found
// since start, which stays until the file is restored and imipd restarted;
// or the last write failed in the store, until the next one commits), and
// when reading the user list fails.
func StoreReady(s calstore.Store) func(context.Context) error {
	return func(ctx context.Context) error {
		if f, ok := s.(interface{ Fault() error }); ok {
			if err := f.Fault(); err != nil {
				return err
			}
		}
		return s.Read(ctx, func(tx calstore.Tx) error { _, err := tx.Users(); return err })
	}
}
