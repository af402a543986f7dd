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
func (p *Processor) seenBefore(ctx context.Context, user, key string) (res itip.Result, seen bool, err error) {
	err = p.Store.Read(ctx, func(tx calstore.Tx) error {
		res, seen, err = logged(tx, user, key)
		return err
	})
	return res, seen, err
}

// logged is the once-only lookup: the outcome recorded for the message's
// key and the user, if any (a retried delivery gets the same answer again).
func logged(tx calstore.LogTx, user, key string) (itip.Result, bool, error) {
	prev, err := tx.LogEntry(user, key)
	switch {
	case err == nil:
		return itip.Result{Outcome: itip.Outcome(prev.Outcome), Reason: itip.Reason(prev.Reason)}, true, nil
	case errors.Is(err, calstore.ErrNotFound):
		return itip.Result{}, false, nil
	}
	return itip.Result{}, false, err
}
