package ics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
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

// customBerlin is Exchange's form of a zone: rules from 1601, no name that
// resolves.
const customBerlin = `BEGIN:VTIMEZONE
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
`

func TestLocationVTimezone(t *testing.T) {
	const vtz = `BEGIN:VCALENDAR
` + customBerlin + `BEGIN:VTIMEZONE
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

// yearRule agrees with rrule-go on the rule shapes time zones use.
func TestYearRuleMatchesRRule(t *testing.T) {
	start := time.Date(1990, 1, 1, 2, 0, 0, 0, time.UTC)
	for _, rule := range []string{
		"FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
		"FREQ=YEARLY;BYMONTH=10;BYDAY=1SU",
		"FREQ=YEARLY;BYMONTH=11;BYDAY=2SA",
		"FREQ=YEARLY;BYMONTH=4;BYDAY=SU;BYMONTHDAY=8,9,10,11,12,13,14",
		"FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=22",
		"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1",
		"FREQ=YEARLY;BYMONTH=3,9;BYDAY=-1FR;BYHOUR=23;BYMINUTE=30",
		"FREQ=YEARLY;BYDAY=20MO",
		"FREQ=YEARLY;BYDAY=-2TH",
		"FREQ=YEARLY",
		"FREQ=YEARLY;BYMONTH=6",
		"FREQ=YEARLY;INTERVAL=3;BYMONTH=9;BYDAY=3TU",
	} {
		opt, err := rrule.StrToROption(rule)
		if err != nil {
			t.Fatal(err)
		}
		opt.Dtstart = start
		opt.Until = time.Date(2041, 1, 1, 0, 0, 0, 0, time.UTC)
		r, err := rrule.NewRRule(*opt)
		if err != nil {
			t.Fatal(err)
		}
		want := r.All()
		var got []time.Time
		if opt.Interval < 1 {
			opt.Interval = 1
		}
		for y := start.Year(); y <= 2040; y += opt.Interval {
			yearRule(opt, start, y, func(w time.Time) bool {
				if !w.Before(start) {
					got = append(got, w)
				}
				return true
			})
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d occurrences, rrule-go %d", rule, len(got), len(want))
			continue
		}
		for i := range got {
			if !got[i].Equal(want[i]) {
				t.Errorf("%s: occurrence %d is %v, rrule-go %v", rule, i, got[i], want[i])
				break
			}
		}
	}
}

// A calendar that names only 2026 gets transitions for 2025..2027 and its
// yearly rule after them; rules from 1601 cost no more than that.
func TestVTimezoneNamedYears(t *testing.T) {
	cal := mustDecode(t, `BEGIN:VCALENDAR
`+customBerlin+`BEGIN:VEVENT
UID:x
DTSTART;TZID=Custom Berlin:20260701T090000
RRULE:FREQ=WEEKLY
END:VEVENT
END:VCALENDAR
`)
	z := NewZones(cal)
	if lo, hi := z.namedYears(); lo != 2025 || hi != 2027 {
		t.Fatalf("years %d..%d, want 2025..2027", lo, hi)
	}
	loc, err := z.Location("Custom Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at  string
		off int
	}{
		{"2026-01-15T12:00:00Z", 1}, {"2026-07-15T12:00:00Z", 2},
		{"2026-10-25T00:59:59Z", 2}, {"2026-10-25T01:00:00Z", 1},
		// After the computed years: the footer rule.
		{"2060-03-28T00:59:59Z", 1}, {"2060-03-28T01:00:00Z", 2},
		{"2060-10-31T00:59:59Z", 2}, {"2060-10-31T01:00:00Z", 1},
	} {
		if got := offsetAt(t, loc, tt.at); got != tt.off {
			t.Errorf("offset at %s = %d, want %d", tt.at, got, tt.off)
		}
	}
	if z.budget.years > 2*4 {
		t.Errorf("evaluated %d rule-years, want at most 8", z.budget.years)
	}
}

// The rule-years of all VTIMEZONEs of one calendar share one budget: past
// it, a zone does not resolve.
func TestVTimezoneBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\n")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "BEGIN:VTIMEZONE\r\nTZID:Z%d\r\n", i)
		for j := 0; j < 20; j++ {
			b.WriteString("BEGIN:STANDARD\r\nDTSTART:16010101T000000\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;UNTIL=21001231T000000Z\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nEND:STANDARD\r\n")
		}
		b.WriteString("END:VTIMEZONE\r\n")
	}
	// Years 1900..2100: the span is cut to tzMaxSpan.
	b.WriteString("BEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Z0:19000101T000000\r\nDTEND;TZID=Z0:21000101T000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	cal, err := Decode([]byte(b.String()), Limits{MaxComponents: 5000})
	if err != nil {
		t.Fatal(err)
	}
	z := NewZones(cal)
	if lo, hi := z.namedYears(); hi-lo != tzMaxSpan {
		t.Fatalf("years %d..%d, want a span of %d", lo, hi, tzMaxSpan)
	}
	resolved := 0
	for i := 0; i < 40; i++ {
		if _, err := z.Location(fmt.Sprintf("Z%d", i)); err == nil {
			resolved++
		} else if !errors.Is(err, ErrUnknownTZ) || !strings.Contains(err.Error(), errTZBudget.Error()) {
			t.Fatalf("Z%d: %v", i, err)
		}
	}
	if z.budget.years > tzBudgetYears || resolved == 0 || resolved == 40 {
		t.Fatalf("%d zones resolved, %d rule-years evaluated", resolved, z.budget.years)
	}
}

// The older Outlook form of "second Sunday" (BYDAY=SU;BYMONTHDAY=8..14)
// also becomes the rule after the computed years.
func TestVTimezoneFooterMonthdayWeek(t *testing.T) {
	cal := mustDecode(t, `BEGIN:VCALENDAR
BEGIN:VTIMEZONE
TZID:Old Eastern
BEGIN:STANDARD
DTSTART:20071104T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=SU;BYMONTHDAY=1,2,3,4,5,6,7
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:20070311T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=SU;BYMONTHDAY=8,9,10,11,12,13,14
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:x
DTSTART;TZID=Old Eastern:20260701T090000
END:VEVENT
END:VCALENDAR
`)
	loc, err := NewZones(cal).Location("Old Eastern")
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	for _, at := range []string{"2040-03-11T06:59:59Z", "2040-03-11T07:00:00Z", "2040-07-01T12:00:00Z",
		"2040-11-04T05:59:59Z", "2040-11-04T06:00:00Z", "2041-01-15T12:00:00Z"} {
		tm, _ := time.Parse(time.RFC3339, at)
		_, got := tm.In(loc).Zone()
		if _, want := tm.In(ny).Zone(); got != want {
			t.Errorf("offset at %s = %d, want %d", at, got, want)
		}
	}
}

// The calendars of one message share one budget: a second calendar gets
// only what the first left.
func TestVTimezoneSharedBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Z\r\n")
	for j := 0; j < 20; j++ {
		b.WriteString("BEGIN:STANDARD\r\nDTSTART:16010101T000000\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nEND:STANDARD\r\n")
	}
	// 1950..2100: 20 rules of 152 years, 3,040 rule-years.
	b.WriteString("END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Z:19500101T000000\r\nDTEND;TZID=Z:21000101T000000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	cal := mustDecode(t, b.String())
	shared := NewBudget()
	if _, err := NewZonesShared(cal, shared).Location("Z"); err != nil {
		t.Fatalf("first part: %v", err)
	}
	if _, err := NewZonesShared(cal, shared).Location("Z"); !errors.Is(err, ErrUnknownTZ) {
		t.Fatalf("second part on the spent budget: %v", err)
	}
	if _, err := NewZones(cal).Location("Z"); err != nil {
		t.Fatalf("a calendar of its own: %v", err)
	}
}
