//go:build !race

package filter_test

import "time"

// cpuBudget is what one message may cost in CPU (issue 6: under 100 ms,
// whatever the input).
const cpuBudget = 100 * time.Millisecond
