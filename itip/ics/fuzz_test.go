package ics

import (
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts encodes to text
// that decodes again to the same calendar.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		fixExchange, crlf(fixExchange), fixCDO, fixThunderbird,
		"\xef\xbb\xbf" + crlf(fixCDO),
		"BEGIN:VCALENDAR\r\nX;A=b\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nSUMMARY:Gr\xc3\r\n \xbc\xc3\x9fe\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nATTENDEE;CN=George ^'Babe^' Ruth;X=\"a,b\":mailto:x\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nORGANIZER;SENT-BY=mailto:s@x:mailto:o@x\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nDTSTART;TZID=\"W. Europe Standard Time:20200609T090000\"\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\nBEGIN:VEVENT\nEXDATE:20240101,20240102\nEND:VEVENT\nEND:VCALENDAR\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cal, err := Decode(data, Limits{})
		if err != nil {
			return
		}
		out := Marshal(cal)
		if out == nil {
			t.Fatalf("Marshal failed on a decoded calendar")
		}
		again, err := Decode(out, Limits{MaxBytes: 4 * len(out), MaxLineBytes: 4 << 20})
		if err != nil {
			t.Fatalf("re-decode: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(cal, again) {
			t.Fatalf("round trip differs\nin:  %q\nout: %q", data, out)
		}
		// Exercise the time code on whatever zones and dates we got.
		z := NewZones(cal)
		for _, id := range collectTZIDs(cal.Component) {
			z.Location(id)
		}
		for _, c := range cal.Children {
			for _, props := range c.Props {
				for i := range props {
					z.PropTimes(&props[i])
					ParseDuration(props[i].Value)
				}
			}
		}
	})
}

// FuzzValueRoundTrip: any parameter value and property value, written by
// Encode or by go-ical's encoder on Escaped (CalDAV), decodes back to the
// one property it was, with that one value (issue 13, attack 10).
func FuzzValueRoundTrip(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v)
	}
	f.Add("")
	f.Add("\xe2\x80")
	f.Fuzz(func(t *testing.T, v string) { checkBothEncoders(t, v) })
}
