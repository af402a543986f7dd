package itip_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"imipd/itip"
	"imipd/itip/ics"
)

// series is Bob's stored copy of a weekly meeting (issue 14): Tuesdays and
// Thursdays at 14:00 Berlin from 11 March 2025, eight times (across the
// change to summer time on 30 March), without 18 March, with an extra
// Saturday, and the 25th moved to 15:00 by the organizer.
const series = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd//imipd 1//EN\r\n" + berlin + `BEGIN:VEVENT
UID:weekly-1@remote.test
SEQUENCE:2
DTSTAMP:20250301T100000Z
DTSTART;TZID=Europe/Berlin:20250311T140000
DTEND;TZID=Europe/Berlin:20250311T150000
RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8
EXDATE;TZID=Europe/Berlin:20250318T140000
RDATE;TZID=Europe/Berlin:20250329T100000
SUMMARY:Budget review\, Q1
DESCRIPTION:Agenda:\nfigures\nplans
LOCATION;LANGUAGE=en;ALTREP="http://rooms.example/7":Room 7
STATUS:CONFIRMED
CATEGORIES:Finance,Planning
ORGANIZER;CN=Alice:mailto:alice@remote.test
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test
ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@remote.test
END:VEVENT
BEGIN:VEVENT
UID:weekly-1@remote.test
SEQUENCE:3
DTSTAMP:20250301T100000Z
RECURRENCE-ID;TZID=Europe/Berlin:20250325T140000
DTSTART;TZID=Europe/Berlin:20250325T150000
DTEND;TZID=Europe/Berlin:20250325T160000
SUMMARY:Budget review\, Q1
ORGANIZER;CN=Alice:mailto:alice@remote.test
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test
ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@remote.test
END:VEVENT
END:VCALENDAR
`

// windowsBerlin is how Exchange writes Berlin's zone.
const windowsBerlin = `BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
`

var seriesUser = itip.User{Address: "bob@example.test"}

// edit is a client's rewrite of series: pairs of old and new text,
// replaced in that order (n = -1: every occurrence).
func edit(s string, pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			panic("test data: " + pairs[i] + " not in the event")
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

const bobNA = "ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test"

func crlfText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// withOverride adds an override as Thunderbird adds one to answer a single
// occurrence: a copy of the master without its recurrence.
func withOverride(s, rid, start, end, partstat string) string {
	ov := "BEGIN:VEVENT\r\nUID:weekly-1@remote.test\r\nSEQUENCE:2\r\nDTSTAMP:20250305T080000Z\r\nRECURRENCE-ID;TZID=Europe/Berlin:" + rid +
		"\r\nDTSTART;TZID=Europe/Berlin:" + start + "\r\nDTEND;TZID=Europe/Berlin:" + end + "\r\n" +
		"SUMMARY:Budget review\\, Q1\r\nDESCRIPTION:Agenda:\\nfigures\\nplans\r\nLOCATION;LANGUAGE=en;ALTREP=\"http://rooms.example/7\":Room 7\r\n" +
		"STATUS:CONFIRMED\r\nCATEGORIES:Finance,Planning\r\nORGANIZER;CN=Alice:mailto:alice@remote.test\r\n" +
		"ATTENDEE;CN=Bob;PARTSTAT=" + partstat + ":mailto:bob@example.test\r\nATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@remote.test\r\nEND:VEVENT\r\n"
	return strings.Replace(s, "END:VCALENDAR", ov+"END:VCALENDAR", 1)
}

// manyOverrides adds n overrides, one for each day of a daily series.
func manyOverrides(s string, n int) string {
	s = edit(s, "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8", "FREQ=DAILY")
	for i := 0; i < n; i++ {
		day := fmt.Sprintf("202504%02dT140000", i+1)
		end := fmt.Sprintf("202504%02dT150000", i+1)
		s = withOverride(s, day, day, end, "DECLINED")
	}
	return s
}

func manyAnswers(n int) []itip.Answer {
	var out []itip.Answer
	for i := 0; i < n; i++ {
		out = append(out, itip.Answer{RecurrenceID: fmt.Sprintf("202504%02dT120000Z", i+1), Action: "decline"})
	}
	return out
}

// TestAttendeeEdit: what calendar apps rewrite when the user answers is the
// same event (RFC 6638 §3.2.2.1); what only the organizer may change is
// refused, naming the property.
func TestAttendeeEdit(t *testing.T) {
	s := crlfText(series)
	accept := func(x string) string {
		return strings.ReplaceAll(x, bobNA, "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.test")
	}
	tests := []struct {
		name         string
		stored, edit string // stored "" = s
		answers      []itip.Answer
		refused      string // a word of the refusal; "" = allowed
	}{
		{name: "unchanged", edit: s},
		{name: "accepted, as written back", edit: accept(s), answers: []itip.Answer{{Action: "accept"}}},
		// python3-caldav (icalendar): RRULE parts re-ordered, SEQUENCE bumped.
		{name: "RRULE parts re-ordered", edit: accept(edit(s, "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8", "FREQ=WEEKLY;COUNT=8;BYDAY=TU,TH", "SEQUENCE:2", "SEQUENCE:3")),
			answers: []itip.Answer{{Action: "accept"}}},
		{name: "RRULE value case, list order, defaults", edit: edit(s, "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8", "freq=weekly;byday=th,tu;count=08;INTERVAL=1;WKST=MO")},
		{name: "WKST where it cannot matter", edit: edit(s, "COUNT=8", "COUNT=8;WKST=SU")},
		{name: "an empty LOCATION for none", stored: edit(s, "LOCATION;LANGUAGE=en;ALTREP=\"http://rooms.example/7\":Room 7\r\n", ""),
			edit: edit(s, "LOCATION;LANGUAGE=en;ALTREP=\"http://rooms.example/7\":Room 7", "LOCATION:")},
		{name: "RRULE UNTIL in UTC or in the zone",
			stored: edit(s, "COUNT=8", "UNTIL=20250403T120000Z"), edit: edit(s, "COUNT=8", "UNTIL=20250403T140000")},
		{name: "parameters re-ordered, names and values in other case", edit: edit(s,
			`LOCATION;LANGUAGE=en;ALTREP="http://rooms.example/7":Room 7`, `LOCATION;altrep="http://rooms.example/7";Language=EN:Room 7`,
			"ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED", "ATTENDEE;partstat=accepted;CN=Carol")},
		{name: "folded lines", edit: edit(s, "DESCRIPTION:Agenda:\\nfigures\\nplans", "DESCRIPTION:Agenda:\\nfig\r\n ures\\nplans")},
		{name: "text escapes", edit: edit(s, "DESCRIPTION:Agenda:\\nfigures\\nplans", "DESCRIPTION:Agenda:\\Nfigures\\Nplans  ")},
		{name: "status in lower case, PRIORITY:0", edit: edit(s, "STATUS:CONFIRMED", "STATUS:confirmed\r\nPRIORITY:0")},
		{name: "CATEGORIES split", edit: edit(s, "CATEGORIES:Finance,Planning", "CATEGORIES:Planning\r\nCATEGORIES:Finance")},
		{name: "EXDATE and RDATE in UTC", edit: edit(s,
			"EXDATE;TZID=Europe/Berlin:20250318T140000", "EXDATE:20250318T130000Z",
			"RDATE;TZID=Europe/Berlin:20250329T100000", "RDATE:20250329T090000Z")},
		{name: "EXDATE lists merged", stored: edit(s, "EXDATE;TZID=Europe/Berlin:20250318T140000", "EXDATE;TZID=Europe/Berlin:20250318T140000\r\nEXDATE;TZID=Europe/Berlin:20250320T140000"),
			edit: edit(s, "EXDATE;TZID=Europe/Berlin:20250318T140000", "EXDATE;TZID=Europe/Berlin:20250320T140000,20250318T140000")},
		{name: "an override's times in UTC", edit: edit(s,
			"RECURRENCE-ID;TZID=Europe/Berlin:20250325T140000", "RECURRENCE-ID:20250325T130000Z",
			"DTSTART;TZID=Europe/Berlin:20250325T150000", "DTSTART:20250325T140000Z")},
		{name: "DURATION for DTEND", edit: edit(s, "DTEND;TZID=Europe/Berlin:20250311T150000", "DURATION:PT1H")},
		{name: "VTIMEZONE regenerated under its Windows name", edit: edit(s, crlfText(berlin), crlfText(windowsBerlin), "TZID=Europe/Berlin:", "TZID=W. Europe Standard Time:")},
		{name: "what clients add", edit: edit(s, "SEQUENCE:2", "SEQUENCE:5\r\nLAST-MODIFIED:20250305T080000Z\r\nX-MOZ-GENERATION:3",
			"ORGANIZER;CN=Alice", "ORGANIZER;CN=Alice;SCHEDULE-STATUS=1.2;X-APPLE-X=1", "PRODID:-//imipd//imipd 1//EN", "PRODID:-//python-caldav//EN")},
		{name: "alarm, TRANSP and CLASS", edit: edit(s, "STATUS:CONFIRMED", "STATUS:CONFIRMED\r\nTRANSP:TRANSPARENT\r\nCLASS:PRIVATE\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM")},
		{name: "declined, the override too", edit: strings.ReplaceAll(s, bobNA, "ATTENDEE;CN=Bob;PARTSTAT=DECLINED:mailto:bob@example.test"),
			answers: []itip.Answer{{Action: "decline"}}},
		{name: "accepted, the moved one declined", edit: edit(accept(s), "PARTSTAT=ACCEPTED:mailto:bob@example.test\r\nATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR",
			"PARTSTAT=DECLINED:mailto:bob@example.test\r\nATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR"),
			answers: []itip.Answer{{Action: "accept"}, {RecurrenceID: "20250325T130000Z", Action: "decline"}}},
		{name: "one occurrence declined by a new override", edit: withOverride(s, "20250320T140000", "20250320T140000", "20250320T150000", "DECLINED"),
			answers: []itip.Answer{{RecurrenceID: "20250320T130000Z", Action: "decline"}}},
		{name: "an override after the change to summer time", edit: withOverride(s, "20250401T140000", "20250401T140000", "20250401T150000", "TENTATIVE"),
			answers: []itip.Answer{{RecurrenceID: "20250401T120000Z", Action: "tentative"}}},

		// The organizer's changes.
		{name: "DTSTART moved", edit: edit(s, "DTSTART;TZID=Europe/Berlin:20250311T140000", "DTSTART;TZID=Europe/Berlin:20250311T150000"), refused: "DTSTART"},
		{name: "an override moved", edit: edit(s, "DTSTART;TZID=Europe/Berlin:20250325T150000", "DTSTART;TZID=Europe/Berlin:20250325T160000"), refused: "DTSTART"},
		{name: "the series in UTC (its summer occurrences move)", edit: edit(s, "DTSTART;TZID=Europe/Berlin:20250311T140000", "DTSTART:20250311T130000Z"), refused: "DTSTART"},
		{name: "a date for a date-time", edit: edit(s, "DTSTART;TZID=Europe/Berlin:20250311T140000", "DTSTART;VALUE=DATE:20250311"), refused: "DTSTART"},
		{name: "floating for zoned", edit: edit(s, "DTSTART;TZID=Europe/Berlin:20250311T140000", "DTSTART:20250311T140000"), refused: "DTSTART"},
		{name: "longer", edit: edit(s, "DTEND;TZID=Europe/Berlin:20250311T150000", "DURATION:PT90M"), refused: "DTEND"},
		{name: "an extra EXDATE", edit: edit(s, "EXDATE;TZID=Europe/Berlin:20250318T140000", "EXDATE;TZID=Europe/Berlin:20250318T140000,20250320T140000"), refused: "EXDATE"},
		{name: "an extra EXDATE line", edit: edit(s, "EXDATE;TZID=Europe/Berlin:20250318T140000", "EXDATE;TZID=Europe/Berlin:20250318T140000\r\nEXDATE:20250320T130000Z"), refused: "EXDATE"},
		{name: "EXDATE removed", edit: edit(s, "EXDATE;TZID=Europe/Berlin:20250318T140000\r\n", ""), refused: "EXDATE"},
		{name: "RDATE moved", edit: edit(s, "RDATE;TZID=Europe/Berlin:20250329T100000", "RDATE;TZID=Europe/Berlin:20250329T110000"), refused: "RDATE"},
		{name: "COUNT", edit: edit(s, "COUNT=8", "COUNT=9"), refused: "RRULE"},
		{name: "BYDAY", edit: edit(s, "BYDAY=TU,TH", "BYDAY=TU"), refused: "RRULE"},
		{name: "INTERVAL=2", edit: edit(s, "COUNT=8", "COUNT=8;INTERVAL=2"), refused: "RRULE"},
		{name: "WKST where it matters", stored: edit(s, "COUNT=8", "COUNT=8;INTERVAL=2"), edit: edit(s, "COUNT=8", "COUNT=8;INTERVAL=2;WKST=SU"), refused: "RRULE"},
		{name: "UNTIL an hour later", stored: edit(s, "COUNT=8", "UNTIL=20250403T120000Z"), edit: edit(s, "COUNT=8", "UNTIL=20250403T130000Z"), refused: "RRULE"},
		{name: "SUMMARY", edit: edit(s, "SUMMARY:Budget review\\, Q1\r\nDESCRIPTION", "SUMMARY:Budget review Q1\r\nDESCRIPTION"), refused: "SUMMARY"},
		{name: "LOCATION's language", edit: edit(s, "LANGUAGE=en", "LANGUAGE=de"), refused: "LOCATION"},
		{name: "a category", edit: edit(s, "CATEGORIES:Finance,Planning", "CATEGORIES:Finance"), refused: "CATEGORIES"},
		{name: "STATUS", edit: edit(s, "STATUS:CONFIRMED", "STATUS:TENTATIVE"), refused: "STATUS"},
		{name: "another attendee's answer", edit: edit(s, "ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED", "ATTENDEE;CN=Carol;PARTSTAT=DECLINED"), refused: "ATTENDEE"},
		{name: "an attendee added", edit: edit(s, "ATTENDEE;CN=Carol", "ATTENDEE:mailto:dave@remote.test\r\nATTENDEE;CN=Carol"), refused: "ATTENDEE"},
		{name: "the override removed", edit: s[:strings.LastIndex(s, "BEGIN:VEVENT")] + "END:VCALENDAR\r\n", refused: "removing an occurrence"},
		{name: "an override for a day not in the series", edit: withOverride(s, "20250319T140000", "20250319T140000", "20250319T150000", "DECLINED"), refused: "not an occurrence"},
		{name: "an override for the excluded day", edit: withOverride(s, "20250318T140000", "20250318T140000", "20250318T150000", "DECLINED"), refused: "not an occurrence"},
		{name: "a new override that moves its occurrence", edit: withOverride(s, "20250320T140000", "20250320T150000", "20250320T160000", "DECLINED"), refused: "DTSTART"},
		{name: "as many new overrides as one write may add", stored: edit(s, "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8", "FREQ=DAILY"),
			edit: manyOverrides(s, itip.MaxNewOverrides), answers: manyAnswers(itip.MaxNewOverrides)},
		{name: "more new overrides than one write may add", stored: edit(s, "FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8", "FREQ=DAILY"),
			edit: manyOverrides(s, itip.MaxNewOverrides+1), refused: "at most 20"},
		{name: "PARTSTAT DELEGATED", edit: strings.ReplaceAll(s, bobNA, "ATTENDEE;CN=Bob;PARTSTAT=DELEGATED:mailto:bob@example.test"), refused: "PARTSTAT DELEGATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stored := tt.stored
			if stored == "" {
				stored = s
			}
			sc, err := ics.Decode([]byte(stored), ics.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			ec, err := ics.Decode([]byte(tt.edit), ics.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			before := string(ics.Marshal(sc))
			got, err := itip.AttendeeEdit(sc, ec, &seriesUser)
			if string(ics.Marshal(sc)) != before {
				t.Error("the stored calendar was changed")
			}
			if tt.refused != "" {
				if !errors.Is(err, itip.ErrAttendeeEdit) || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("got %v, %v; want a refusal naming %s", got, err, tt.refused)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !slices.Equal(got, tt.answers) {
				t.Errorf("answers %+v, want %+v", got, tt.answers)
			}
		})
	}
}

// FuzzAttendeeEdit: an event compared with itself, and with itself written
// by imipd's encoder and read again, is the same event (no refusal, no
// answer), whatever it holds.
func FuzzAttendeeEdit(f *testing.F) {
	f.Add(crlfText(series))
	f.Add(fuzzStored)
	f.Add(withOverride(crlfText(series), "20250320T140000", "20250320T140000", "20250320T150000", "DECLINED"))
	f.Add("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;VALUE=DATE:20250311\r\nRRULE:FREQ=MONTHLY;BYDAY=+1MO,-1fr;UNTIL=20251231\r\nGEO:1.50;-2\r\nCATEGORIES:a\\,b,c\r\nEXDATE;VALUE=DATE:20250407,20250505\r\nRDATE;VALUE=PERIOD:20250601T100000Z/PT1H\r\nATTENDEE;PARTSTAT=accepted:MAILTO:Bob@Example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	f.Fuzz(func(t *testing.T, data string) {
		cal, err := ics.Decode([]byte(data), ics.Limits{})
		if err != nil {
			return
		}
		u := itip.User{Address: "bob@example.test"}
		if a, err := itip.AttendeeEdit(cal, cal, &u); err != nil || len(a) > 0 {
			t.Fatalf("compared with itself: %v %v", a, err)
		}
		out := ics.Marshal(cal)
		if out == nil {
			return
		}
		again, err := ics.Decode(out, ics.Limits{})
		if err != nil {
			t.Fatalf("re-encoded: %v", err)
		}
		if a, err := itip.AttendeeEdit(cal, again, &u); err != nil || len(a) > 0 {
			t.Fatalf("compared with itself re-encoded: %v %v\n%s", a, err, out)
		}
	})
}

// TestParseInstance: the forms a user types for one occurrence of series
// (`imipctl respond -instance`), and a day the series does not have.
func TestParseInstance(t *testing.T) {
	cal, err := ics.Decode([]byte(crlfText(series)), ics.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	allDay, err := ics.Decode([]byte(edit(crlfText(series), "DTSTART;TZID=Europe/Berlin:20250311T140000\r\nDTEND;TZID=Europe/Berlin:20250311T150000",
		"DTSTART;VALUE=DATE:20250311", "EXDATE;TZID=Europe/Berlin:20250318T140000", "EXDATE;VALUE=DATE:20250318")), ics.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want string
		day      bool
	}{
		{in: "20250320T140000", want: "20250320T130000Z"},
		{in: "20250320T130000Z", want: "20250320T130000Z"},
		{in: "20250320t130000z", want: "20250320T130000Z"},
		{in: "2025-03-20T14:00", want: "20250320T130000Z"},
		{in: "2025-03-20T14:00:00+01:00", want: "20250320T130000Z"},
		{in: "2025-03-20", want: "20250320T130000Z"},
		{in: "20250320", want: "20250320T130000Z"},
		{in: "2025-04-01", want: "20250401T120000Z"},          // summer time: 14:00 is 12:00Z
		{in: "20250325T140000", want: "20250325T130000Z"},     // the moved one, by its RECURRENCE-ID
		{in: "2025-03-29T10:00", want: "20250329T090000Z"},    // the RDATE
		{in: "2025-03-20", want: "20250320", day: true},       // all day
		{in: "20250320T000000Z", want: "20250320", day: true}, // all day, any time of that day
		{in: "2025-03-19"},            // a Wednesday
		{in: "2025-03-18"},            // EXDATE
		{in: "2025-03-20T15:00"},      // another time
		{in: "2025-04-08"},            // after COUNT
		{in: "2025-03-18", day: true}, // all day, EXDATE
		{in: "next tuesday"},
	}
	for _, tt := range tests {
		c := cal
		if tt.day {
			c = allDay
		}
		got, err := itip.ParseInstance(tt.in, c)
		if tt.want == "" {
			if !errors.Is(err, itip.ErrNoInstance) || !strings.Contains(err.Error(), "Budget review, Q1") && !strings.Contains(err.Error(), "not a date") {
				t.Errorf("%q (all day %v): %q %v, want an error naming the event", tt.in, tt.day, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q (all day %v): %q %v, want %q", tt.in, tt.day, got, err, tt.want)
		}
	}
}

// TestRespondOneOccurrence: declining one occurrence of the series that
// has no override yet (issue 14, item 4) adds the override with the user's
// PARTSTAT and sends a REPLY with that RECURRENCE-ID only (RFC 5546
// §3.2.3); the series and the organizer's override keep their answers.
func TestRespondOneOccurrence(t *testing.T) {
	cal, err := ics.Decode([]byte(crlfText(series)), ics.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := ics.Decode([]byte(crlfText(series)), ics.DefaultLimits())
	req.Props.SetText("METHOD", "REQUEST")
	msg, err := itip.ParseMessage(req)
	if err != nil {
		t.Fatal(err)
	}
	d := itip.Decision{Kind: itip.KindInvitation, Action: "decline", RecurrenceID: "20250401T120000Z", Msg: msg, Stored: cal, User: seriesUser, Now: genNow}
	res, err := itip.Respond(d)
	if err != nil {
		t.Fatal(err)
	}
	out := string(ics.Marshal(res.Cal))
	if n := strings.Count(out, "BEGIN:VEVENT"); n != 3 {
		t.Fatalf("%d components, want the series, the moved one and the new override:\n%s", n, out)
	}
	ov := out[strings.LastIndex(out, "BEGIN:VEVENT"):]
	for _, want := range []string{"RECURRENCE-ID;TZID=Europe/Berlin:20250401T140000", "DTSTART;TZID=Europe/Berlin:20250401T140000",
		"DTEND;TZID=Europe/Berlin:20250401T150000", "PARTSTAT=DECLINED:mailto:bob@example.test"} {
		if !strings.Contains(ov, want) {
			t.Errorf("the override lacks %s:\n%s", want, ov)
		}
	}
	if strings.Contains(ov, "RRULE") || strings.Count(out, "PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob") != 2 {
		t.Errorf("stored:\n%s", out)
	}
	if res.ObsoleteInstance != "20250401T120000Z" {
		t.Errorf("ObsoleteInstance %q: an answer for one occurrence must leave the series' invitation open", res.ObsoleteInstance)
	}
	if len(res.Send) != 1 || res.Send[0].Method != itip.Reply {
		t.Fatalf("sent %+v", res.Send)
	}
	reply := string(ics.Marshal(res.Send[0].Cal))
	if strings.Count(reply, "BEGIN:VEVENT") != 1 || !strings.Contains(reply, "RECURRENCE-ID;TZID=Europe/Berlin:20250401T140000") ||
		!strings.Contains(reply, "PARTSTAT=DECLINED") || !strings.Contains(reply, "BEGIN:VTIMEZONE") {
		t.Errorf("REPLY:\n%s", reply)
	}
	// Wednesday 19 March is no occurrence: an error naming the event,
	// nothing changed.
	d.RecurrenceID = "20250319T130000Z"
	if res, err := itip.Respond(d); !errors.Is(err, itip.ErrNoInstance) || !strings.Contains(err.Error(), "weekly-1@remote.test") {
		t.Errorf("a day not in the series: %+v %v", res, err)
	}
}

// FuzzParseInstance: whatever a user types as -instance, no panic; what
// is accepted is an occurrence the series makes, in its key form.
func FuzzParseInstance(f *testing.F) {
	for _, s := range []string{"20250320T140000", "20250320T130000Z", "2025-03-20", "2025-03-20T14:00:00+01:00", "99991231", "2025-02-29", "0000-01-01T00:00"} {
		f.Add(s)
	}
	cal, err := ics.Decode([]byte(crlfText(series)), ics.DefaultLimits())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := itip.ParseInstance(s, cal)
		if err != nil {
			if !errors.Is(err, itip.ErrNoInstance) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if again, err := itip.ParseInstance(k, cal); err != nil || again != k {
			t.Fatalf("%q is %q, read again %q %v", s, k, again, err)
		}
	})
}
