package ics

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestEnd pins each reading of an event's end (Zones.End): which property
// wins, the defaults, and what an end before the start or an unreadable
// value gives.
func TestEnd(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		lines    []string
		want     time.Time
		allDay   bool
		floating bool
		err      error
	}{
		{"dtend", []string{"DTSTART:20250311T090000Z", "DTEND:20250311T100000Z"}, utc(2025, 3, 11, 10, 0), false, false, nil},
		{"dtend in a zone", []string{"DTSTART:20250311T090000Z", "DTEND;TZID=Europe/Berlin:20250311T120000"}, time.Date(2025, 3, 11, 12, 0, 0, 0, berlin), false, false, nil},
		{"dtend wins over duration", []string{"DTSTART:20250311T090000Z", "DTEND:20250311T100000Z", "DURATION:PT3H"}, utc(2025, 3, 11, 10, 0), false, false, nil},
		{"dtend without dtstart", []string{"DTEND:20250311T100000Z"}, utc(2025, 3, 11, 10, 0), false, false, nil},
		{"dtend beside an unreadable dtstart", []string{"DTSTART:20250230T090000Z", "DTEND:20250311T100000Z"}, utc(2025, 3, 11, 10, 0), false, false, nil},
		{"dtend equal to dtstart", []string{"DTSTART:20250311T090000Z", "DTEND:20250311T090000Z"}, utc(2025, 3, 11, 9, 0), false, false, nil},
		{"dtend before dtstart is the start", []string{"DTSTART:20250311T090000Z", "DTEND:20250311T080000Z"}, utc(2025, 3, 11, 9, 0), false, false, nil},
		{"all-day dtend", []string{"DTSTART;VALUE=DATE:20250311", "DTEND;VALUE=DATE:20250313"}, utc(2025, 3, 13, 0, 0), true, false, nil},
		{"floating dtend", []string{"DTSTART:20250311T090000", "DTEND:20250311T093000"}, utc(2025, 3, 11, 9, 30), false, true, nil},
		{"duration", []string{"DTSTART:20250311T090000Z", "DURATION:PT1H30M"}, utc(2025, 3, 11, 10, 30), false, false, nil},
		{"duration with a sign", []string{"DTSTART:20250311T090000Z", "DURATION:+PT15M"}, utc(2025, 3, 11, 9, 15), false, false, nil},
		{"duration days are nominal across DST", []string{"DTSTART;TZID=Europe/Berlin:20250329T090000", "DURATION:P1D"}, time.Date(2025, 3, 30, 9, 0, 0, 0, berlin), false, false, nil},
		{"all-day duration", []string{"DTSTART;VALUE=DATE:20250311", "DURATION:P2D"}, utc(2025, 3, 13, 0, 0), true, false, nil},
		{"floating duration", []string{"DTSTART:20250311T090000", "DURATION:PT1H"}, utc(2025, 3, 11, 10, 0), false, true, nil},
		{"negative duration is the start", []string{"DTSTART:20250311T090000Z", "DURATION:-PT1H"}, utc(2025, 3, 11, 9, 0), false, false, nil},
		{"negative all-day duration is the start", []string{"DTSTART;VALUE=DATE:20250311", "DURATION:-P1D"}, utc(2025, 3, 11, 0, 0), true, false, nil},
		{"all-day without end lasts a day", []string{"DTSTART;VALUE=DATE:20250311"}, utc(2025, 3, 12, 0, 0), true, false, nil},
		{"date-time without end ends at its start", []string{"DTSTART:20250311T090000Z"}, utc(2025, 3, 11, 9, 0), false, false, nil},
		{"unreadable dtend", []string{"DTSTART:20250311T090000Z", "DTEND:20250332T100000Z", "DURATION:PT1H"}, time.Time{}, false, false, ErrSyntax},
		{"dtend in an unknown zone", []string{"DTSTART:20250311T090000Z", "DTEND;TZID=Nowhere:20250311T100000"}, time.Time{}, false, false, ErrUnknownTZ},
		{"two dtend values", []string{"DTSTART:20250311T090000Z", "DTEND:20250311T100000Z,20250311T110000Z"}, time.Time{}, false, false, ErrSyntax},
		{"unreadable duration", []string{"DTSTART:20250311T090000Z", "DURATION:1H"}, time.Time{}, false, false, ErrSyntax},
		{"unreadable dtstart", []string{"DTSTART:2025031", "DURATION:PT1H"}, time.Time{}, false, false, ErrSyntax},
		{"no dtstart, no dtend", []string{"DURATION:PT1H"}, time.Time{}, false, false, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cal := mustDecode(t, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"+strings.Join(tt.lines, "\r\n")+"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
			got, err := NewZones(cal).End(cal.Children[0])
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %+v, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.T.Equal(tt.want) || got.AllDay != tt.allDay || got.Floating != tt.floating {
				t.Fatalf("got %+v (%s), want %s allDay=%v floating=%v", got, got.T.UTC(), tt.want.UTC(), tt.allDay, tt.floating)
			}
		})
	}
}
