package ics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

func offsetAt(t *testing.T, loc *time.Location, s string) int {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	_, off := tm.In(loc).Zone()
	return off / 3600
}

func TestLocationNames(t *testing.T) {
	tests := []struct {
		tzid, want string
	}{
		{"Europe/Berlin", "Europe/Berlin"},
		{`"Europe/Berlin"`, "Europe/Berlin"},
		{" America/New_York ", "America/New_York"},
		{"/mozilla.org/20050126_1/Europe/Paris", "Europe/Paris"},
		{"/freeassociation.sourceforge.net/Tzfile/Europe/London", "Europe/London"},
		{"/freeassociation.sourceforge.net/Europe/Vienna", "Europe/Vienna"},
		{"/citadel.org/20190914_1/Asia/Tokyo", "Asia/Tokyo"},
		{"UTC", "UTC"},
		// Windows IDs (CLDR territory 001).
		{"W. Europe Standard Time", "Europe/Berlin"},
		{`"W. Europe Standard Time"`, "Europe/Berlin"},
		{"w. europe standard time", "Europe/Berlin"},
		{"Pacific Standard Time", "America/Los_Angeles"},
		{"Romance Standard Time", "Europe/Paris"},
		{"Eastern Standard Time", "America/New_York"},
		{"GMT Standard Time", "Europe/London"},
		{"Central Europe Standard Time", "Europe/Budapest"},
		{"AUS Eastern Standard Time", "Australia/Sydney"},
		{"Tokyo Standard Time", "Asia/Tokyo"},
		{"India Standard Time", "Asia/Calcutta"},
		{"US Mountain Standard Time", "America/Phoenix"},
		{"Jordan Standard Time", "Asia/Amman"},
		{"Mid-Atlantic Standard Time", "Etc/GMT+2"}, // legacy CLDR 1.8
		// Windows display names.
		{"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", "Europe/Berlin"},
		{"(UTC-05:00) Eastern Time (US & Canada)", "America/New_York"},
		{"(GMT+10:00) Canberra, Melbourne, Sydney", "Australia/Sydney"},
		{"Kuala Lumpur, Singapore", "Asia/Singapore"},
		{"Pacific Time (US & Canada), Tijuana", "America/Los_Angeles"},
	}
	z := NewZones(nil)
	for _, tt := range tests {
		t.Run(tt.tzid, func(t *testing.T) {
			loc, err := z.Location(tt.tzid)
			if err != nil {
				t.Fatal(err)
			}
			if loc.String() != tt.want {
				t.Fatalf("got %s want %s", loc, tt.want)
			}
		})
	}
	for _, bad := range []string{"", `""`, "Local", "Nowhere/Special", "../../etc/passwd", "/etc/passwd", "Customized Time Zone", strings.Repeat("A", 1000)} {
		if loc, err := z.Location(bad); !errors.Is(err, ErrUnknownTZ) {
			t.Errorf("%q: got %v, %v", bad, loc, err)
		}
	}
}

// Every IANA name in the Windows table must load.
func TestWindowsTable(t *testing.T) {
	if len(windowsZones) < 140 {
		t.Fatalf("only %d Windows IDs", len(windowsZones))
	}
	for id, iana := range windowsZones {
		if loadIANA(iana) == nil {
			t.Errorf("%s -> %s does not load", id, iana)
		}
	}
	for k, id := range windowsDisplay {
		if _, ok := windowsZones[strings.ToLower(id)]; !ok {
			t.Errorf("display %q -> unknown ID %q", k, id)
		}
	}
}

func TestLocationVTimezone(t *testing.T) {
	const vtz = `BEGIN:VCALENDAR
BEGIN:VTIMEZONE
TZID:Custom Berlin
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VTIMEZONE
TZID:Custom Sydney
BEGIN:STANDARD
DTSTART:20080406T030000
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=4
TZOFFSETFROM:+1100
TZOFFSETTO:+1000
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:20081005T020000
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=10
TZOFFSETFROM:+1000
TZOFFSETTO:+1100
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VTIMEZONE
TZID:Pacific Time (US & Canada)\, Tijuana
BEGIN:STANDARD
DTSTART:20071104T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
TZOFFSETFROM:-0700
TZOFFSETTO:-0800
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:20070311T020000
RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
TZOFFSETFROM:-0800
TZOFFSETTO:-0700
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VTIMEZONE
TZID:Fixed Plus Five Thirty
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:+0530
TZOFFSETTO:+0530
END:STANDARD
END:VTIMEZONE
BEGIN:VTIMEZONE
TZID:RDATE zone
BEGIN:STANDARD
DTSTART:20001029T030000
RDATE:20011028T030000,20021027T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:20000326T020000
RDATE:20010325T020000,20020331T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VTIMEZONE
TZID:Broken
BEGIN:STANDARD
DTSTART:garbage
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
END:VTIMEZONE
END:VCALENDAR
`
	cal := mustDecode(t, vtz)
	cdo := mustDecode(t, fixCDO)
	tests := []struct {
		cal          *ical.Calendar
		tzid         string
		winter, summ string // instants to probe
		offW, offS   int
	}{
		{cal, "Custom Berlin", "2024-01-15T12:00:00Z", "2024-07-15T12:00:00Z", 1, 2},
		{cal, "Custom Berlin", "1999-01-15T12:00:00Z", "2099-07-15T12:00:00Z", 1, 2},
		// DST change instants: 2024-03-31 01:00Z and 2024-10-27 01:00Z.
		{cal, "Custom Berlin", "2024-03-31T00:59:59Z", "2024-03-31T01:00:00Z", 1, 2},
		{cal, "Custom Berlin", "2024-10-27T01:00:00Z", "2024-10-27T00:59:59Z", 1, 2},
		{cal, "Custom Sydney", "2024-07-15T12:00:00Z", "2024-01-15T12:00:00Z", 10, 11},
		{cal, "Pacific Time (US & Canada), Tijuana", "2024-01-15T12:00:00Z", "2024-07-15T12:00:00Z", -8, -7},
		{cal, "Fixed Plus Five Thirty", "2024-01-15T12:00:00Z", "2024-07-15T12:00:00Z", 5, 5},
		{cal, "RDATE zone", "2001-01-15T12:00:00Z", "2001-07-15T12:00:00Z", 1, 2},
		{cdo, "GMT +0100 (Standard) / GMT +0200 (Daylight)", "2024-01-15T12:00:00Z", "2024-07-15T12:00:00Z", 1, 2},
		{cdo, `"GMT +0100 (Standard) / GMT +0200 (Daylight)"`, "2030-01-15T12:00:00Z", "2030-07-15T12:00:00Z", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.tzid+tt.winter, func(t *testing.T) {
			loc, err := NewZones(tt.cal).Location(tt.tzid)
			if err != nil {
				t.Fatal(err)
			}
			if got := offsetAt(t, loc, tt.winter); got != tt.offW {
				t.Errorf("offset at %s = %d, want %d", tt.winter, got, tt.offW)
			}
			if got := offsetAt(t, loc, tt.summ); got != tt.offS {
				t.Errorf("offset at %s = %d, want %d", tt.summ, got, tt.offS)
			}
		})
	}
	if _, err := NewZones(cal).Location("Broken"); !errors.Is(err, ErrUnknownTZ) {
		t.Errorf("Broken: %v", err)
	}
	// X-LIC-LOCATION wins over the rules when it is an IANA name.
	tb := mustDecode(t, fixThunderbird)
	tb.Children[0].Props.Get(ical.PropTimezoneID).Value = "Berlin (custom)"
	loc, err := NewZones(tb).Location("Berlin (custom)")
	if err != nil || loc.String() != "Europe/Berlin" {
		t.Fatalf("X-LIC-LOCATION: %v %v", loc, err)
	}
}
