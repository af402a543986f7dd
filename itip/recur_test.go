package itip

import (
	"fmt"
	"testing"
	"time"

	"github.com/teambition/rrule-go"

	"imipd/itip/ics"
)

// TestPeriodOccurrence checks inPeriod's shortcut for a rule without BYxxx
// parts (periodOccurrence) against the expansion it replaces: the same rule
// with the parts DTSTART supplies written out, which rrule-go expands. Starts
// in Europe/Berlin include a time in the spring DST gap and one in the
// autumn overlap, the 31st of a month and 29 February; targets are every
// hour around many periods of each rule.
func TestPeriodOccurrence(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	starts := []ics.Time{
		{T: time.Date(2025, 1, 31, 9, 30, 0, 0, berlin)},
		{T: time.Date(2024, 2, 29, 14, 0, 0, 0, berlin)},
		{T: time.Date(2025, 3, 29, 2, 30, 0, 0, berlin)},  // the next day's 02:30 is in the gap
		{T: time.Date(2025, 10, 25, 2, 30, 0, 0, berlin)}, // the next day's 02:30 happens twice
		{T: time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC), AllDay: true},
		{T: time.Date(2025, 6, 2, 18, 0, 0, 0, time.UTC), Floating: true},
		{T: time.Date(2025, 6, 2, 7, 0, 0, 0, time.UTC)},
	}
	freqs := []rrule.Frequency{rrule.DAILY, rrule.WEEKLY, rrule.MONTHLY, rrule.YEARLY}
	span := map[rrule.Frequency]time.Duration{rrule.DAILY: 40 * 24 * time.Hour, rrule.WEEKLY: 200 * 24 * time.Hour,
		rrule.MONTHLY: 3 * 366 * 24 * time.Hour, rrule.YEARLY: 9 * 366 * 24 * time.Hour}
	for _, ds := range starts {
		for _, freq := range freqs {
			for _, interval := range []int{1, 2} {
				t.Run(fmt.Sprintf("%s/%v/%d", ds.T, freq, interval), func(t *testing.T) {
					plain := rrule.ROption{Freq: freq, Interval: interval}
					spelled := plain
					st := ds.T
					spelled.Byhour, spelled.Byminute, spelled.Bysecond = []int{st.Hour()}, []int{st.Minute()}, []int{st.Second()}
					switch freq {
					case rrule.WEEKLY:
						spelled.Byweekday = []rrule.Weekday{weekdays[(int(st.Weekday())+6)%7]}
					case rrule.MONTHLY:
						spelled.Bymonthday = []int{st.Day()}
					case rrule.YEARLY:
						spelled.Bymonth, spelled.Bymonthday = []int{int(st.Month())}, []int{st.Day()}
					}
					step := time.Hour
					if freq == rrule.YEARLY || freq == rrule.MONTHLY {
						step = 24 * time.Hour
					}
					members := 0
					for target := st.Add(-48 * time.Hour); target.Before(st.Add(span[freq])); target = target.Add(step) {
						got, okGot := inPeriod(plain, ds, target)
						want, okWant := inPeriod(spelled, ds, target)
						if got != want || okGot != okWant {
							t.Fatalf("target %s: shortcut %v %v, expansion %v %v", target, got, okGot, want, okWant)
						}
						if got {
							members++
						}
					}
					if members == 0 {
						t.Fatal("no target was an occurrence: the comparison proves nothing")
					}
				})
			}
		}
	}
}
