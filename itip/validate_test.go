package itip_test

import (
	"errors"
	"strings"
	"testing"

	"imipd/itip"
	"imipd/itip/ics"
)

// TestValidate checks ParseMessage's restriction rules (validate.go): what
// is refused with which word, and the leniencies real senders need.
func TestValidate(t *testing.T) {
	const request = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20261125T100000Z\r\n" +
		"DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nORGANIZER:mailto:a@remote.test\r\nATTENDEE:mailto:b@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	const zone = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
	edit := func(old, new string) string { return strings.Replace(request, old, new, 1) }
	zoneRule := func(rule string) string {
		return strings.Replace(zone, "TZOFFSETFROM:", "RRULE:"+rule+"\r\nTZOFFSETFROM:", 1)
	}
	addLine := func(line string) string { return edit("END:VEVENT", line+"\r\nEND:VEVENT") }
	cases := []struct {
		name, ics, reason string // reason "": accepted
	}{
		{"ok", request, ""},
		{"leap day", strings.Replace(edit("DTSTART:20261201T090000Z", "DTSTART;VALUE=DATE:20280229"), "DTEND:20261201T100000Z", "DTEND;VALUE=DATE:20280301", 1), ""},
		{"zero length", edit("DTEND:20261201T100000Z", "DTEND:20261201T090000Z"), ""},
		{"end in an unknown zone", edit("DTEND:20261201T100000Z", "DTEND;TZID=Nowhere/Else:20261201T000000"), ""},
		{"end before start", edit("DTEND:20261201T100000Z", "DTEND:20261201T080000Z"), "bad-date"},
		{"date start, date-time end", edit("DTSTART:20261201T090000Z", "DTSTART;VALUE=DATE:20261201"), "bad-date"},
		{"leap second", edit("DTEND:20261201T100000Z", "DTEND:20261231T235960Z"), ""},
		{"same line twice", addLine("UID:u1"), ""},
		{"dtend and duration", addLine("DURATION:PT1H"), ""},
		{"hourly", addLine("RRULE:FREQ=HOURLY;COUNT=8"), ""},
		{"rdate period", addLine("RDATE;VALUE=PERIOD:20261202T090000Z/PT1H,20261203T090000Z/20261203T100000Z"), ""},
		{"exdate list with an empty item", addLine("RRULE:FREQ=DAILY\r\nEXDATE:20261202T090000Z,"), ""},
		{"reply with a secondly rule", strings.Replace(addLine("RRULE:FREQ=SECONDLY"), "METHOD:REQUEST", "METHOD:REPLY", 1), ""},
		{"cancel without dtstart", strings.Replace(edit("DTSTART:20261201T090000Z\r\n", ""), "METHOD:REQUEST", "METHOD:CANCEL", 1), ""},
		{"no dtstart", edit("DTSTART:20261201T090000Z\r\n", ""), "missing-dtstart"},
		{"counter without dtstart", strings.Replace(edit("DTSTART:20261201T090000Z\r\n", ""), "METHOD:REQUEST", "METHOD:COUNTER", 1), "missing-dtstart"},
		{"month 13", edit("DTSTART:20261201", "DTSTART:20261301"), "bad-date"},
		{"day 32", edit("DTSTART:20261201", "DTSTART:20261232"), "bad-date"},
		{"30 february", edit("DTSTART:20261201T090000Z", "DTSTART;VALUE=DATE:20270230"), "bad-date"},
		{"29 february, no leap year", edit("DTSTART:20261201T090000Z", "DTSTART;VALUE=DATE:20270229"), "bad-date"},
		{"24:00", edit("DTEND:20261201T100000Z", "DTEND:20261201T240000Z"), "bad-date"},
		{"minute 60", edit("DTEND:20261201T100000Z", "DTEND:20261201T096000Z"), "bad-date"},
		{"value=date with a time", edit("DTSTART:", "DTSTART;VALUE=DATE:"), "bad-date"},
		{"empty dtstart", edit("DTSTART:20261201T090000Z", "DTSTART:"), "bad-date"},
		{"bad period end", addLine("RDATE;VALUE=PERIOD:20261202T090000Z/20261302T100000Z"), "bad-date"},
		{"bad duration", edit("DTEND:20261201T100000Z", "DURATION:1H"), "bad-date"},
		{"bad created", addLine("CREATED:2026-11-25"), "bad-date"},
		{"bad until", addLine("RRULE:FREQ=DAILY;UNTIL=20261299"), "bad-date"},
		{"two starts", addLine("DTSTART:20261202T090000Z"), "malformed"},
		{"same start, other zone", addLine("DTSTART;TZID=Europe/Berlin:20261201T090000"), "malformed"},
		{"two organizers", addLine("ORGANIZER:mailto:m@evil.test"), "malformed"},
		{"nested event", addLine("BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT"), "malformed"},
		{"alarm is fine", addLine("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM"), ""},
		{"rrule without freq", addLine("RRULE:COUNT=3"), "malformed"},
		{"vtimezone", edit("BEGIN:VEVENT", zone+"BEGIN:VEVENT"), ""},
		{"empty vtimezone", edit("BEGIN:VEVENT", "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT"), "malformed"},
		{"vtimezone without tzid", edit("BEGIN:VEVENT", strings.Replace(zone, "TZID:Europe/Berlin\r\n", "", 1)+"BEGIN:VEVENT"), "malformed"},
		{"observance rule", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU")+"BEGIN:VEVENT"), ""},
		{"observance rule, outlook 1601", edit("BEGIN:VEVENT", strings.Replace(zoneRule("FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"), "19701025", "16010101", 1)+"BEGIN:VEVENT"), ""},
		{"observance rule, ended", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=19961027T010000Z")+"BEGIN:VEVENT"), ""},
		// Rules no zone has: no transition at all, and python-icalendar
		// (caldav, khal) fails on the zone (issue 13, attacks 5 and 10).
		{"observance 30 february", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")+"BEGIN:VEVENT"), "malformed"},
		{"observance 31 april", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31")+"BEGIN:VEVENT"), "malformed"},
		{"observance sixth sunday", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=4;BYDAY=-6SU")+"BEGIN:VEVENT"), "malformed"},
		{"observance setpos 10", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=2;BYDAY=SU;BYSETPOS=10")+"BEGIN:VEVENT"), "malformed"},
		{"observance week 54", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYWEEKNO=54")+"BEGIN:VEVENT"), "malformed"},
		{"observance month 13", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=13")+"BEGIN:VEVENT"), "malformed"},
		{"observance until before start", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;UNTIL=19600101T000000Z")+"BEGIN:VEVENT"), "malformed"},
		{"observance count 0", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;COUNT=0")+"BEGIN:VEVENT"), "malformed"},
		{"observance count 1", edit("BEGIN:VEVENT", zoneRule("FREQ=YEARLY;COUNT=1")+"BEGIN:VEVENT"), ""},
		{"observance monthly", edit("BEGIN:VEVENT", zoneRule("FREQ=MONTHLY;BYMONTHDAY=1")+"BEGIN:VEVENT"), "malformed"},
		{"observance without offset", edit("BEGIN:VEVENT", strings.Replace(zone, "TZOFFSETFROM:+0200\r\n", "", 1)+"BEGIN:VEVENT"), "malformed"},
		{"rrule unknown freq", addLine("RRULE:FREQ=FORTNIGHTLY"), "malformed"},
		{"secondly", addLine("RRULE:FREQ=SECONDLY;COUNT=1000000000"), "rrule-frequency"},
		{"minutely", addLine("RRULE:freq=minutely"), "rrule-frequency"},
		{"minutely exrule", addLine("RRULE:FREQ=DAILY\r\nEXRULE:FREQ=MINUTELY"), "rrule-frequency"},
		{"secondly cancel", strings.Replace(addLine("RRULE:FREQ=SECONDLY"), "METHOD:REQUEST", "METHOD:CANCEL", 1), "rrule-frequency"},
		{"bad dtstamp counts as missing", edit("DTSTAMP:20261125T100000Z", "DTSTAMP:2026-11-25T100000Z"), "missing-dtstamp"},
	}
	for _, c := range cases {
		cal, err := ics.Decode([]byte(c.ics), ics.Limits{})
		if err != nil {
			t.Fatalf("%s: decode: %v", c.name, err)
		}
		_, err = itip.ParseMessage(cal)
		var pe *itip.ParseError
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: refused (%v), want accepted", c.name, err)
		case c.reason != "" && (!errors.As(err, &pe) || string(pe.Reason) != c.reason):
			t.Errorf("%s: got %v, want %s", c.name, err, c.reason)
		}
	}
}
