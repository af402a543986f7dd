package milter_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"imipd/calstore"
	"imipd/filter"
	"imipd/filter/milter"
)

// The milter benchmarks drive milter.Milter over loopback TCP with
// go-milter's client, one MTA session per message as Postfix opens them
// (protocol 6), on a real bbolt store (NOSYNC=1 in the environment turns
// fsync off, to see the transport's cost alone). Compare with
// BenchmarkProcessReply and BenchmarkProcessMultipartNoCalendar: the
// difference is what the milter adds.

// benchMilter starts a milter on benchProcessor's store and returns a
// client.
func benchMilter(b *testing.B) *gomilter.Client {
	m := milter.New(benchProcessor(b), milter.Options{}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go m.Serve(ln)
	b.Cleanup(func() { m.Shutdown(context.Background()) })
	return gomilter.NewClient("tcp", ln.Addr().String(), gomilter.WithoutDefaultMacros())
}

// benchSend runs one message through a new session and returns the value
// of the header the milter added.
func benchSend(c *gomilter.Client, from, rcpt string, fields [][2]string, body []byte) (string, error) {
	s, err := c.Session(nil)
	if err != nil {
		return "", err
	}
	defer s.Close()
	s.Conn("client.remote.test", gomilter.FamilyInet, 40000, "192.0.2.7")
	s.Helo("client.remote.test")
	s.Mail(from, "")
	s.Rcpt(rcpt, "")
	s.DataStart()
	for _, f := range fields {
		s.HeaderField(f[0], f[1], nil)
	}
	s.HeaderEnd()
	for len(body) > 0 { // at most 65535 bytes per chunk (the protocol's limit; Postfix sends such chunks)
		n := min(len(body), 65535)
		if _, err := s.BodyChunk(body[:n]); err != nil {
			return "", err
		}
		body = body[n:]
	}
	mods, act, err := s.End()
	if err != nil {
		return "", err
	}
	if act.Type != gomilter.ActionAccept {
		return "", fmt.Errorf("action %v", act)
	}
	for _, m := range mods {
		if m.Type == gomilter.ActionAddHeader {
			return m.HeaderValue, nil
		}
	}
	return "", nil
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

// BenchmarkMilterReply: BenchmarkProcessReply's REPLY, one message at a
// time (a lone calendar message: no group to share a commit with), and
// from 16 sessions at once (group commit).
func BenchmarkMilterReply(b *testing.B) {
	b.Run("1", func(b *testing.B) {
		c := benchMilter(b)
		b.ReportAllocs()
		var i int64
		for b.Loop() {
			i++
			from, fields, body := replyMessage(i)
			if v, err := benchSend(c, from, "org@example.test", fields, body); err != nil || !strings.HasPrefix(v, "applied") {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("16", func(b *testing.B) {
		c := benchMilter(b)
		b.ReportAllocs()
		b.SetParallelism(8)
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				from, fields, body := replyMessage(n.Add(1))
				if v, err := benchSend(c, from, "org@example.test", fields, body); err != nil || !strings.HasPrefix(v, "applied") {
					b.Error(v, err)
					return
				}
			}
		})
	})
}

// benchNoOpMilter serves a do-nothing go-milter server that negotiates as
// imipd does (milter.ServerOptions): the baseline of the milter
// benchmarks, run as their do-nothing sub-benchmark.
func benchNoOpMilter(b *testing.B) *gomilter.Client {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := gomilter.NewServer(append(milter.ServerOptions(), gomilter.WithMilter(func() gomilter.Milter { return gomilter.NoOpMilter{} }))...)
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return gomilter.NewClient("tcp", ln.Addr().String(), gomilter.WithoutDefaultMacros())
}

// BenchmarkMilterMultipartNoCalendar: text and HTML mail
// (BenchmarkProcessMultipartNoCalendar's), 16 sessions at once, through
// imipd and through the do-nothing baseline.
func BenchmarkMilterMultipartNoCalendar(b *testing.B) {
	b.Run("imipd", func(b *testing.B) { benchMultipart(b, benchMilter(b)) })
	b.Run("do-nothing", func(b *testing.B) { benchMultipart(b, benchNoOpMilter(b)) })
}

func benchMultipart(b *testing.B, c *gomilter.Client) {
	html := "<html><body>" + strings.Repeat("<p>Hello Bob, the <b>quarterly numbers</b> are on the <a href=3D\"https://wiki.example.test/q\">wiki</a>.</p>\r\n", 30) + "</body></html>\r\n"
	text := strings.Repeat("Hello Bob, the quarterly numbers are on the wiki.\r\n", 30)
	body := []byte("--alt-1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + text +
		"--alt-1\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + html + "--alt-1--\r\n")
	fields := [][2]string{
		{"Received", "from client.remote.test (client.remote.test [192.0.2.7])\n\tby mx.example.test (Postfix) with ESMTP id 4ABCDEF\n\tfor <bob@example.test>; Wed, 25 Nov 2026 11:00:00 +0000"},
		{"From", "Carol <carol@remote.test>"}, {"To", "bob@example.test"}, {"Subject", "numbers"},
		{"Date", "Wed, 25 Nov 2026 11:00:00 +0000"}, {"Message-ID", "<html-1@remote.test>"}, {"MIME-Version", "1.0"},
		{"Content-Type", "multipart/alternative;\n\tboundary=\"alt-1\""},
	}
	b.ReportAllocs()
	b.SetParallelism(8) // 16 sessions on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := benchSend(c, "carol@remote.test", "bob@example.test", fields, body); err != nil || v != "" {
				b.Fatal(v, err)
			}
		}
	})
}

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
