package filter

import (
	"context"

	"imipd/calstore"
)

// What the transport adapters ask of the store besides the processing call
// (each recipient's header value is the Report's: Report.HeaderFor): whose
// mailbox a push names (MailboxOwner) and whether the store is ready
// (StoreReady, for /healthz). The adapters never import calstore.

// MailboxOwner resolves the owner of a mailbox a message was delivered to
// (the push's user field) to a local user's primary address (localUser);
// ok is false when it is nobody's. named reports whether one of the
// addresses in rcpts (the recipients the message's header names) is that
// same user. An error means the store failed.
func (p *Processor) MailboxOwner(ctx context.Context, owner string, rcpts []string) (user string, ok, named bool, err error) {
	err = p.Store.Read(ctx, func(tx calstore.Tx) error {
		primary, found, err := p.localUser(tx, owner)
		if err != nil || !found {
			return err
		}
		user, ok = primary, true
		for _, c := range rcpts {
			other, found, err := p.localUser(tx, c)
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
// when reading the user list fails. A store with a check of its own
// answers with it (pgstore.Store.Ready: the database answers, and after a
// failed write takes a test write, so the instance turns ready when the
// database is back without waiting for mail).
func StoreReady(s calstore.Store) func(context.Context) error {
	if r, ok := s.(interface{ Ready(context.Context) error }); ok {
		return r.Ready
	}
	return func(ctx context.Context) error {
		if f, ok := s.(interface{ Fault() error }); ok {
			if err := f.Fault(); err != nil {
				return err
			}
		}
		return s.Read(ctx, func(tx calstore.Tx) error { _, err := tx.Users(); return err })
	}
}
