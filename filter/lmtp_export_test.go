package filter

// IdleDownstream is the number of idle downstream connections in the
// proxy's pool (for the pool tests).
func (l *LMTPProxy) IdleDownstream() int { return l.pool.len() }

// ConnAlive is connAlive, the check of an idle downstream connection.
var ConnAlive = connAlive
