package imip

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Fixtures written for these tests, in the shapes real producers send (see the
// shared corpus), with invented people and events. Messages are written with LF
// line endings; wire turns them into wire form.

const calRequest = `BEGIN:VCALENDAR
PRODID:-//Example Corp//Calendar 1.0//EN
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:fixture-0001@example.org
DTSTAMP:20250102T100000Z
DTSTART:20250110T090000Z
DTEND:20250110T100000Z
SEQUENCE:0
SUMMARY:Quarterly planning
ORGANIZER;CN=Olga Organizer:mailto:olga@example.org
ATTENDEE;CN=Ann Attendee;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:ann@examp
 le.net
END:VEVENT
END:VCALENDAR
`

const calReply = `BEGIN:VCALENDAR
PRODID:-//Example Corp//Calendar 1.0//EN
VERSION:2.0
METHOD:REPLY
BEGIN:VEVENT
UID:fixture-0001@example.org
DTSTAMP:20250103T100000Z
DTSTART:20250110T090000Z
SEQUENCE:0
ORGANIZER:mailto:olga@example.org
ATTENDEE;PARTSTAT=ACCEPTED:mailto:ann@example.net
END:VEVENT
END:VCALENDAR
`

// wire converts LF line endings to CRLF.
func wire(s string) string {
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// canon is the form Parse gives Part.Data: CRLF line endings.
func canon(s string) string { return wire(s) }

// enc64 encodes s in base64 lines of 76 characters, each ending in LF.
func enc64(s string) string {
	e := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(e) > 76 {
		b.WriteString(e[:76] + "\n")
		e = e[76:]
	}
	b.WriteString(e + "\n")
	return b.String()
}

// outlookMsg: Exchange/Outlook shape, multipart/alternative with text/plain,
// text/html and a base64 text/calendar; CRLF.
var outlookMsg = wire(`Received: from mx.example.org by mx.example.net; Thu, 2 Jan 2025 10:00:01 +0000
Authentication-Results: mx.example.net; dkim=pass header.d=example.org
Authentication-Results: mx.example.net;
	dmarc=pass header.from=example.org
From: Olga Organizer <Olga@Example.ORG>
To: Ann Attendee <ann@example.net>, "Bob, B." <BOB@example.net>
Cc: carol@example.net
Subject: =?utf-8?Q?Quarterly_planning_=E2=80=93_Q1?=
Thread-Topic: Quarterly planning
Date: Thu, 2 Jan 2025 10:00:00 +0000
Message-ID: <DM6PR01MB0001.namprd01.prod.example.org>
Content-Language: en-US
X-MS-Has-Attach:
MIME-Version: 1.0
Content-Type: multipart/alternative;
	boundary="_000_DM6PR01MB0001namprd01prodexa_"

--_000_DM6PR01MB0001namprd01prodexa_
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

Caf=E9 at nine.

--_000_DM6PR01MB0001namprd01prodexa_
Content-Type: text/html; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

<html><body>Caf=E9 at nine.</body></html>

--_000_DM6PR01MB0001namprd01prodexa_
Content-Type: text/calendar; charset="utf-8"; method=REQUEST
Content-Transfer-Encoding: base64

` + enc64(wire(calRequest)) + `
--_000_DM6PR01MB0001namprd01prodexa_--
`)

// googleMsg: Google Calendar shape, LF-only: Sender header, mixed > alternative
// with a 7bit text/calendar, plus the same object as a base64 application/ics
// attachment (a twin, to be kept once).
var googleMsg = `Return-Path: <olga@example.org>
Auto-Submitted: Auto-Generated
Sender: Google Calendar <calendar-notification@google.com>
From: olga@example.org
Reply-To: olga@example.org
To: ann@example.net
Message-ID: <0000000000001111@google.com>
Date: Thu, 02 Jan 2025 10:00:00 +0000
Subject: Invitation: Quarterly planning
Content-Type: multipart/mixed; boundary="000000000000aaaa"

--000000000000aaaa
Content-Type: multipart/alternative; boundary="000000000000bbbb"

--000000000000bbbb
Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes

You have been invited.

--000000000000bbbb
Content-Type: text/html; charset="UTF-8"

<p>You have been invited.</p>

--000000000000bbbb
Content-Type: text/calendar; charset="UTF-8"; method=REQUEST
Content-Transfer-Encoding: 7bit

` + calRequest + `
--000000000000bbbb--

--000000000000aaaa
Content-Type: application/ics; name="invite.ics"
Content-Disposition: attachment; filename="invite.ics"
Content-Transfer-Encoding: base64

` + enc64(wire(calRequest)) + `
--000000000000aaaa--
`

// appleQPMsg: Apple Mail shape: text/calendar quoted-printable with
// x-unix-mode, no method parameter, in multipart/mixed > alternative; CRLF.
var appleQPMsg = wire(`From: Ann Attendee <ann@example.net>
Content-Type: multipart/mixed; boundary=Apple-Mail-1-111
Subject: Accepted: Quarterly planning
Date: Fri, 3 Jan 2025 11:00:00 +0100
Message-Id: <A1B2C3D4-0000-0000-0000-000000000000@example.net>
To: olga@example.org
Mime-Version: 1.0 (Apple Message framework v936)

--Apple-Mail-1-111
Content-Type: multipart/alternative; boundary=Apple-Mail-2-222

--Apple-Mail-2-222
Content-Type: text/plain; charset=US-ASCII; format=flowed
Content-Transfer-Encoding: 7bit

Accepted.

--Apple-Mail-2-222
Content-Type: text/calendar; x-unix-mode=0644; name=iCal-reply.ics; charset=utf-8
Content-Transfer-Encoding: quoted-printable
Content-Disposition: attachment; filename=iCal-reply.ics

BEGIN:VCALENDAR
PRODID:-//Example Corp//Calendar 1.0//EN
VERSION:2.0
METHOD:REPLY
BEGIN:VEVENT
UID:fixture-0001@example.org
DTSTAMP:20250103T100000Z
DTSTART:20250110T090000Z
SEQUENCE:0
ORGANIZER:mailto:olga@e=
xample.org
ATTENDEE;PARTSTAT=3DACCEPTED:mailto:ann@example.net  
END:VEVENT
END:VCALENDAR

--Apple-Mail-2-222--

--Apple-Mail-1-111--
`)

// singleLFMsg: Thunderbird shape, single-part 8bit text/calendar, LF-only.
var singleLFMsg = `From: Ann <ann@example.net>
To: olga@example.org
Subject: Accepted: Quarterly planning
Date: Fri, 03 Jan 2025 11:00:00 +0100
Message-ID: <single@example.net>
MIME-Version: 1.0
Content-Type: text/calendar; charset=UTF-8; method=REPLY
Content-Transfer-Encoding: 8BIT

` + calReply

// bounceMsg: a DSN carrying the original invitation as message/rfc822.
var bounceMsg = wire(`From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: olga@example.org
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Date: Thu, 2 Jan 2025 10:00:05 +0000 (UTC)
Message-Id: <bounce-1@mx.example.org>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="BOUNCE.1/mx.example.org"

--BOUNCE.1/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--BOUNCE.1/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Final-Recipient: rfc822; nobody@example.net
Action: failed
Status: 5.1.1

--BOUNCE.1/mx.example.org
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: olga@example.org
To: nobody@example.net
Subject: Invitation
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="inner"

--inner
Content-Type: text/calendar; charset=utf-8; method=REQUEST
Content-Transfer-Encoding: 7bit

` + calRequest + `
--inner--

--BOUNCE.1/mx.example.org--
`)

// latin1Msg: a calendar in ISO-8859-1 (SUMMARY "Café"), single part.
var latin1Msg = "From: olga@example.org\r\nTo: ann@example.net\r\nSubject: x\r\n" +
	"Content-Type: text/calendar; method=PUBLISH; charset=ISO-8859-1\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n\r\n" +
	"BEGIN:VCALENDAR\r\nMETHOD:PUBLISH\r\nBEGIN:VEVENT\r\nSUMMARY:Caf\xe9\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

// missingBoundaryMsg: multipart/mixed without boundary parameter.
var missingBoundaryMsg = wire(`From: olga@example.org
Subject: broken
Content-Type: multipart/mixed

--xyz
Content-Type: text/calendar; method=REQUEST

` + calRequest + `
--xyz--
`)

// truncatedB64Msg: a base64 calendar cut off mid-line, no padding, no close delimiter.
var truncatedB64Msg = func() string {
	enc := enc64(wire(calRequest))
	enc = enc[:len(enc)/2+3]
	return wire(`From: olga@example.org
Subject: truncated
Content-Type: multipart/mixed; boundary=b1

--b1
Content-Type: text/calendar; method=REQUEST
Content-Transfer-Encoding: base64

`) + enc
}()

// noContentTypeMsg: plain mail without any MIME header.
var noContentTypeMsg = `From: "Ann A." <ann@example.net>
To: olga@example.org
Subject: lunch?
Date: Fri, 3 Jan 2025 12:00:00 +0100

BEGIN:VCALENDAR is not a calendar when it sits in text/plain.
`

// plainCalendarTextMsg: text/plain whose body is an iCalendar object: not sniffed.
var plainCalendarTextMsg = "From: a@example.org\nContent-Type: text/plain\n\n" + calRequest

// octetStreamMsg: application/octet-stream with an RFC 2231 encoded .ics
// filename; mbox From line first; preamble and epilogue.
var octetStreamMsg = `From olga@example.org Thu Jan  2 10:00:00 2025
From: olga@example.org
To: ann@example.net
Subject: ticket
Content-Type: multipart/mixed; boundary="--==_mimepart_1"

This is a multi-part message in MIME format.
----==_mimepart_1
Content-Type: text/plain

see attachment
----==_mimepart_1
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''Tr%C3%A9ffen.ICS

` + calRequest + `----==_mimepart_1--
epilogue
`

// unterminatedMsg: an inner multipart without close delimiter, ended by the
// outer delimiter, then a calendar part in the outer multipart.
var unterminatedMsg = `From: olga@example.org
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

hello
--outer
Content-Type: text/calendar; method=REQUEST

` + calRequest + `--outer--
`

// signedMsg: multipart/signed with the calendar inside the signed part.
var signedMsg = `From: olga@example.org
Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="sig"

--sig
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain

hi
--alt
Content-Type: text/x-vcalendar; method=request

` + calRequest + `
--alt--

--sig
Content-Type: application/pkcs7-signature; name=smime.p7s
Content-Transfer-Encoding: base64

MIIBAAAA
--sig--
`

// bomMsg: a UTF-8 BOM at the start of the calendar data.
var bomMsg = "From: a@example.org\nContent-Type: application/ics\nContent-Transfer-Encoding: base64\n\n" +
	enc64("\xef\xbb\xbf"+calReply)

// utf16Msg: a UTF-16LE calendar with BOM.
var utf16Msg = func() string {
	var u []byte
	u = append(u, 0xff, 0xfe)
	for _, r := range "BEGIN:VCALENDAR\r\nSUMMARY:Ünïcode\r\nEND:VCALENDAR\r\n" {
		u = append(u, byte(r), byte(r>>8))
	}
	return "From: a@example.org\nContent-Type: text/calendar; charset=UTF-16\nContent-Transfer-Encoding: base64\n\n" + enc64(string(u))
}()

// nested builds a message nested depth multiparts deep.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString("From: a@example.org\nContent-Type: multipart/mixed; boundary=b0\n\n")
	for i := 1; i <= depth; i++ {
		fmt.Fprintf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", i-1, i)
	}
	fmt.Fprintf(&b, "--b%d\nContent-Type: text/calendar\n\n%s", depth, calRequest)
	for i := depth; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return b.String()
}

// manyParts builds a multipart/mixed message with n text/plain parts and a
// calendar at the end.
func manyParts(n int) string {
	var b strings.Builder
	b.WriteString("From: a@example.org\nContent-Type: multipart/mixed; boundary=p\n\n")
	for i := 0; i < n; i++ {
		b.WriteString("--p\nContent-Type: text/plain\n\nx\n")
	}
	b.WriteString("--p\nContent-Type: text/calendar\n\n" + calRequest + "--p--\n")
	return b.String()
}

// bigCalendar builds a single-part calendar of about size bytes.
func bigCalendar(size int) string {
	var b strings.Builder
	b.WriteString("From: a@example.org\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\n")
	line := "X-PAD:" + strings.Repeat("x", 66) + "\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString("END:VCALENDAR\n")
	return b.String()
}

// distinctCalendars builds a message with n different calendar parts.
func distinctCalendars(n int) string {
	var b strings.Builder
	b.WriteString("From: a@example.org\nContent-Type: multipart/mixed; boundary=d\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "--d\nContent-Type: text/calendar\n\n%sX-N:%d\n", calRequest, i)
	}
	b.WriteString("--d--\n")
	return b.String()
}

// hugeHeader builds a message whose header block has about size bytes.
func hugeHeader(size int) string {
	var b strings.Builder
	b.WriteString("From: a@example.org\n")
	for b.Len() < size {
		b.WriteString("X-Junk: " + strings.Repeat("j", 70) + "\n")
	}
	b.WriteString("Content-Type: text/calendar\n\n" + calRequest)
	return b.String()
}

// fixtures lists every fixture message, for the fuzz corpus.
func fixtures() []string {
	return []string{
		outlookMsg, googleMsg, appleQPMsg, singleLFMsg, bounceMsg, latin1Msg,
		missingBoundaryMsg, truncatedB64Msg, noContentTypeMsg, plainCalendarTextMsg,
		octetStreamMsg, unterminatedMsg, signedMsg, bomMsg, utf16Msg,
		nested(3), nested(12), manyParts(5), distinctCalendars(3), "", "\n", "From: x\n",
	}
}
