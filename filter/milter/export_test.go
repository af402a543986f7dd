package milter

import "time"

// Tuned is opt with the message cap and the processing timeout the daemon
// leaves at their defaults (zero: the default).
func Tuned(opt Options, maxMessage int64, processTimeout time.Duration) Options {
	opt.maxMessage, opt.processTimeout = maxMessage, processTimeout
	return opt
}
