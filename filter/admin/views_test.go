package admin

import (
	"strings"
	"testing"

	"imipd/calstore"
)

// The end a view shows is ics.Zones.End's reading when the event names an
// end (DTEND or DURATION), with the view's own choices at the edges: a
// DTEND that cannot be read is shown as written, a DURATION that cannot be
// read not at all, and an event that names neither shows no end.
func TestViewEnd(t *testing.T) {
	for _, tc := range []struct {
		name, props, want string
	}{
		{"dtend", "DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\n", "2026-12-01T10:00:00Z"},
		{"duration", "DTSTART:20261201T090000Z\r\nDURATION:PT90M\r\n", "2026-12-01T10:30:00Z"},
		{"dtend-beside-duration", "DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nDURATION:PT3H\r\n", "2026-12-01T10:00:00Z"},
		{"all-day-dtend", "DTSTART;VALUE=DATE:20261201\r\nDTEND;VALUE=DATE:20261203\r\n", "2026-12-03"},
		{"all-day-duration", "DTSTART;VALUE=DATE:20261201\r\nDURATION:P2D\r\n", "2026-12-03"},
		{"negative-duration", "DTSTART:20261201T090000Z\r\nDURATION:-PT1H\r\n", "2026-12-01T09:00:00Z"},
		{"unreadable-dtend", "DTSTART:20261201T090000Z\r\nDTEND:20261301T100000Z\r\n", "20261301T100000Z"},
		{"unreadable-duration", "DTSTART:20261201T090000Z\r\nDURATION:PT1X\r\n", ""},
		{"neither", "DTSTART:20261201T090000Z\r\n", ""},
		{"all-day-neither", "DTSTART;VALUE=DATE:20261201\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:e@remote.test\r\nDTSTAMP:20261125T100000Z\r\n" +
				tc.props + "SUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
			v, err := viewEvent(calstore.Event{UID: "e@remote.test", Data: []byte(data)})
			if err != nil {
				t.Fatal(err)
			}
			if v.End != tc.want {
				t.Errorf("end %q, want %q (%s)", v.End, tc.want, strings.TrimSpace(tc.props))
			}
		})
	}
}
