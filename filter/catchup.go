package filter

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"imipd/calstore"
)

// AliveInterval is how often a running imipd records its sign of life in
// the store (calstore Tx.SetAlive). After a crash the downtime recorded at
// the next start begins at the last one, so mail that passed in the last
// interval before the crash is caught up too.
const AliveInterval = time.Minute

// RecordStart is imipd's first write at start (README "Catching up after
// downtime"): the stretch from the last sign of life to now becomes a
// downtime for `imipctl catchup`, and now the sign of life. A store imipd
// never ran on has no sign of life and gets no downtime (ok false).
func RecordStart(ctx context.Context, s calstore.Store, now time.Time) (d calstore.Downtime, ok bool, err error) {
	err = s.Write(ctx, func(tx calstore.Tx) error {
		last, err := tx.Alive()
		if err != nil {
			return err
		}
		if !last.IsZero() && last.Before(now) {
			l, err := tx.Downtimes()
			if err != nil {
				return err
			}
			d, ok = calstore.Downtime{From: last, To: now}, true
			if err := tx.PutDowntimes(append(l, d)); err != nil {
				return err
			}
		}
		return tx.SetAlive(now)
	})
	if err != nil {
		return calstore.Downtime{}, false, fmt.Errorf("record start: %w", err)
	}
	return d, ok, nil
}

// KeepAlive records now() as the sign of life every interval until ctx
// ends, and once more then (a clean stop: the next downtime begins at the
// stop). A failed write is logged and tried again at the next tick.
func KeepAlive(ctx context.Context, s calstore.Store, interval time.Duration, now func() time.Time, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	alive := func(ctx context.Context) {
		if err := s.Write(ctx, func(tx calstore.Tx) error { return tx.SetAlive(now()) }); err != nil {
			log.Warn("recording the sign of life", "err", err)
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			alive(sctx)
			cancel()
			return
		case <-t.C:
			alive(ctx)
		}
	}
}
