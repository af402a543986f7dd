package ics

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkMarshalMeeting: a 100-attendee event, as a group commit writes
// it once per REPLY.
func BenchmarkMarshalMeeting(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:m@example.test\r\nSEQUENCE:0\r\n" +
		"DTSTAMP:20260101T090000Z\r\nDTSTART:20270115T140000Z\r\nDTEND:20270115T150000Z\r\nSUMMARY:All hands\r\n" +
		"ORGANIZER;CN=Alice:mailto:alice@example.test\r\n")
	for k := range 100 {
		fmt.Fprintf(&sb, "ATTENDEE;CN=Attendee %d;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:a%d@remote.test\r\n", k, k)
	}
	sb.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	cal, err := Decode([]byte(sb.String()), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(sb.Len()))
	for b.Loop() {
		if Marshal(cal) == nil {
			b.Fatal("nil")
		}
	}
}
