//go:build unix

package caldav_test

import "syscall"

// peakRSS is the test process's resident set high-water mark in bytes
// (getrusage's ru_maxrss, KiB on Linux).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) << 10
}
