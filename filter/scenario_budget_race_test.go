//go:build race

package filter_test

import "time"

// cpuBudget under the race detector, which makes the same work cost several
// times the CPU (its instrumentation, not imipd's): the check still catches
// unbounded work, the 100 ms requirement is checked by the normal build.
const cpuBudget = 1000 * time.Millisecond
