package itip_test

import (
	"strings"
	"testing"
	"time"

	"imipd/itip"
	"imipd/itip/ics"
)

// exchangeZone is how Exchange names a zone: a display name as TZID.
const exchangeZone = "BEGIN:VTIMEZONE\r\nTZID:(UTC+01:00) Amsterdam\\, Berlin\\, Bern\\, Rome\\, Stockholm\\, Vienna\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"

func describeCal(t *testing.T, method, extra, event string) *itip.Message {
	t.Helper()
	src := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:" + method + "\r\n" + extra +
		"BEGIN:VEVENT\r\nUID:d-1@example.com\r\nDTSTAMP:20250301T100000Z\r\nSEQUENCE:0\r\n" +
		strings.ReplaceAll(strings.TrimSpace(event), "\n", "\r\n") + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	cal, err := ics.Decode([]byte(src), ics.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	m, err := itip.ParseMessage(cal)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDescribe pins the grammar of descriptions (README "How imipd
// describes a message"): times in the reader's zone, the organizer's zone
// name never shown, one date per occurrence, the end of a DTSTART+DURATION
// event, verbs that agree with "you", a name equal to its address once.
func TestDescribe(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	newYork, _ := time.LoadLocation("America/New_York")
	if berlin == nil || newYork == nil {
		t.Skip("no zone database")
	}
	bob := &itip.User{Address: "bob@example.com", Zone: berlin}
	carol := &itip.User{Address: "carol@example.com", Zone: berlin}
	const people = "ORGANIZER;CN=Carol Example:mailto:carol@example.com\nATTENDEE;CN=Bob:mailto:bob@example.com\n"
	for _, c := range []struct {
		name, method, extra, event string
		reader                     *itip.User
		want                       string
	}{
		{"exchange zone, reader in Berlin", "REQUEST", exchangeZone,
			"DTSTART;TZID=\"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna\":20250311T150000\nDTEND;TZID=\"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna\":20250311T160000\nSUMMARY:Budget review\\, Q1\n" + people,
			bob, "Carol Example <carol@example.com> invites you to “Budget review, Q1” on Tue 11 Mar 2025, 15:00–16:00 (Europe/Berlin)"},
		{"exchange zone, reader in New York", "REQUEST", exchangeZone,
			"DTSTART;TZID=\"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna\":20250311T150000\nDTEND;TZID=\"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna\":20250311T160000\nSUMMARY:Budget review\\, Q1\n" + people,
			&itip.User{Address: "bob@example.com", Zone: newYork}, "Carol Example <carol@example.com> invites you to “Budget review, Q1” on Tue 11 Mar 2025, 10:00–11:00 (America/New_York)"},
		{"no reader zone is UTC", "REQUEST", "",
			"DTSTART:20250311T140000Z\nDTEND:20250311T150000Z\nSUMMARY:Plan\n" + people,
			&itip.User{Address: "bob@example.com"}, "Carol Example <carol@example.com> invites you to “Plan” on Tue 11 Mar 2025, 14:00–15:00 (UTC)"},
		{"DTSTART and DURATION", "REQUEST", "",
			"DTSTART:20250311T140000Z\nDURATION:PT1H30M\nSUMMARY:Plan\n" + people,
			bob, "Carol Example <carol@example.com> invites you to “Plan” on Tue 11 Mar 2025, 15:00–16:30 (Europe/Berlin)"},
		{"the organizer reads: you invite", "REQUEST", "",
			"DTSTART:20250311T140000Z\nDTEND:20250311T150000Z\nSUMMARY:Plan\n" + people,
			carol, "You invite Bob <bob@example.com> to “Plan” on Tue 11 Mar 2025, 15:00–16:00 (Europe/Berlin)"},
		{"a name that is the address is shown once", "REQUEST", "",
			"DTSTART:20250311T140000Z\nDTEND:20250311T150000Z\nSUMMARY:Plan\nORGANIZER;CN=carol@example.com:mailto:carol@example.com\nATTENDEE:mailto:bob@example.com\nATTENDEE:mailto:dave@example.com\n",
			bob, "carol@example.com invites you and 1 other to “Plan” on Tue 11 Mar 2025, 15:00–16:00 (Europe/Berlin)"},
		{"an occurrence: its date once", "REQUEST", "",
			"RECURRENCE-ID:20250318T140000Z\nDTSTART:20250318T140000Z\nDTEND:20250318T150000Z\nSUMMARY:Weekly\n" + people,
			bob, "Carol Example <carol@example.com> invites you to the occurrence of “Weekly” on Tue 18 Mar 2025, 15:00–16:00 (Europe/Berlin)"},
		{"a moved occurrence", "REQUEST", "",
			"RECURRENCE-ID:20250318T140000Z\nDTSTART:20250319T090000Z\nDTEND:20250319T100000Z\nSUMMARY:Weekly\n" + people,
			bob, "Carol Example <carol@example.com> invites you to the occurrence of “Weekly” on Wed 19 Mar 2025, 10:00–11:00 (Europe/Berlin), moved from Tue 18 Mar 2025, 15:00"},
		{"a series", "REQUEST", "",
			"DTSTART:20250311T140000Z\nDTEND:20250311T150000Z\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=8\nSUMMARY:Sync\n" + people,
			bob, "Carol Example <carol@example.com> invites you to “Sync” on Tue 11 Mar 2025, 15:00–16:00 (Europe/Berlin), repeating every 2 weeks on Tue and Thu, 8 times"},
		{"all day, several days", "REQUEST", "",
			"DTSTART;VALUE=DATE:20250311\nDTEND;VALUE=DATE:20250314\nSUMMARY:Offsite\n" + people,
			bob, "Carol Example <carol@example.com> invites you to “Offsite” from Tue 11 Mar 2025 to Thu 13 Mar 2025 (all day)"},
		{"an all-day series", "REQUEST", "",
			"DTSTART;VALUE=DATE:20180425\nDTEND;VALUE=DATE:20180426\nRRULE:FREQ=WEEKLY;UNTIL=20180627T220000Z;BYDAY=WE\nSUMMARY:Recurring\n" + people,
			bob, "Carol Example <carol@example.com> invites you to “Recurring” on Wed 25 Apr 2018 (all day), repeating weekly on Wed, until Wed 27 Jun 2018"},
		{"across midnight", "REQUEST", "",
			"DTSTART:20250311T220000Z\nDTEND:20250312T010000Z\nSUMMARY:Night shift\n" + people,
			bob, "Carol Example <carol@example.com> invites you to “Night shift” from Tue 11 Mar 2025, 23:00 to Wed 12 Mar 2025, 02:00 (Europe/Berlin)"},
		{"you answered", "REPLY", "",
			"DTSTART:20250311T140000Z\nDTEND:20250311T150000Z\nSUMMARY:Plan\nORGANIZER:mailto:carol@example.com\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.com\n",
			bob, "You accepted “Plan” on Tue 11 Mar 2025, 15:00–16:00 (Europe/Berlin)"},
		{"you have not answered", "REPLY", "",
			"DTSTART:20250311T140000Z\nSUMMARY:Plan\nORGANIZER:mailto:carol@example.com\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com\n",
			bob, "You have not yet answered “Plan” on Tue 11 Mar 2025, 15:00 (Europe/Berlin)"},
		{"you ask", "REFRESH", "",
			"SUMMARY:Plan\nORGANIZER:mailto:carol@example.com\nATTENDEE:mailto:bob@example.com\n",
			bob, "You ask for the current version of “Plan”"},
		{"a counter", "COUNTER", "",
			"DTSTART:20250312T140000Z\nDTEND:20250312T150000Z\nSUMMARY:Plan\nORGANIZER:mailto:carol@example.com\nATTENDEE;CN=Bob:mailto:bob@example.com\n",
			carol, "Bob <bob@example.com> proposes a change to “Plan”: on Wed 12 Mar 2025, 15:00–16:00 (Europe/Berlin)"},
		{"a line break and no title", "CANCEL", "",
			"DTSTART:20250311T140000Z\nORGANIZER;CN=\"Carol^nExample\":mailto:carol@example.com\nATTENDEE:mailto:bob@example.com\n",
			bob, "Carol Example <carol@example.com> cancelled an untitled event on Tue 11 Mar 2025, 15:00 (Europe/Berlin)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := describeCal(t, c.method, c.extra, c.event)
			if got := itip.Describe(m, c.reader); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}
