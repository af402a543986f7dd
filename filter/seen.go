package filter

import (
	"context"
	"errors"

	"imipd/calstore"
	"imipd/itip"
)

// seenBefore is the once-only check in a read transaction, before the
// write: a message processed before for the user (a retried delivery, the
// same message by the milter and the push endpoint) gets its earlier
// outcome without a write transaction, so without a commit and its fsync.
// The write transaction checks again (applyInTx): this is only the fast
// path.
func (p *Processor) seenBefore(ctx context.Context, user, key string) (itip.Result, bool, error) {
	var res itip.Result
	seen := false
	err := p.Store.Read(ctx, func(tx calstore.Tx) error {
		prev, err := tx.LogEntry(user, key)
		switch {
		case err == nil:
			res, seen = itip.Result{Outcome: itip.Outcome(prev.Outcome), Reason: prev.Reason}, true
		case !errors.Is(err, calstore.ErrNotFound):
			return err
		}
		return nil
	})
	return res, seen, err
}
