package filter_test

import (
	"fmt"
	"time"

	"imipd/internal/filtertest"
)

// replyMessage is the i-th REPLY of an attendee of the benchmark event: a
// new DTSTAMP each time, so every one applies.
func replyMessage(i int64) (from string, fields [][2]string, body []byte) {
	from = fmt.Sprintf("a%d@remote.test", i%50)
	stamp := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format("20060102T150405Z")
	fields = [][2]string{{"From", from}, {"To", "org@example.test"},
		{"Message-ID", fmt.Sprintf("<r%d@remote.test>", i)}, {"Date", "Wed, 25 Nov 2026 11:00:00 +0000"},
		{"Content-Type", "text/calendar; method=REPLY"}}
	body = []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:bench@example.test\r\nSEQUENCE:0\r\nDTSTAMP:" + stamp +
		"\r\nORGANIZER:mailto:org@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:" + from + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	return from, fields, body
}

// Fixtures shared with the other packages' tests (internal/filtertest).
var (
	newProc      = filtertest.NewProcessor
	mail         = filtertest.Mail
	request      = filtertest.Request
	hostileRcpts = filtertest.HostileRcpts
	flood        = filtertest.Flood
	readState    = filtertest.ReadState
	manyParts    = filtertest.ManyParts
)

// plainInvite is Alice's invitation of Bob and Carol: UID, DTSTART, DTEND
// and SUMMARY to fill in.
const plainInvite = filtertest.Invite
