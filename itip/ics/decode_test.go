package ics

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-ical"
)

func mustDecode(t *testing.T, s string) *ical.Calendar {
	t.Helper()
	cal, err := Decode([]byte(s), Limits{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return cal
}

func event(t *testing.T, cal *ical.Calendar) *ical.Component {
	t.Helper()
	for _, c := range cal.Children {
		if c.Name == ical.CompEvent {
			return c
		}
	}
	t.Fatal("no VEVENT")
	return nil
}

func TestDecodeSyntax(t *testing.T) {
	const head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n"
	const tail = "END:VEVENT\r\nEND:VCALENDAR\r\n"
	tests := []struct {
		name, in string
	}{
		{"param without colon (go-ical panics)", head + "X;A=b\r\n" + tail},
		{"param without colon, top level", "BEGIN:VCALENDAR\r\nX;A=b\r\nEND:VCALENDAR\r\n"},
		{"param without equal", head + "X;A:b\r\n" + tail},
		{"unterminated quote", head + "X;A=\"b:c\r\n" + tail},
		{"quoted value at end without colon", head + "X;A=\"bc\"\r\n" + tail},
		{"garbage after quoted value", head + "X;A=\"b\"c:d\r\n" + tail},
		{"missing colon", head + "SUMMARY hello\r\n" + tail},
		{"empty name", head + ":x\r\n" + tail},
		{"empty param name", head + "X;=a:b\r\n" + tail},
		{"mismatched END", head + "END:VTODO\r\nEND:VCALENDAR\r\n"},
		{"END without BEGIN", "END:VCALENDAR\r\n"},
		{"truncated", head},
		{"empty", ""},
		{"only blank lines", "\r\n\r\n  \r\n"},
		{"not a calendar", "BEGIN:VCARD\r\nEND:VCARD\r\n"},
		{"property before BEGIN", "VERSION:2.0\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"},
		{"bad component name", "BEGIN:VCALENDAR\r\nBEGIN:V EVENT\r\nEND:V EVENT\r\nEND:VCALENDAR\r\n"},
		{"lone CR", head + "SUMMARY:a\rb\r\n" + tail},
		{"NUL", head + "SUMMARY:a\x00b\r\n" + tail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cal, err := Decode([]byte(tt.in), Limits{})
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("got %v, %v; want ErrSyntax", cal, err)
			}
		})
	}
}

func TestDecodeForms(t *testing.T) {
	want := mustDecode(t, crlf(fixExchange))
	wantSummary := "Weekly sync"
	tests := []struct {
		name, in string
	}{
		{"CRLF", crlf(fixExchange)},
		{"LF only", fixExchange},
		{"BOM", "\xef\xbb\xbf" + crlf(fixExchange)},
		{"blank lines", "\r\n" + strings.ReplaceAll(crlf(fixExchange), "CLASS:PUBLIC\r\n", "CLASS:PUBLIC\r\n\r\n")},
		{"trailing second calendar", crlf(fixExchange) + "BEGIN:VCALENDAR\r\nX;A=b\r\n"},
		{"lower-case names", strings.Replace(crlf(fixExchange), "SUMMARY;LANGUAGE=en-US:", "summary;language=en-US:", 1)},
		{"folded CRLF space", strings.Replace(crlf(fixExchange), "SUMMARY;LANGUAGE=en-US:Weekly sync", "SUMMARY;LANG\r\n UAGE=en-US:Wee\r\n kly sync", 1)},
		{"folded LF tab", strings.Replace(fixExchange, "SUMMARY;LANGUAGE=en-US:Weekly sync", "SUMMARY;LANGUAGE=en-US:Weekly\n\t sync", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cal := mustDecode(t, tt.in)
			ev := event(t, cal)
			if got := ev.Props.Get(ical.PropSummary); got == nil || got.Value != wantSummary {
				t.Fatalf("SUMMARY = %+v", got)
			}
			if !reflect.DeepEqual(cal, want) {
				t.Errorf("calendar differs from the CRLF decoding")
			}
		})
	}
}

func TestDecodeFoldInUTF8(t *testing.T) {
	// "Grüße" with the fold between the two bytes of 'ü' (0xC3 0xBC).
	in := "BEGIN:VCALENDAR\r\nSUMMARY:Gr\xc3\r\n \xbc\xc3\x9fe\r\nEND:VCALENDAR\r\n"
	cal := mustDecode(t, in)
	if got := cal.Props.Get("SUMMARY").Value; got != "Grüße" {
		t.Fatalf("got %q", got)
	}
	// Invalid UTF-8 becomes U+FFFD.
	cal = mustDecode(t, "BEGIN:VCALENDAR\r\nSUMMARY:a\xffb\r\nEND:VCALENDAR\r\n")
	if got := cal.Props.Get("SUMMARY").Value; got != "a\uFFFDb" {
		t.Fatalf("got %q", got)
	}
}

func TestDecodeParams(t *testing.T) {
	tests := []struct {
		line  string
		param string
		want  []string
		value string
	}{
		{`ATTENDEE;CN="Doe, John":mailto:j@x`, "CN", []string{"Doe, John"}, "mailto:j@x"},
		{`ATTENDEE;CN="a;b:c":mailto:j@x`, "CN", []string{"a;b:c"}, "mailto:j@x"},
		{`ATTENDEE;MEMBER="mailto:a@x","mailto:b@x":mailto:j@x`, "MEMBER", []string{"mailto:a@x", "mailto:b@x"}, "mailto:j@x"},
		{`ATTENDEE;CN=George Herman ^'Babe^' Ruth:mailto:j@x`, "CN", []string{`George Herman "Babe" Ruth`}, "mailto:j@x"},
		{`ATTENDEE;CN="a^nb^^c^x":mailto:j@x`, "CN", []string{"a\nb^c^x"}, "mailto:j@x"},
		{`ATTENDEE;CN=Foo "Bar":mailto:j@x`, "CN", []string{`Foo "Bar"`}, "mailto:j@x"},
		{`ORGANIZER;SENT-BY=mailto:sec@x:mailto:boss@x`, "SENT-BY", []string{"mailto:sec@x"}, "mailto:boss@x"},
		{`ORGANIZER;SENT-BY="mailto:sec@x";CN=B:mailto:boss@x`, "SENT-BY", []string{"mailto:sec@x"}, "mailto:boss@x"},
		{`X;A=;B=c:v`, "A", []string{""}, "v"},
		{`X;A=1;A=2:v`, "A", []string{"1", "2"}, "v"},
		{`X;a=1:v:w;x`, "A", []string{"1"}, "v:w;x"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			cal := mustDecode(t, "BEGIN:VCALENDAR\r\n"+tt.line+"\r\nEND:VCALENDAR\r\n")
			name := strings.ToUpper(tt.line[:strings.IndexByte(tt.line, ';')])
			p := cal.Props.Get(name)
			if !reflect.DeepEqual(p.Params[tt.param], tt.want) || p.Value != tt.value {
				t.Fatalf("got params %q value %q", p.Params, p.Value)
			}
		})
	}
}

func TestDecodeLimits(t *testing.T) {
	wrap := func(body string) string {
		return "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + body + "END:VEVENT\r\nEND:VCALENDAR\r\n"
	}
	rep := func(line string, n int) string { return strings.Repeat(line, n) }
	lim := Limits{MaxBytes: 10000, MaxLineBytes: 100, MaxComponents: 5, MaxProperties: 10, MaxAttendees: 3, MaxRecurrenceDates: 4}
	tests := []struct {
		name, in string
		reason   string // "" = must decode
	}{
		{"size", wrap(rep("X-A:"+strings.Repeat("a", 90)+"\r\n", 9)) + strings.Repeat(" ", 10000), ReasonCalendarSize},
		{"line ok", wrap("SUMMARY:" + strings.Repeat("a", 92) + "\r\n"), ""},
		{"line", wrap("SUMMARY:" + strings.Repeat("a", 93) + "\r\n"), ReasonLineLength},
		{"folded line", wrap("SUMMARY:" + strings.Repeat("a\r\n ", 93) + "\r\n"), ReasonLineLength},
		{"components ok", wrap(rep("BEGIN:VALARM\r\nEND:VALARM\r\n", 3)), ""},
		{"components", wrap(rep("BEGIN:VALARM\r\nEND:VALARM\r\n", 4)), ReasonComponents},
		{"nested components", wrap(rep("BEGIN:X\r\n", 4) + rep("END:X\r\n", 4)), ReasonComponents},
		{"properties ok", wrap(rep("X-A:1\r\n", 10)), ""},
		{"properties", wrap(rep("X-A:1\r\n", 11)), ReasonProperties},
		{"attendees ok", wrap(rep("ATTENDEE:mailto:a@x\r\n", 3)), ""},
		{"attendees", wrap(rep("ATTENDEE:mailto:a@x\r\n", 4)), ReasonAttendees},
		{"dates ok", wrap("EXDATE:20240101,20240102\r\nRDATE:20240103,20240104\r\n"), ""},
		{"dates", wrap("EXDATE:20240101,20240102\r\nRDATE:20240103,20240104,20240105\r\n"), ReasonRecurrenceDates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in), lim)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || le.Reason != tt.reason {
				t.Fatalf("got %v, want limit %s", err, tt.reason)
			}
			if !strings.Contains(le.Error(), tt.reason) {
				t.Errorf("Error() = %q", le.Error())
			}
		})
	}
}

// Nesting is capped before the components are: a VALARM nested 250,000
// deep (issue 13, attack 12) stops at the tenth level.
func TestDecodeDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + strings.Repeat("BEGIN:VALARM\r\n", n) +
			strings.Repeat("END:VALARM\r\n", n) + "END:VEVENT\r\nEND:VCALENDAR\r\n")
	}
	if _, err := Decode(nest(8), Limits{}); err != nil {
		t.Fatalf("depth 10: %v", err)
	}
	for _, n := range []int{9, 250000} {
		var le *LimitError
		if _, err := Decode(nest(n), Limits{MaxBytes: 8 << 20, MaxComponents: 1 << 20}); !errors.As(err, &le) || le.Reason != ReasonDepth {
			t.Errorf("depth %d: got %v, want limit %s", n+2, err, ReasonDepth)
		}
	}
}

func TestDefaultLimits(t *testing.T) {
	d := DefaultLimits()
	if d.MaxBytes != 1<<20 || d.MaxLineBytes != 64<<10 || d.MaxComponents != 1000 ||
		d.MaxProperties != 2000 || d.MaxAttendees != 1000 || d.MaxRecurrenceDates != 1000 {
		t.Fatalf("%+v", d)
	}
	// Zero fields mean defaults: 1001 attendees fail, 1000 pass.
	mk := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "ATTENDEE:mailto:a%d@x\r\n", i)
		}
		b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
		return b.Bytes()
	}
	if _, err := Decode(mk(1000), Limits{}); err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	if _, err := Decode(mk(1001), Limits{}); !errors.As(err, &le) || le.Reason != ReasonAttendees {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	for name, fix := range map[string]string{"exchange": fixExchange, "cdo": fixCDO, "thunderbird": fixThunderbird} {
		t.Run(name, func(t *testing.T) {
			cal := mustDecode(t, fix)
			out := Marshal(cal)
			if out == nil {
				t.Fatal("Marshal failed")
			}
			again, err := Decode(out, Limits{})
			if err != nil {
				t.Fatalf("re-decode: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(cal, again) {
				t.Fatalf("round trip differs:\n%s", out)
			}
			if !bytes.Equal(Marshal(again), out) {
				t.Fatal("output not stable")
			}
			checkLines(t, out)
		})
	}
}

// checkLines asserts CRLF line ends and at most 75 octets per line.
func checkLines(t *testing.T, out []byte) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		t.Fatal("no final CRLF")
	}
	for _, l := range bytes.Split(bytes.TrimSuffix(out, []byte("\r\n")), []byte("\r\n")) {
		if len(l) > 75 {
			t.Errorf("line of %d octets: %q", len(l), l)
		}
		if bytes.ContainsAny(l, "\r\n") {
			t.Errorf("bare line break in %q", l)
		}
		if !utf8.Valid(l) {
			t.Errorf("line splits a UTF-8 sequence: %q", l)
		}
	}
}

func TestDecodeExchangeQuotedValue(t *testing.T) {
	cal := mustDecode(t, "BEGIN:VCALENDAR\r\nDTSTART;TZID=\"W. Europe Standard Time:20200609T090000\"\r\nEND:VCALENDAR\r\n")
	p := cal.Props.Get("DTSTART")
	if p.Params.Get("TZID") != "W. Europe Standard Time" || p.Value != "20200609T090000" {
		t.Fatalf("got %+v", p)
	}
}

// TestDecodePropsOwnSlices checks that the properties Decode groups by name
// keep their order, also when a component has more of them than setProps
// counts by scanning, and that each name's lines are a slice of their own:
// appending to one never changes another, nor a property of another
// component.
func TestDecodePropsOwnSlices(t *testing.T) {
	for _, n := range []int{1, 5, smallProps, smallProps + 1, 300} {
		var b strings.Builder
		b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "ATTENDEE:mailto:a%d@example.test\r\nX-N-%d:%d\r\nCOMMENT:c%d\r\n", i, i%3, i, i)
		}
		b.WriteString("BEGIN:VALARM\r\nACTION:DISPLAY\r\nEND:VALARM\r\nSUMMARY:s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
		cal := mustDecode(t, b.String())
		ev := event(t, cal)
		for i := 0; i < n; i++ {
			if got, want := ev.Props[ical.PropAttendee][i].Value, fmt.Sprintf("mailto:a%d@example.test", i); got != want {
				t.Fatalf("n=%d: ATTENDEE %d = %q, want %q", n, i, got, want)
			}
			if got, want := ev.Props[ical.PropComment][i].Value, fmt.Sprintf("c%d", i); got != want {
				t.Fatalf("n=%d: COMMENT %d = %q, want %q", n, i, got, want)
			}
		}
		if got := ev.Props.Get(ical.PropSummary).Value; got != "s" {
			t.Fatalf("n=%d: SUMMARY %q", n, got)
		}
		ev.Props[ical.PropAttendee] = append(ev.Props[ical.PropAttendee], ical.Prop{Name: ical.PropAttendee, Value: "mailto:new@example.test"})
		ev.Props.Add(&ical.Prop{Name: ical.PropComment, Value: "new"})
		cal.Props.Add(&ical.Prop{Name: ical.PropVersion, Value: "3"})
		if got := ev.Props[ical.PropComment][0].Value; got != "c0" {
			t.Fatalf("n=%d: an append changed COMMENT to %q", n, got)
		}
		if got := ev.Props.Get(ical.PropSummary).Value; got != "s" {
			t.Fatalf("n=%d: an append changed SUMMARY to %q", n, got)
		}
		if got := ev.Children[0].Props.Get(ical.PropAction).Value; got != "DISPLAY" {
			t.Fatalf("n=%d: an append changed the VALARM's ACTION to %q", n, got)
		}
		if got := ev.Props.Get(ical.PropUID).Value; got != "1" {
			t.Fatalf("n=%d: an append changed UID to %q", n, got)
		}
	}
}
