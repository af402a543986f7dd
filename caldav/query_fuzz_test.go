package caldav

import (
	"testing"
	"time"

	gocaldav "github.com/emersion/go-webdav/caldav"

	"imipd/itip/ics"
)

// FuzzQueryMatch: evaluating a calendar-query time range on any calendar
// the decoder accepts never panics and never walks past the request's
// budget.
func FuzzQueryMatch(f *testing.F) {
	for _, s := range []string{
		"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20200107T090000Z\r\nDTEND:20200107T100000Z\r\nRRULE:FREQ=WEEKLY\r\nEXDATE:20261208T090000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20261201T090000Z\r\nRRULE:FREQ=SECONDLY;COUNT=1000000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200131\r\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20300101\r\nRDATE:20261215T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;TZID=Europe/Berlin:20200105T090000\r\nDURATION:PT1H\r\nRRULE:FREQ=YEARLY;BYMONTH=12;BYDAY=1MO,-1FR;INTERVAL=2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
	} {
		f.Add([]byte(s), int64(0), int64(31*24))
	}
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, startH, lenH int64) {
		cal, err := ics.Decode(data, ics.Limits{})
		if err != nil {
			return
		}
		start := base.Add(time.Duration(startH%(24*365*50)) * time.Hour)
		end := start.Add(time.Duration(lenH%(24*365*5)) * time.Hour)
		q := newQueryMatcher()
		q.match(gocaldav.CompFilter{Name: "VCALENDAR", Comps: []gocaldav.CompFilter{{Name: "VEVENT", Start: start, End: end}}}, cal)
		if q.left < 0 {
			t.Fatalf("walked %d instances past the budget", -q.left)
		}
	})
}
