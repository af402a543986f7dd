package caldav_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/caldav"
	"imipd/calstore"
	"imipd/filter"
)

// newProc is a Processor over a new bbolt store (no fsync) for the domain
// example.test, its clock at 25 November 2026 12:00 UTC.
func newProc(t *testing.T) (*filter.Processor, *calstore.DB) {
	t.Helper()
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return &filter.Processor{Store: db, Cfg: cfg, Now: func() time.Time { return now }}, db
}

// newServer is the server over p's store, answering through p, with p's
// clock and limits of mail, as cmd/imipd wires it.
func newServer(p *filter.Processor, opt caldav.Options) *caldav.Server {
	opt.Limits, opt.Now = p.Cfg.ICS, p.Time
	return caldav.New(p.Store, p, opt, nil)
}

// mail is a message from one address to another; with a method, its body
// is the calendar ics in that method.
func mail(from, to, id, method, ics string) string {
	ct := "text/plain; charset=UTF-8"
	body := "hello\r\n"
	if method != "" {
		ct = "text/calendar; method=" + method + "; charset=UTF-8"
		body = strings.ReplaceAll(ics, "\n", "\r\n")
	}
	return fmt.Sprintf("From: %s\r\nTo: %s\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\nMessage-ID: <%s>\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: %s\r\n\r\n%s", from, to, id, ct, body)
}

// process delivers raw through p and returns the last recipient's result.
func process(t *testing.T, p *filter.Processor, raw string, d filter.Delivery) filter.Result {
	t.Helper()
	d.Transport, d.Received, d.Message = "test", p.Now(), strings.NewReader(raw)
	rep, err := p.Process(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) == 0 {
		return filter.Result{}
	}
	return rep.Results[len(rep.Results)-1]
}
