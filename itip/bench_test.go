package itip_test

import (
	"testing"
	"time"

	"imipd/itip"
	"imipd/itip/ics"
)

// The two REPLY cases measured against sabre/vobject 4.6.0's broker on PHP
// 8.2 with the same inputs: parse the stored object and the message, apply,
// serialize. Side by side on this machine class, 5 alternating rounds
// (issue 16's measurement; PHP is not installed here), sabre took 74.8 µs
// (simple) and 164.5 µs (new exception) per operation; the target is 10×
// that: 7.5 µs and 16.5 µs.
var benchReplies = []struct {
	name, stored, msg string
}{
	{"simple", // sabre BrokerProcessReplyTest_02, with DTSTAMP
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSEQUENCE:2\r\nUID:foobar\r\nDTSTAMP:20140801T000000Z\r\nATTENDEE:mailto:foo@example.org\r\nORGANIZER:mailto:bar@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:foo@example.org\r\nORGANIZER:mailto:bar@example.org\r\nSEQUENCE:2\r\nUID:foobar\r\nDTSTAMP:20140801T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"},
	{"new-exception", // sabre BrokerProcessReplyTest_07, with DTSTAMP
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSEQUENCE:2\r\nUID:foobar\r\nDTSTAMP:20140801T000000Z\r\nRRULE:FREQ=DAILY\r\nDTSTART:20140724T000000Z\r\nDTEND:20140724T010000Z\r\nATTENDEE:mailto:foo@example.org\r\nORGANIZER:mailto:bar@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:foo@example.org\r\nORGANIZER:mailto:bar@example.org\r\nSEQUENCE:2\r\nRECURRENCE-ID:20140725T000000Z\r\nUID:foobar\r\nDTSTAMP:20140801T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"},
}

func BenchmarkApplyReply(b *testing.B) {
	for _, c := range benchReplies {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				st, err := ics.Decode([]byte(c.stored), ics.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				mc, err := ics.Decode([]byte(c.msg), ics.Limits{})
				if err != nil {
					b.Fatal(err)
				}
				m, err := itip.ParseMessage(mc)
				if err != nil {
					b.Fatal(err)
				}
				r := itip.Apply(itip.Input{Msg: m, Stored: st, User: itip.User{Address: "bar@example.org", Policy: itip.Always},
					From: "foo@example.org", Now: time.Date(2014, 8, 2, 0, 0, 0, 0, time.UTC)})
				if r.Cal == nil {
					b.Fatalf("not applied: %s %s", r.Outcome, r.Reason)
				}
				_ = ics.Marshal(r.Cal)
			}
		})
	}
}
