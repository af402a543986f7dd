package outbox

import "time"

// OnRound has s call f after each round of Run with the time the round
// went by, so that tests wait for a round instead of sleeping. Set it
// before Run.
func OnRound(s *Sender, f func(now time.Time)) { s.afterRound = f }

// SetLease sets how long s's claims hold an item, and has s call
// afterRenew after each renewal of a claim with the new NextAttempt. Set
// it before Run.
func SetLease(s *Sender, d time.Duration, afterRenew func(next time.Time)) {
	s.lease, s.afterRenew = d, afterRenew
}

// MessageID is the Message-ID Compose gives an item.
var MessageID = messageID
