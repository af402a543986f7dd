package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"4W", 28 * 24 * time.Hour, true},
		{"2D 1h 12ms", 49*time.Hour + 12*time.Millisecond, true},
		{"90m", 90 * time.Minute, true},
		{"1s", time.Second, true},
		{"", 0, false},
		{"4", 0, false},
		{"W", 0, false},
		{"4Y", 0, false},
		{"-1D", 0, false},
		{"99999999999999W", 0, false},
	}
	for _, c := range cases {
		got, err := ParseDuration(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if c.ok {
			if back, err := ParseDuration(FormatDuration(got)); err != nil || back != got {
				t.Errorf("round trip of %q: %q", c.in, FormatDuration(got))
			}
		}
	}
}
