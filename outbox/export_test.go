package outbox

import "time"

// OnRound has s call f after each round of Run with the time the round
// went by, so that tests wait for a round instead of sleeping. Set it
// before Run.
func OnRound(s *Sender, f func(now time.Time)) { s.afterRound = f }
