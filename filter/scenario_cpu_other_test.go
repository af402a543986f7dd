//go:build !unix

package filter_test

import "time"

// cpuTime is not measured where getrusage is missing: the budget check
// passes trivially there.
func cpuTime() time.Duration { return 0 }

// peakRSS is not measured where getrusage is missing.
func peakRSS() int64 { return 0 }
