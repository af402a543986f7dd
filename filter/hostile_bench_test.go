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

// BenchmarkHostile is the cost of one hostile input beside a plain input of
// the same kind, in the same run (issue 13, attack 5; BENCHMARKS.md):
//
//	plain-request   the REQUEST update of the scenarios (1.4 KB), processed
//	vtimezone       the same update with 20 VTIMEZONEs of 47 blocks from 1601
//	                (136 KB, scenario hostile-vtimezone-transitions: rejected
//	                when the time-zone budget runs out)
//
// Messages go through Processor.Process on a bbolt store without fsync
// (each a new Message-ID; after the first, the update is a duplicate:
// parsing, time zones and the decision are the cost). Besides ns/op and
// B/op each reports peak-RSS-MB, the process's high-water mark after the
// run: run one sub-benchmark alone (-bench 'Hostile/vtimezone$') to read
// its own. The CalDAV half (queries and PUTs) is caldav's BenchmarkHostile.
func BenchmarkHostile(b *testing.B) {
	mails := map[string]string{
		"plain-request": genHeader("plain", "") + genCalPart(genCal(nil, "")),
		"vtimezone":     genHeader("vtimezone", "") + genCalPart(genZonesCal(20)),
	}
	for _, name := range []string{"plain-request", "vtimezone"} {
		b.Run(name, func(b *testing.B) {
			p := hostileBenchProcessor(b)
			raw := mails[name]
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				msg := strings.Replace(raw, "Message-ID: <gen-", fmt.Sprintf("Message-ID: <%d-gen-", i), 1)
				rep, err := p.Process(context.Background(), filter.Delivery{Rcpts: []string{"bob@example.test"}, Transport: "bench", Message: strings.NewReader(msg)})
				if err != nil || len(rep.Results) != 1 || rep.Results[0].Outcome == "error" {
					b.Fatal(err, rep)
				}
			}
			b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MB")
		})
	}
}

// hostileBenchProcessor holds Bob's copy of planning-9@remote.test (the
// scenarios' before.ics), Carol a known contact.
func hostileBenchProcessor(b *testing.B) *filter.Processor {
	db, err := calstore.Open(filepath.Join(b.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	before, err := os.ReadFile("testdata/scenarios/hostile-components/before.ics")
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
