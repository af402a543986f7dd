package filter

import "time"

// OnOutboxRound has o call f after each round of Run with the time the
// round went by, so that tests wait for a round instead of sleeping. Set
// it before Run.
func OnOutboxRound(o *Outbox, f func(now time.Time)) { o.afterRound = f }

// ReapLMTPPool runs l's reaping of idle downstream connections now, as its
// timer would, so that tests move the clock and reap instead of sleeping.
func ReapLMTPPool(l *LMTPProxy) { l.pool.reap() }
