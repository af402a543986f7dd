package caldav_test

import (
	"context"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	gocaldav "github.com/emersion/go-webdav/caldav"

	"imipd/caldav"
	"imipd/calstore"
)

// queryEvents are stored series for the time-range tests.
var queryEvents = map[string]string{
	// Every Tuesday since 2020 except 8 December 2026.
	"weekly-tue": "DTSTART:20200107T090000Z\r\nDTEND:20200107T100000Z\r\nRRULE:FREQ=WEEKLY\r\nEXDATE:20261208T090000Z\r\n",
	// A billion seconds from 1 December 2026 (issue 13: 1.8 s and +212 MB
	// per month queried).
	"tick": "DTSTART:20261201T090000Z\r\nDTEND:20261201T090001Z\r\nRRULE:FREQ=SECONDLY;COUNT=1000000000\r\n",
	// A rule that matches nothing: rrule-go walks it day by day to 9999.
	"never": "DTSTART:20200101T090000Z\r\nDTEND:20200101T100000Z\r\nRRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30\r\n",
	// The first Monday of every month, ten times from January 2026.
	"monthly-count": "DTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\nRRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=10\r\n",
}

// putQueryEvents stores Alice's events named by uids (keys of
// queryEvents) in Bob's calendar.
func putQueryEvents(tb testing.TB, db calstore.Store, uids ...string) {
	tb.Helper()
	err := db.Write(context.Background(), func(tx calstore.Tx) error {
		for _, uid := range uids {
			data := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20261125T100000Z\r\n" + queryEvents[uid] +
				"SUMMARY:" + uid + "\r\nORGANIZER:mailto:alice@remote.test\r\nATTENDEE:mailto:bob@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
			if err := tx.PutEvent(davUser, calstore.Event{UID: uid, Data: []byte(data)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// A calendar-query with a time range expands recurrences within a budget:
// walkable rules are expanded near the range (EXDATE honoured), rules that
// could walk without end (sub-daily, BYxxx that may match nothing) match
// without expansion, and no query allocates more than a few MB.
func TestCalDAVQueryTimeRange(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	putQueryEvents(t, e.db, "weekly-tue", "tick", "never", "monthly-count")
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name       string
		start, end time.Time
		want       string
	}{
		{"Tuesday 1 Dec", day(12, 1), day(12, 2), "never planning-1@remote.test tick weekly-tue"},
		{"Wednesday 2 Dec", day(12, 2), day(12, 3), "never tick"},
		{"Tuesday 8 Dec, excluded", day(12, 8), day(12, 9), "never tick"},
		{"Tuesday 15 Dec", day(12, 15), day(12, 16), "never tick weekly-tue"},
		{"December", day(12, 1), day(12, 31), "never own-1@example.test planning-1@remote.test tick weekly-tue"},
		{"three months", day(12, 1), time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), "never own-1@example.test planning-1@remote.test tick weekly-tue"},
		{"before the tick", day(11, 24), day(11, 25), "never weekly-tue"},
		{"first Monday of October", day(10, 5), day(10, 6), "monthly-count never"},
		{"first Monday of November, after COUNT", day(11, 2), day(11, 3), "never"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			got, err := e.cl.QueryCalendar(context.Background(), calPath, &gocaldav.CalendarQuery{CompFilter: gocaldav.CompFilter{
				Name: "VCALENDAR", Comps: []gocaldav.CompFilter{{Name: "VEVENT", Start: tt.start, End: tt.end}}}})
			runtime.ReadMemStats(&m1)
			if err != nil {
				t.Fatal(err)
			}
			var uids []string
			for _, co := range got {
				uid, _ := co.Data.Events()[0].Props.Text("UID")
				uids = append(uids, uid)
			}
			sort.Strings(uids)
			if g := strings.Join(uids, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
			if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 20<<20 {
				t.Errorf("the query allocated %d MB", alloc>>20)
			}
		})
	}
}
