package ics

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
)

func TestEncodeFoldMultibyte(t *testing.T) {
	summary := "" // ≥ 300 bytes of 1- to 4-byte characters
	for len(summary) < 300 {
		summary += "äö€😀x"
	}
	cal := &ical.Calendar{Component: &ical.Component{Name: "VCALENDAR", Props: ical.Props{}}}
	p := ical.NewProp("SUMMARY")
	p.Value = summary
	cal.Props.Set(p)
	out := Marshal(cal)
	checkLines(t, out)
	if n := bytes.Count(out, []byte("\r\n ")); n < 4 {
		t.Fatalf("expected folding, got %d folds:\n%s", n, out)
	}
	back := mustDecode(t, string(out))
	if got := back.Props.Get("SUMMARY").Value; got != summary {
		t.Fatalf("got %q", got)
	}
}

func TestEncodeParams(t *testing.T) {
	tests := []struct {
		values []string
		want   string
	}{
		{[]string{"plain"}, "X;P=plain:v"},
		{[]string{"Doe, John"}, `X;P="Doe, John":v`},
		{[]string{"a;b"}, `X;P="a;b":v`},
		{[]string{"mailto:a@x"}, `X;P="mailto:a@x":v`},
		{[]string{`George "Babe" Ruth`}, `X;P=George ^'Babe^' Ruth:v`},
		{[]string{`say "hi", ok`}, `X;P="say ^'hi^', ok":v`},
		{[]string{"a^b\nc"}, `X;P=a^^b^nc:v`},
		{[]string{"a", "b,c"}, `X;P=a,"b,c":v`},
		{[]string{""}, `X;P=:v`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			cal := &ical.Calendar{Component: &ical.Component{Name: "VCALENDAR", Props: ical.Props{}}}
			p := ical.NewProp("X")
			p.Value = "v"
			p.Params["P"] = tt.values
			cal.Props.Set(p)
			out := string(Marshal(cal))
			if want := "BEGIN:VCALENDAR\r\n" + tt.want + "\r\nEND:VCALENDAR\r\n"; out != want {
				t.Fatalf("got %q want %q", out, want)
			}
			back := mustDecode(t, out)
			if got := back.Props.Get("X").Params["P"]; !reflect.DeepEqual(got, tt.values) {
				t.Fatalf("decoded %q", got)
			}
		})
	}
}

func TestEncodeOrder(t *testing.T) {
	in := `BEGIN:VCALENDAR
VERSION:2.0
METHOD:REQUEST
PRODID:x
BEGIN:VEVENT
ZZZ:1
ATTENDEE;RSVP=TRUE;CN=B;B=1:mailto:b@x
SUMMARY:s
ATTENDEE:mailto:a@x
ORGANIZER:mailto:o@x
X-B:2
X-B:1
EXDATE:20240102
RDATE:20240103
RRULE:FREQ=DAILY
RECURRENCE-ID:20240101
DURATION:PT1H
DTSTART:20240101
DTSTAMP:20240101T000000Z
SEQUENCE:2
UID:u
BEGIN:VALARM
TRIGGER:-PT5M
END:VALARM
BEGIN:X-SECOND
END:X-SECOND
END:VEVENT
END:VCALENDAR
`
	want := `BEGIN:VCALENDAR
PRODID:x
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:u
SEQUENCE:2
DTSTAMP:20240101T000000Z
DTSTART:20240101
DURATION:PT1H
RECURRENCE-ID:20240101
RRULE:FREQ=DAILY
RDATE:20240103
EXDATE:20240102
ORGANIZER:mailto:o@x
ATTENDEE;B=1;CN=B;RSVP=TRUE:mailto:b@x
ATTENDEE:mailto:a@x
SUMMARY:s
X-B:2
X-B:1
ZZZ:1
BEGIN:VALARM
TRIGGER:-PT5M
END:VALARM
BEGIN:X-SECOND
END:X-SECOND
END:VEVENT
END:VCALENDAR
`
	if got := string(Marshal(mustDecode(t, in))); got != crlf(want) {
		t.Fatalf("got\n%s", got)
	}
}

func TestEncodeValueLineBreak(t *testing.T) {
	cal := &ical.Calendar{Component: &ical.Component{Name: "VCALENDAR", Props: ical.Props{}}}
	p := ical.NewProp("DESCRIPTION")
	p.Value = "a\r\nb\nc"
	cal.Props.Set(p)
	if got := string(Marshal(cal)); !strings.Contains(got, "DESCRIPTION:a\\nb\\nc\r\n") {
		t.Fatalf("got %q", got)
	}
}

func TestEncodeErrors(t *testing.T) {
	bad := []*ical.Calendar{
		nil,
		{},
		{Component: &ical.Component{Name: "VCAL ENDAR"}},
		{Component: &ical.Component{Name: "VCALENDAR", Props: ical.Props{"X:Y": {{Name: "X:Y"}}}}},
		{Component: &ical.Component{Name: "VCALENDAR", Props: ical.Props{"BEGIN": {{Name: "BEGIN", Value: "VEVENT"}}}}},
		{Component: &ical.Component{Name: "VCALENDAR", Props: ical.Props{"X": {{Name: "X", Params: ical.Params{"A B": {"c"}}}}}}},
		{Component: &ical.Component{Name: "VCALENDAR", Children: []*ical.Component{nil}}},
	}
	for i, cal := range bad {
		var b bytes.Buffer
		if err := Encode(&b, cal); err == nil {
			t.Errorf("%d: no error, wrote %q", i, b.String())
		}
		if Marshal(cal) != nil {
			t.Errorf("%d: Marshal returned data", i)
		}
	}
}
