package ics

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
)

// hostileValues are parameter and property values that try to end their
// line (issue 13, attack 10): RFC 6868 ^n decoded into a raw line break in
// a CN, a component boundary, a '"', raw CR/LF, control characters, and the
// line breaks Python's str.splitlines also honours.
var hostileValues = []string{
	"Carol\nDESCRIPTION:Room changed. Dial in at https://evil.example/\nURL:https://evil.example/",
	"x\nEND:VEVENT\nBEGIN:VEVENT\nUID:planted@evil.example\nSUMMARY:Planted",
	`George "Babe" Ruth`,
	"a\r\nDESCRIPTION:crlf\rURL:cr",
	"ctl\x01\x0b\x0c\x1c\x1d\x1e\x7fend",
	"nel\u0085DESCRIPTION:x\u2028URL:y\u2029SUMMARY:z",
	"caret ^n ^^ ^' ;:,\t",
}

// oneValueEvent is a calendar with one VEVENT whose ATTENDEE carries v as
// its CN and whose COMMENT carries v as its value.
func oneValueEvent(v string) *ical.Calendar {
	ev := &ical.Component{Name: ical.CompEvent, Props: ical.Props{}}
	for _, p := range [][2]string{{ical.PropUID, "u1"}, {ical.PropDateTimeStamp, "20261125T100000Z"}, {ical.PropDateTimeStart, "20261201T090000Z"}} {
		ev.Props.Set(&ical.Prop{Name: p[0], Value: p[1], Params: ical.Params{}})
	}
	ev.Props.Add(&ical.Prop{Name: ical.PropAttendee, Value: "mailto:carol@remote.example", Params: ical.Params{ical.ParamCommonName: {v}, "PARTSTAT": {"ACCEPTED"}}})
	ev.Props.Add(&ical.Prop{Name: ical.PropComment, Value: v, Params: ical.Params{}})
	cal := &ical.Calendar{Component: &ical.Component{Name: ical.CompCalendar, Props: ical.Props{}}}
	cal.Props.Set(&ical.Prop{Name: ical.PropVersion, Value: "2.0", Params: ical.Params{}})
	cal.Props.Set(&ical.Prop{Name: ical.PropProductID, Value: "-//t//EN", Params: ical.Params{}})
	cal.Children = []*ical.Component{ev}
	return cal
}

// checkOneValue decodes out and checks that it is still one VEVENT with
// exactly the properties of oneValueEvent, the CN and COMMENT being v as
// Decode reads it (cleanParam, cleanValue).
func checkOneValue(t *testing.T, how string, out []byte, v string) {
	t.Helper()
	back, err := Decode(out, Limits{MaxBytes: 4*len(out) + 1024, MaxLineBytes: 4 << 20})
	if err != nil {
		t.Fatalf("%s: %v\n%s", how, err, out)
	}
	if len(back.Children) != 1 || len(back.Children[0].Children) != 0 {
		t.Fatalf("%s: %d components, want one VEVENT:\n%s", how, len(back.Children), out)
	}
	ev := back.Children[0]
	for name, ps := range ev.Props {
		switch name {
		case ical.PropUID, ical.PropDateTimeStamp, ical.PropDateTimeStart, ical.PropAttendee, ical.PropComment:
			if len(ps) != 1 {
				t.Errorf("%s: %d %s properties", how, len(ps), name)
			}
		default:
			t.Errorf("%s: extra property %s:%s\n%s", how, name, ps[0].Value, out)
		}
	}
	// Decode reads invalid UTF-8 as U+FFFD.
	wantCN := cleanParam(strings.ToValidUTF8(cleanParam(v), "\uFFFD"))
	wantComment := cleanValue(strings.ToValidUTF8(cleanValue(v), "\uFFFD"))
	a := ev.Props.Get(ical.PropAttendee)
	if a == nil || a.Value != "mailto:carol@remote.example" || len(a.Params) != 2 || a.Params.Get(ical.ParamCommonName) != wantCN {
		t.Errorf("%s: ATTENDEE %+v, want CN %q\n%s", how, a, wantCN, out)
	}
	if c := ev.Props.Get(ical.PropComment); c == nil || c.Value != wantComment {
		t.Errorf("%s: COMMENT %+v, want %q", how, c, wantComment)
	}
	for _, line := range strings.Split(string(out), "\r\n") {
		for _, r := range line {
			if r < 0x20 && r != '\t' || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
				t.Errorf("%s: line break or control character %U in a line: %q", how, r, line)
			}
		}
	}
}

// checkBothEncoders writes oneValueEvent(v) with Encode and with go-ical's
// encoder on Escaped, checks both, and returns the calendar and go-ical's
// output.
func checkBothEncoders(t *testing.T, v string) (*ical.Calendar, []byte) {
	t.Helper()
	cal := oneValueEvent(v)
	checkOneValue(t, "Encode", Marshal(cal), v)
	var buf bytes.Buffer
	if err := ical.NewEncoder(&buf).Encode(Escaped(cal)); err != nil {
		t.Fatalf("go-ical on Escaped(%q): %v", v, err)
	}
	checkOneValue(t, "go-ical(Escaped)", buf.Bytes(), v)
	return cal, buf.Bytes()
}

// TestValuesStayOneValue: whatever a stored value holds, Encode and
// go-ical's encoder on Escaped (CalDAV) write it as that one value, and
// what go-ical wrote (a CalDAV client's PUT of it) reads back the same.
func TestValuesStayOneValue(t *testing.T) {
	for _, v := range hostileValues {
		cal, out := checkBothEncoders(t, v)
		if cal.Children[0].Props.Get(ical.PropComment).Value != v {
			t.Fatalf("Escaped changed its argument")
		}
		put, err := Decode(out, Limits{})
		if err != nil {
			t.Fatalf("decoding go-ical's output for %q: %v", v, err)
		}
		if got := put.Children[0].Props.Get(ical.PropAttendee).Params.Get(ical.ParamCommonName); got != cleanParam(v) {
			t.Errorf("go-ical's output decoded: CN %q, want %q", got, cleanParam(v))
		}
	}
}

// TestDecodeCleansValues: what Decode returns holds no control character
// and no line break but LF in a parameter value (RFC 6868 ^n), so that
// stored data is what Encode writes back unchanged.
func TestDecodeCleansValues(t *testing.T) {
	in := "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:a\x01b\u2028c\r\nATTENDEE;CN=\"x^ny\u0085z\x1e\":mailto:a@b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	cal, err := Decode([]byte(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ev := cal.Children[0]
	if got := ev.Props.Get("SUMMARY").Value; got != `ab\nc` {
		t.Errorf("SUMMARY %q", got)
	}
	if got := ev.Props.Get("ATTENDEE").Params.Get("CN"); got != "x\ny\nz" {
		t.Errorf("CN %q", got)
	}
}

// TestEscapedGoICalAccepts: go-ical's encoder refuses a whole calendar over
// one structure it dislikes, which cut CalDAV responses off; Escaped's copy
// leaves those parts out and keeps the event.
func TestEscapedGoICalAccepts(t *testing.T) {
	const event = "BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20261125T100000Z\r\nDTSTART;TZID=Europe/Berlin:20261201T100000\r\nSUMMARY:Kept\r\n%sEND:VEVENT\r\n"
	for _, c := range []struct{ name, before, inside string }{
		{"empty VTIMEZONE", "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nEND:VTIMEZONE\r\n", ""},
		{"observance without TZOFFSETFROM", "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", ""},
		{"VTIMEZONE without TZID", "BEGIN:VTIMEZONE\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n", ""},
		{"UID twice", "", "UID:u1\r\n"},
		{"DESCRIPTION twice", "", "DESCRIPTION:a\r\nDESCRIPTION:b\r\n"},
		{"DTEND and DURATION", "", "DTEND;TZID=Europe/Berlin:20261201T110000\r\nDURATION:PT1H\r\n"},
		{"VEVENT in VEVENT", "", "BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n"},
		{"two PRODIDs", "PRODID:-//other//EN\r\n", ""},
	} {
		in := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + c.before + fmt.Sprintf(event, c.inside) + "END:VCALENDAR\r\n"
		cal, err := Decode([]byte(in), Limits{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var raw bytes.Buffer
		if ical.NewEncoder(&raw).Encode(cal) == nil {
			t.Errorf("%s: go-ical accepts the calendar as it is; the case tests nothing", c.name)
		}
		var buf bytes.Buffer
		if err := ical.NewEncoder(&buf).Encode(Escaped(cal)); err != nil {
			t.Errorf("%s: go-ical refuses Escaped's copy: %v", c.name, err)
			continue
		}
		back := mustDecode(t, buf.String())
		var ev *ical.Component
		for _, ch := range back.Children {
			if ch.Name == ical.CompEvent {
				ev = ch
			}
		}
		if ev == nil || ev.Props.Get(ical.PropSummary).Value != "Kept" || ev.Props.Get(ical.PropUID).Value != "u1" {
			t.Errorf("%s: the event is gone:\n%s", c.name, buf.String())
		}
	}
}

// Escaped leaves out a VTIMEZONE observance whose rule no zone has (stored
// before intake refused it): python-icalendar (caldav, khal) fails on such
// a zone with an IndexError, and the caldav library then cannot list the
// collection at all (issue 13, attacks 5 and 10). The zone keeps its other
// observances; a zone left with none goes; a real zone stays whole.
func TestEscapedLeavesOutNeverZone(t *testing.T) {
	const feb30 = "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\n"
	const march = "BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\n"
	for _, c := range []struct {
		name, obs       string
		zone, std, dayl bool // what Escaped keeps
	}{
		{"never and real", feb30 + march, true, false, true},
		{"never only", feb30, false, false, false},
		{"real only", march, true, false, true},
	} {
		in := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTIMEZONE\r\nTZID:Z\r\n" + c.obs + "END:VTIMEZONE\r\n" +
			"BEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20261125T100000Z\r\nDTSTART;TZID=Z:20261201T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
		var buf bytes.Buffer
		if err := ical.NewEncoder(&buf).Encode(Escaped(mustDecode(t, in))); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		out := buf.String()
		if strings.Contains(out, "BEGIN:VTIMEZONE") != c.zone || strings.Contains(out, "BYMONTHDAY=30") != c.std ||
			strings.Contains(out, "BEGIN:DAYLIGHT") != c.dayl || !strings.Contains(out, "UID:u1") {
			t.Errorf("%s: Escaped gave\n%s", c.name, out)
		}
	}
}
