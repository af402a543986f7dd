package filter

import "time"

// OnOutboxRound has o call f after each round of Run with the time the
// round went by, so that tests wait for a round instead of sleeping. Set
// it before Run.
func OnOutboxRound(o *Outbox, f func(now time.Time)) { o.afterRound = f }
