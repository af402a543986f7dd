package caldav

import (
	"testing"
	"time"

	gocaldav "github.com/emersion/go-webdav/caldav"

	"imipd/itip/ics"
)

// A time range matches an event by its length as ics.Zones.End reads it
// (RFC 4791 §9.9), with the query's own choices at the edges: an end that
// cannot be read makes the instance its start (the start is known), a
// negative DURATION is no length, an all-day event without an end lasts
// its day, an unreadable DTSTART matches and a missing one does not.
func TestTimeRangeEventEnd(t *testing.T) {
	from, to := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, props string
		want        bool
	}{
		{"dtend-into-range", "DTSTART:20261201T090000Z\r\nDTEND:20261201T103000Z\r\n", true},
		{"dtend-before-range", "DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n", false},
		{"duration-into-range", "DTSTART:20261201T090000Z\r\nDURATION:PT90M\r\n", true},
		{"negative-duration", "DTSTART:20261201T090000Z\r\nDURATION:-PT90M\r\n", false},
		{"unreadable-dtend-before", "DTSTART:20261201T090000Z\r\nDTEND:20261301T120000Z\r\n", false},
		{"unreadable-dtend-inside", "DTSTART:20261201T101500Z\r\nDTEND:20261301T120000Z\r\n", true},
		{"unreadable-duration", "DTSTART:20261201T090000Z\r\nDURATION:PT9X\r\n", false},
		{"all-day-no-end", "DTSTART;VALUE=DATE:20261201\r\n", true},
		{"all-day-day-before", "DTSTART;VALUE=DATE:20261130\r\n", false},
		{"date-time-no-end", "DTSTART:20261201T090000Z\r\n", false},
		{"unreadable-dtstart", "DTSTART:20261301T090000Z\r\n", true},
		{"no-dtstart", "DTEND:20261201T103000Z\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := ics.Decode([]byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:e@remote.test\r\nDTSTAMP:20261125T100000Z\r\n"+
				tc.props+"END:VEVENT\r\nEND:VCALENDAR\r\n"), ics.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			f := gocaldav.CompFilter{Name: "VCALENDAR", Comps: []gocaldav.CompFilter{{Name: "VEVENT", Start: from, End: to}}}
			if got := newQueryMatcher().match(f, cal); got != tc.want {
				t.Errorf("match %v, want %v", got, tc.want)
			}
		})
	}
}
