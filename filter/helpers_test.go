package filter_test

import (
	"fmt"
	"strings"
	"time"
)

// request is an iMIP REQUEST from alice@remote.test (after
// testdata/scenarios/request-new), CRLF line ends as a milter sees them.
func request(msgID, uid string, seq int, rcpts []string, extraHeaders ...string) string {
	var att strings.Builder
	for _, r := range rcpts {
		fmt.Fprintf(&att, "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:%s\n", r)
	}
	h := strings.Join(extraHeaders, "\n")
	if h != "" {
		h += "\n"
	}
	msg := h + `From: Alice Organizer <alice@remote.test>
To: ` + strings.Join(rcpts, ", ") + `
Subject: Invitation: Planning
Date: Wed, 25 Nov 2026 10:00:00 +0000
Message-ID: <` + msgID + `>
MIME-Version: 1.0
Content-Type: text/calendar; method=REQUEST; charset=UTF-8

BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:` + uid + `
SEQUENCE:` + fmt.Sprint(seq) + `
DTSTAMP:20261125T100000Z
DTSTART:20261201T090000Z
DTEND:20261201T100000Z
SUMMARY:Planning
ORGANIZER;CN=Alice:mailto:alice@remote.test
` + att.String() + `END:VEVENT
END:VCALENDAR
`
	return strings.ReplaceAll(msg, "\n", "\r\n")
}

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
