package filter_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// generateMessage builds the message of a case whose input is too big for a
// fixture file (case.txt "generate: KIND N"). Every generated message is the
// same REQUEST update from Carol for planning-9@remote.test (SEQUENCE 1, a
// new room) that the case's before.ics would accept, grown in one dimension
// until a cap of [limits] stops it:
//
//	mime-depth N      the calendar part nested in N multiparts
//	mime-parts N      N-1 text parts before the calendar part
//	header-size N     N bytes of Received fields in the top-level header
//	decoded-size N    N distinct calendar parts of about 1,000,000 bytes each
//	calendar-size N   one calendar part of N bytes
//	line-length N     a DESCRIPTION of N bytes, folded (the unfolded line counts)
//	components N      N VALARMs in the VEVENT
//	properties N      N COMMENT properties in the VEVENT
//	attendees N       N attendees besides Bob
//	exdates N         N EXDATE values, 100 to a line
//	rdates N          N RDATE properties of one value each
//	vtimezones N      N VTIMEZONEs of 47 STANDARD blocks each, every block from
//	                  1601 with a rule that never matches (February 30), and
//	                  N-1 overrides whose RECURRENCE-IDs name them all
//	vtimezone-parts N N calendar parts of that (vtimezones 20) kind, each for
//	                  its own UID
func generateMessage(t *testing.T, spec string) []byte {
	t.Helper()
	kind, ns, _ := strings.Cut(strings.TrimSpace(spec), " ")
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 0 {
		t.Fatalf("generate %q: want KIND N", spec)
	}
	var b strings.Builder
	switch kind {
	case "mime-depth":
		b.WriteString(genHeader(kind, ""))
		b.WriteString("Content-Type: multipart/mixed; boundary=\"d0\"\r\n\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "--d%d\r\nContent-Type: multipart/mixed; boundary=\"d%d\"\r\n\r\n", i, i+1)
		}
		fmt.Fprintf(&b, "--d%d\r\n%s--d%d--\r\n", n, genCalPart(genCal(nil, "")), n)
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "--d%d--\r\n", i)
		}
	case "mime-parts":
		b.WriteString(genHeader(kind, ""))
		b.WriteString("Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "--p\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\npart %d\r\n", i)
		}
		fmt.Fprintf(&b, "--p\r\n%s--p--\r\n", genCalPart(genCal(nil, "")))
	case "header-size":
		var h strings.Builder
		for i := 0; h.Len() < n; i++ {
			fmt.Fprintf(&h, "Received: from relay%d.remote.test (relay%d.remote.test [192.0.2.%d])\r\n\tby relay%d.remote.test (Postfix) with ESMTP id %08X;\r\n\tWed, 25 Nov 2026 09:59:00 +0000 (UTC)\r\n", i, i, i%250+1, i+1, i)
		}
		b.WriteString(genHeader(kind, h.String()))
		b.WriteString(genCalPart(genCal(nil, "")))
	case "decoded-size":
		b.WriteString(genHeader(kind, ""))
		b.WriteString("Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "--p\r\n%s", genCalPart(genCal(genFolded("DESCRIPTION", fmt.Sprintf("copy %d ", i), 1_000_000), "")))
		}
		b.WriteString("--p--\r\n")
	case "calendar-size":
		b.WriteString(genHeader(kind, ""))
		b.WriteString(genCalPart(genCal(genFolded("DESCRIPTION", "", n), "")))
	case "line-length":
		b.WriteString(genHeader(kind, ""))
		b.WriteString(genCalPart(genCal([]string{genFoldedLine("DESCRIPTION", n)}, "")))
	case "components":
		var c strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&c, "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder %d\r\nTRIGGER:-PT%dM\r\nEND:VALARM\r\n", i, i+1)
		}
		b.WriteString(genHeader(kind, ""))
		b.WriteString(genCalPart(genCal(nil, c.String())))
	case "properties":
		props := make([]string, n)
		for i := range props {
			props[i] = fmt.Sprintf("COMMENT:note %d", i)
		}
		b.WriteString(genHeader(kind, ""))
		b.WriteString(genCalPart(genCal(props, "")))
	case "attendees":
		props := make([]string, n)
		for i := range props {
			props[i] = fmt.Sprintf("ATTENDEE;RSVP=TRUE:mailto:p%d@remote.test", i)
		}
		b.WriteString(genHeader(kind, ""))
		b.WriteString(genCalPart(genCal(props, "")))
	case "exdates", "rdates":
		props := []string{"RRULE:FREQ=DAILY;COUNT=5000"}
		if kind == "rdates" {
			for i := 0; i < n; i++ {
				props = append(props, "RDATE:"+genDay(i)+"T120000Z")
			}
		} else {
			for i := 0; i < n; i += 100 {
				var vals []string
				for j := i; j < n && j < i+100; j++ {
					vals = append(vals, genDay(j)+"T090000Z")
				}
				props = append(props, "EXDATE:"+strings.Join(vals, ","))
			}
		}
		b.WriteString(genHeader(kind, ""))
		b.WriteString(genCalPart(genCal(props, "")))
	case "vtimezones":
		b.WriteString(genHeader(kind, ""))
		b.WriteString(genCalPart(genZonesCal(n)))
	case "vtimezone-parts":
		b.WriteString(genHeader(kind, ""))
		b.WriteString("Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n")
		for i := 0; i < n; i++ {
			cal := strings.ReplaceAll(genZonesCal(20), "planning-9@remote.test", fmt.Sprintf("planning-9-%d@remote.test", i))
			fmt.Fprintf(&b, "--p\r\n%s", genCalPart(cal))
		}
		b.WriteString("--p--\r\n")
	default:
		t.Fatalf("generate %q: unknown kind", spec)
	}
	return []byte(b.String())
}

func genHeader(kind, extra string) string {
	return "Received: from mail.remote.test (mail.remote.test [192.0.2.10])\r\n" +
		"\tby mx.example.test (Postfix) with ESMTPS id 4Gx7Lq0Zz9;\r\n" +
		"\tWed, 25 Nov 2026 10:00:01 +0000 (UTC)\r\n" + extra +
		"From: Carol <carol@remote.test>\r\n" +
		"To: Bob <bob@example.test>\r\n" +
		"Subject: Updated invitation: Quarterly planning\r\n" +
		"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <gen-" + kind + "@remote.test>\r\n" +
		"MIME-Version: 1.0\r\n"
}

func genCalPart(cal string) string {
	return "Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n" + cal
}

// genCal is the REQUEST update with extra VEVENT properties and components.
func genCal(props []string, comps string) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Remote Corp//Calendar 3.1//EN\r\nMETHOD:REQUEST\r\n" +
		"BEGIN:VEVENT\r\nUID:planning-9@remote.test\r\nSEQUENCE:1\r\nDTSTAMP:20261125T100000Z\r\n" +
		"DTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nSUMMARY:Quarterly planning\r\nLOCATION:Room 7\r\n" +
		"ORGANIZER;CN=Carol:mailto:carol@remote.test\r\n" +
		"ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\n")
	for _, p := range props {
		b.WriteString(p)
		if !strings.HasSuffix(p, "\r\n") {
			b.WriteString("\r\n")
		}
	}
	b.WriteString(comps)
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	return b.String()
}

// genFolded is a text property of about size bytes written as many short
// properties of one folded line each (no single line grows), prefix first.
func genFolded(name, prefix string, size int) []string {
	var out []string
	line := strings.Repeat("lorem ipsum ", 5)
	for n := 0; n < size; n += len(name) + 1 + len(prefix) + len(line) + 2 {
		out = append(out, name+":"+prefix+line)
		name = "X-PAD"
	}
	return out
}

// genFoldedLine is one property whose unfolded value is n bytes, folded at
// 75 octets (RFC 5545 §3.1).
func genFoldedLine(name string, n int) string {
	v := name + ":" + strings.Repeat("x", n)
	var b strings.Builder
	for len(v) > 74 {
		b.WriteString(v[:74])
		b.WriteString("\r\n ")
		v = v[74:]
	}
	b.WriteString(v)
	return b.String()
}

// genDay is the date i days after 2026-12-01 as YYYYMMDD.
func genDay(i int) string {
	return time.Date(2026, 12, 1+i, 0, 0, 0, 0, time.UTC).Format("20060102")
}

// genZonesCal is the REQUEST update as a weekly series in zone Z0 with
// overrides in zones Z1..Zn-1, every zone a VTIMEZONE of 47 STANDARD blocks
// from 1601 whose RRULE names a day that does not exist.
func genZonesCal(n int) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Remote Corp//Calendar 3.1//EN\r\nMETHOD:REQUEST\r\n")
	for z := 0; z < n; z++ {
		fmt.Fprintf(&b, "BEGIN:VTIMEZONE\r\nTZID:Z%d\r\n", z)
		for i := 0; i < 47; i++ {
			fmt.Fprintf(&b, "BEGIN:STANDARD\r\nDTSTART:16010101T%02d%02d00\r\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\n"+
				"TZOFFSETFROM:+%02d00\r\nTZOFFSETTO:+%02d00\r\nEND:STANDARD\r\n", i%24, i%60, i%12, (i+1)%12)
		}
		b.WriteString("END:VTIMEZONE\r\n")
	}
	for z := 0; z < n; z++ {
		b.WriteString("BEGIN:VEVENT\r\nUID:planning-9@remote.test\r\nSEQUENCE:1\r\nDTSTAMP:20261125T100000Z\r\n")
		if z > 0 {
			fmt.Fprintf(&b, "RECURRENCE-ID;TZID=Z%d:%sT090000\r\n", z, genDay(7*z))
		}
		fmt.Fprintf(&b, "DTSTART;TZID=Z%d:%sT090000\r\nDTEND;TZID=Z%d:%sT100000\r\n", z, genDay(7*z), z, genDay(7*z))
		if z == 0 {
			b.WriteString("RRULE:FREQ=WEEKLY;COUNT=52\r\n")
		}
		b.WriteString("SUMMARY:Quarterly planning\r\nLOCATION:Room 7\r\n" +
			"ORGANIZER;CN=Carol:mailto:carol@remote.test\r\n" +
			"ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\nEND:VEVENT\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.String()
}
