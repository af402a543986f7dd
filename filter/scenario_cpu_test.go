//go:build unix

package filter_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) the test process has used so far.
// It counts every thread, the garbage collector's included, so a message's
// cost is measured with its allocation work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is the test process's resident set high-water mark in bytes
// (getrusage's ru_maxrss, KiB on Linux).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) << 10
}
