package filter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
)

// benchProcessor is a Processor on a real bbolt store (NOSYNC=1 in the
// environment turns fsync off) holding org@example.test's 50-attendee event
// (policy always), which replyMessage answers.
func benchProcessor(b *testing.B) *filter.Processor {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{NoSync: os.Getenv("NOSYNC") != ""})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	cfg.DefaultPolicy = "always"
	p := &filter.Processor{Store: db, Cfg: cfg, Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}
	var att []string
	for i := range 50 {
		att = append(att, fmt.Sprintf("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:a%d@remote.test", i))
	}
	stored := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:bench@example.test\r\nSEQUENCE:0\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nSUMMARY:All hands\r\nORGANIZER:mailto:org@example.test\r\n" + strings.Join(att, "\r\n") + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	if _, err := p.Import(context.Background(), "org@example.test", strings.NewReader(stored)); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkProcessReply: one synced REPLY that changes an organizer's event
// per iteration, through the whole processing call (MIME, iCalendar, rules,
// one store transaction). Compare with calstore's BenchmarkWriteEvent.
func BenchmarkProcessReply(b *testing.B) {
	p := benchProcessor(b)
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		i++
		_, fields, body := replyMessage(i)
		var raw strings.Builder
		for _, f := range fields {
			raw.WriteString(f[0] + ": " + f[1] + "\r\n")
		}
		raw.WriteString("\r\n")
		raw.Write(body)
		rep, err := p.Process(context.Background(), filter.Delivery{Rcpts: []string{"org@example.test"}, Transport: "bench", Message: strings.NewReader(raw.String())})
		if err != nil || len(rep.Results) != 1 || rep.Results[0].Outcome != "applied" {
			b.Fatal(err, rep)
		}
	}
}

// BenchmarkProcessMultipartNoCalendar: the processing call for the most
// common multipart mail, text and quoted-printable HTML
// (multipart/alternative, 6 KB), which has no calendar part: what the
// milter pays for mail whose header cannot rule calendar data out.
func BenchmarkProcessMultipartNoCalendar(b *testing.B) {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	p := &filter.Processor{Store: db, Cfg: cfg}
	html := "<html><body>" + strings.Repeat("<p>Hello Bob, the <b>quarterly numbers</b> are on the <a href=3D\"https://wiki.example.test/q\">wiki</a>.</p>\r\n", 30) + "</body></html>\r\n"
	text := strings.Repeat("Hello Bob, the quarterly numbers are on the wiki.\r\n", 30)
	raw := "Received: from client.remote.test (client.remote.test [192.0.2.7])\r\n\tby mx.example.test (Postfix) with ESMTP id 4ABCDEF\r\n\tfor <bob@example.test>; Wed, 25 Nov 2026 11:00:00 +0000\r\n" +
		"From: Carol <carol@remote.test>\r\nTo: bob@example.test\r\nSubject: numbers\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\nMessage-ID: <html-1@remote.test>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative;\r\n\tboundary=\"alt-1\"\r\n\r\n" +
		"--alt-1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + text +
		"--alt-1\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + html + "--alt-1--\r\n"
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		rep, err := p.Process(context.Background(), filter.Delivery{MailFrom: "carol@remote.test", Rcpts: []string{"bob@example.test"}, Transport: "bench", Message: strings.NewReader(raw)})
		if err != nil || rep.Calendar {
			b.Fatal(err, rep)
		}
	}
}
