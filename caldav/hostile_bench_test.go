package caldav_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/caldav"
	"imipd/calstore"
	"imipd/filter"
)

// BenchmarkHostile is the cost of one hostile CalDAV request beside a plain
// one of the same kind, in the same run (issue 13, attack 5; BENCHMARKS.md;
// the mail half is filter's BenchmarkHostile):
//
//	query-plain     a CalDAV calendar-query for December 2026 over a calendar
//	                holding a weekly meeting since 2020
//	query-secondly  the same with a stored RRULE:FREQ=SECONDLY;COUNT=1000000000
//	                invitation beside it
//	put-alarm       a CalDAV PUT of that weekly meeting with one VALARM added
//	put-nested      the same PUT with a VALARM nested 250,000 deep (3.5 MB):
//	                refused, 413
//
// Requests go through the handler in process, over a bbolt store without
// fsync. Besides ns/op and B/op each reports peak-RSS-MB, the process's
// high-water mark after the run: run one sub-benchmark alone
// (-bench 'Hostile/query-secondly$') to read its own.
func BenchmarkHostile(b *testing.B) {
	for _, name := range []string{"query-plain", "query-secondly"} {
		b.Run(name, func(b *testing.B) {
			h, want := hostileBenchCalDAV(b, name == "query-secondly")
			const query = `<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:prop><D:getetag/><C:calendar-data/></D:prop>
<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:time-range start="20261201T000000Z" end="20270101T000000Z"/>
</C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>`
			b.ReportAllocs()
			for b.Loop() {
				req := benchDAVRequest("REPORT", "", query)
				req.Header.Set("Content-Type", "application/xml")
				req.Header.Set("Depth", "1")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 207 || strings.Count(rec.Body.String(), "BEGIN:VEVENT") != want {
					b.Fatalf("%d, %d events, want %d: %.500s", rec.Code, strings.Count(rec.Body.String(), "BEGIN:VEVENT"), want, rec.Body.String())
				}
			}
			b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
		})
	}
	for _, name := range []string{"put-alarm", "put-nested"} {
		b.Run(name, func(b *testing.B) {
			h, _ := hostileBenchCalDAV(b, false)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, benchDAVRequest("GET", "weekly-tue.ics", ""))
			alarm := "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
			want := 204
			if name == "put-nested" {
				alarm, want = strings.Repeat("BEGIN:VALARM\r\n", 250000), 413
			}
			body := strings.Replace(rec.Body.String(), "END:VEVENT", alarm+"END:VEVENT", 1)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req := benchDAVRequest("PUT", "weekly-tue.ics", body)
				req.Header.Set("Content-Type", "text/calendar")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != want {
					b.Fatalf("%d, want %d: %.300s", rec.Code, want, rec.Body.String())
				}
			}
			b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
		})
	}
}

// benchDAVRequest is a request for name in Bob's calendar, authenticated
// by the proxy header from loopback (no bcrypt in the measurement).
func benchDAVRequest(method, name, body string) *http.Request {
	req := httptest.NewRequest(method, "/dav/calendars/bob@example.test/invitations/"+name, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:4711"
	req.Header.Set("X-Remote-User", "bob@example.test")
	return req
}

// hostileBenchProcessor holds Bob's copy of planning-9@remote.test (the
// scenarios' before.ics), Carol a known contact.
func hostileBenchProcessor(b *testing.B) *filter.Processor {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	before, err := os.ReadFile("../filter/testdata/scenarios/hostile-components/before.ics")
	if err != nil {
		b.Fatal(err)
	}
	err = db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "bob@example.test", Policy: "known"}); err != nil {
			return err
		}
		if err := tx.AddContact(calstore.Contact{User: "bob@example.test", Address: "carol@remote.test"}); err != nil {
			return err
		}
		return tx.PutEvent("bob@example.test", calstore.Event{UID: "planning-9@remote.test", Data: before})
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	return &filter.Processor{Store: db, Cfg: cfg, Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}
}

// hostileBenchCalDAV is a CalDAV handler over Bob's calendar: a weekly
// meeting since 2020 and, with secondly, the ticking invitation of
// TestCalDAVQueryTimeRange. It returns the events a December query finds.
func hostileBenchCalDAV(b *testing.B, secondly bool) (*caldav.Server, int) {
	p := hostileBenchProcessor(b)
	uids := []string{"weekly-tue"}
	if secondly {
		uids = append(uids, "tick")
	}
	putQueryEvents(b, p.Store, uids...)
	return newServer(p, caldav.Options{ProxyAuthHeader: "X-Remote-User"}), len(uids) + 1
}
