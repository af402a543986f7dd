package lmtp

// IdleDownstream is the number of idle downstream connections in the
// proxy's pool (for the pool tests).
func (l *Proxy) IdleDownstream() int { return l.pool.len() }

// ConnAlive is connAlive, the check of an idle downstream connection.
var ConnAlive = connAlive

// ReapPool runs l's reaping of idle downstream connections now, as its
// timer would, so that tests move the clock and reap instead of sleeping.
func ReapPool(l *Proxy) { l.pool.reap() }
