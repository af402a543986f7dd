//go:build bench

package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// A message as the MTA hands it to a milter: header fields (value without
// the space after the colon, folded lines joined by LF, as Postfix sends
// them) and the body.
type message struct {
	from, rcpt string
	fields     [][2]string
	body       []byte
}

// raw is the message as an RFC 5322 text (for LMTP and smtp-source).
func (m *message) raw() []byte {
	var b strings.Builder
	for _, f := range m.fields {
		b.WriteString(f[0] + ": " + strings.ReplaceAll(f[1], "\n", "\r\n") + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(m.body)
	return []byte(b.String())
}

// kind is one kind of message of the load comparison.
type kind struct {
	name string
	gen  func(i int64) *message
	want string // prefix of the header imipd must add ("" : none)
}

const (
	organizer = "alice@example.test"
	rcptPlain = "bob@example.test"
	eventUID  = "allhands-1@example.test"
)

func commonFields(from, to, subject string, i int64, extra ...[2]string) [][2]string {
	f := [][2]string{
		{"Received", "from client.remote.test (client.remote.test [192.0.2.7])\n\tby mx.example.test (Postfix) with ESMTP id 4ABCDEF\n\tfor <" + to + ">; " + time.Now().Format(time.RFC1123Z)},
		{"From", from},
		{"To", to},
		{"Subject", subject},
		{"Date", time.Now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", fmt.Sprintf("<bench-%d-%d@remote.test>", time.Now().UnixNano(), i)},
		{"MIME-Version", "1.0"},
	}
	return append(f, extra...)
}

var plainBody = []byte(strings.Repeat("Hello Bob,\r\n\r\nthe quarterly numbers are attached to the wiki page; shall we meet on Thursday?\r\n\r\n", 20) + "Carol\r\n")

func plainKind() kind {
	return kind{name: "plain text", gen: func(i int64) *message {
		return &message{from: "carol@remote.test", rcpt: rcptPlain,
			fields: commonFields("Carol <carol@remote.test>", rcptPlain, "numbers", i, [2]string{"Content-Type", "text/plain; charset=UTF-8"}),
			body:   plainBody}
	}}
}

func htmlKind() kind {
	html := "<html><body>" + strings.Repeat("<p>Hello Bob, the <b>quarterly numbers</b> are on the <a href=\"https://wiki.example.test/q\">wiki</a>.</p>\r\n", 30) + "</body></html>\r\n"
	text := strings.Repeat("Hello Bob, the quarterly numbers are on the wiki.\r\n", 30)
	body := []byte("--alt-1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + text +
		"--alt-1\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + html + "--alt-1--\r\n")
	return kind{name: "HTML", gen: func(i int64) *message {
		return &message{from: "carol@remote.test", rcpt: rcptPlain,
			fields: commonFields("Carol <carol@remote.test>", rcptPlain, "numbers", i, [2]string{"Content-Type", "multipart/alternative;\n\tboundary=\"alt-1\""}),
			body:   body}
	}}
}

// attachmentBody is a multipart/mixed body: a text part and a base64
// attachment of size bytes (encoded), no calendar part.
func attachmentBody(size int) []byte {
	line := strings.Repeat("JVBERi0xLjQKJcfs", 5)[:76] + "\r\n"
	var b strings.Builder
	b.Grow(size + 512)
	b.WriteString("--mix-1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nThe report is attached.\r\n")
	b.WriteString("--mix-1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for n := 0; n < size; n += len(line) {
		b.WriteString(line)
	}
	b.WriteString("--mix-1--\r\n")
	return []byte(b.String())
}

func attachmentKind(name string, size int) kind {
	body := attachmentBody(size)
	return kind{name: name, gen: func(i int64) *message {
		return &message{from: "carol@remote.test", rcpt: rcptPlain,
			fields: commonFields("Carol <carol@remote.test>", rcptPlain, "report", i, [2]string{"Content-Type", "multipart/mixed; boundary=\"mix-1\""}),
			body:   body}
	}}
}

// attendees is the size of the organizer's event REPLYs change.
var attendees = 100

func attendee(k int) string { return fmt.Sprintf("att%03d@remote.test", k) }

// storedEvent is the organizer's copy of the all-hands meeting.
func storedEvent() []byte { return storedEventOf(organizer, eventUID) }

// storedEventOf is organizer's copy of the all-hands meeting uid.
func storedEventOf(organizer, eventUID string) []byte {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd bench//EN\r\nBEGIN:VEVENT\r\nUID:" + eventUID + "\r\n" +
		"SEQUENCE:0\r\nDTSTAMP:20260101T090000Z\r\nDTSTART:20270115T140000Z\r\nDTEND:20270115T150000Z\r\nSUMMARY:All hands\r\n" +
		"ORGANIZER;CN=Alice:mailto:" + organizer + "\r\n")
	for k := range attendees {
		fmt.Fprintf(&b, "ATTENDEE;CN=Attendee %d;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:%s\r\n", k, attendee(k))
	}
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	return []byte(b.String())
}

// replySeq numbers REPLYs over the whole run: attendee and DTSTAMP vary,
// so every REPLY is newer than the last of its attendee and applies.
var replySeq atomic.Int64

var replyBase = time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)

func replyMessage(i int64) *message { return replyMessageTo(organizer, eventUID, i) }

// replyMessageTo is the i-th REPLY to org's meeting uid (storedEventOf).
func replyMessageTo(organizer, eventUID string, i int64) *message {
	k := int(i % int64(attendees))
	who := attendee(k)
	partstat := [...]string{"ACCEPTED", "TENTATIVE", "DECLINED"}[i%3]
	stamp := replyBase.Add(time.Duration(i) * time.Second).Format("20060102T150405Z")
	cal := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Corp//Mail 1.0//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n" +
		"UID:" + eventUID + "\r\nSEQUENCE:0\r\nDTSTAMP:" + stamp + "\r\nDTSTART:20270115T140000Z\r\nDTEND:20270115T150000Z\r\n" +
		"SUMMARY:All hands\r\nORGANIZER;CN=Alice:mailto:" + organizer + "\r\n" +
		"ATTENDEE;CN=Attendee " + fmt.Sprint(k) + ";PARTSTAT=" + partstat + ":mailto:" + who + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	body := "--alt-r\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + who + " has answered " + partstat + ".\r\n" +
		"--alt-r\r\nContent-Type: text/calendar; method=REPLY; charset=UTF-8\r\n\r\n" + cal + "--alt-r--\r\n"
	return &message{from: who, rcpt: organizer,
		fields: commonFields(who, organizer, "Accepted: All hands", i, [2]string{"Content-Type", "multipart/alternative; boundary=\"alt-r\""}),
		body:   []byte(body)}
}

func replyKind() kind {
	return kind{name: "iMIP REPLY", want: "applied", gen: func(int64) *message { return replyMessage(replySeq.Add(1)) }}
}
