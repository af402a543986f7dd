package outbox

import (
	"crypto/tls"
	"time"
)

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

// Tuning is what of Options the daemon leaves at its defaults.
type Tuning struct {
	Hostname                                  string
	TLSConfig                                 *tls.Config
	MinBackoff, MaxBackoff, MaxAge, Retention time.Duration
}

// Tune is o with the fields of t that are set.
func Tune(o Options, t Tuning) Options {
	if t.Hostname != "" {
		o.hostname = t.Hostname
	}
	if t.TLSConfig != nil {
		o.tlsConfig = t.TLSConfig
	}
	for _, f := range []struct{ v, set *time.Duration }{
		{&o.minBackoff, &t.MinBackoff}, {&o.maxBackoff, &t.MaxBackoff},
		{&o.maxAge, &t.MaxAge}, {&o.retention, &t.Retention},
	} {
		if *f.set != 0 {
			*f.v = *f.set
		}
	}
	return o
}
