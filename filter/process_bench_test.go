package filter_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
)

// BenchmarkProcessReply: one synced REPLY that changes an organizer's event
// per iteration, through the whole processing call (MIME, iCalendar, rules,
// one store transaction). Compare with calstore's BenchmarkWriteEvent.
func BenchmarkProcessReply(b *testing.B) {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
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
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := i % 50
		i++
		raw := fmt.Sprintf("From: a%d@remote.test\r\nTo: org@example.test\r\nMessage-ID: <r%d@remote.test>\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\nContent-Type: text/calendar; method=REPLY\r\n\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:bench@example.test\r\nSEQUENCE:0\r\nDTSTAMP:20261125T%06dZ\r\nORGANIZER:mailto:org@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:a%d@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", a, i, 100000+i%800000/10, a)
		rep, err := p.Process(context.Background(), strings.NewReader(raw), filter.Envelope{Rcpts: []string{"org@example.test"}, Transport: "bench"})
		if err != nil || len(rep.Results) != 1 {
			b.Fatal(err, rep)
		}
	}
}
