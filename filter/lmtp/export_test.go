package lmtp

import "time"

// IdleDownstream is the number of idle downstream connections in the
// proxy's pool (for the pool tests).
func (l *Proxy) IdleDownstream() int { return l.pool.len() }

// ConnAlive is connAlive, the check of an idle downstream connection.
var ConnAlive = connAlive

// ReapPool runs l's reaping of idle downstream connections now, as its
// timer would, so that tests move the clock and reap instead of sleeping.
func ReapPool(l *Proxy) { l.pool.reap() }

// Tuned is opt with the message cap and the processing timeout the daemon
// leaves at their defaults (zero: the default).
func Tuned(opt Options, maxMessage int64, processTimeout time.Duration) Options {
	opt.maxMessage, opt.processTimeout = maxMessage, processTimeout
	return opt
}
