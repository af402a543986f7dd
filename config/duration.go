package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// durationSyntax is the syntax of every duration key, for problems.
const durationSyntax = `numbers with units W, D, h, m, s or ms, e.g. "30s", "5m", "1h 30m", "4W"`

// ParseDuration parses the duration syntax of every duration key and of
// imipctl's -timeframe (Open-Xchange's timeframe syntax, docs/rules.md
// "Policy"): space-separated numbers with units W (weeks), D (days), h, m,
// s, ms, e.g. "4W" or "2D 1h 12ms". Units are case-sensitive as in
// Open-Xchange except that "w" and "d" are accepted too; "m" is minutes
// and "ms" milliseconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("config: empty duration")
	}
	var total time.Duration
	for _, f := range strings.Fields(s) {
		i := 0
		for i < len(f) && f[i] >= '0' && f[i] <= '9' {
			i++
		}
		if i == 0 || i == len(f) {
			return 0, fmt.Errorf("config: duration %q: %q is not <number><unit>", s, f)
		}
		n, err := strconv.ParseInt(f[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("config: duration %q: %w", s, err)
		}
		var unit time.Duration
		switch f[i:] {
		case "W", "w":
			unit = 7 * 24 * time.Hour
		case "D", "d":
			unit = 24 * time.Hour
		case "h", "H":
			unit = time.Hour
		case "m", "M":
			unit = time.Minute
		case "s", "S":
			unit = time.Second
		case "ms":
			unit = time.Millisecond
		default:
			return 0, fmt.Errorf("config: duration %q: unknown unit %q (want W D h m s ms)", s, f[i:])
		}
		if n > int64((1<<63-1)/unit) || total+time.Duration(n)*unit < total {
			return 0, fmt.Errorf("config: duration %q: too large", s)
		}
		total += time.Duration(n) * unit
	}
	return total, nil
}

// FormatDuration writes d in the syntax of ParseDuration ("4W", "2D 1h 12ms").
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	units := []struct {
		u time.Duration
		s string
	}{{7 * 24 * time.Hour, "W"}, {24 * time.Hour, "D"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}}
	var parts []string
	for _, u := range units {
		if n := d / u.u; n > 0 {
			parts = append(parts, strconv.FormatInt(int64(n), 10)+u.s)
			d -= n * u.u
		}
	}
	if len(parts) == 0 {
		return "0s"
	}
	return strings.Join(parts, " ")
}
