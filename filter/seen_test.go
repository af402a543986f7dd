package filter_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
)

// interposeStore runs before (once) at the start of the first Batch, before
// the transaction: another delivery that lands between a decision's read
// transaction and its write transaction.
type interposeStore struct {
	calstore.Store
	before func()
	fired  atomic.Bool
}

func (s *interposeStore) Batch(ctx context.Context, fn func(calstore.Tx) error) error {
	if s.before != nil && s.fired.CompareAndSwap(false, true) {
		s.before()
	}
	return s.Store.Batch(ctx, fn)
}

func replyRaw(id, partstat string, stamp time.Time) string {
	return "From: carol@remote.test\r\nTo: org@example.test\r\nMessage-ID: <" + id + ">\r\nDate: Wed, 25 Nov 2026 11:00:00 +0000\r\nContent-Type: text/calendar; method=REPLY\r\n\r\n" +
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:occ@example.test\r\nSEQUENCE:0\r\nDTSTAMP:" + stamp.Format("20060102T150405Z") +
		"\r\nORGANIZER:mailto:org@example.test\r\nATTENDEE;PARTSTAT=" + partstat + ":mailto:carol@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
}

// A delivery that lands between a message's once-only check in a read
// transaction (seenBefore) and its write transaction: the write transaction
// decides on what is current then, so the outcome is the serial one.
func TestInterposedDelivery(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name        string
		interpose   string // message processed between the read and the write transaction
		first       string // the message under test
		wantFirst   string // its outcome
		wantPartsat string // carol's PARTSTAT at the end
	}{
		// A newer REPLY lands in between: the older one must not overwrite it.
		{"newer reply lands first", replyRaw("r2@remote.test", "DECLINED", t0.Add(time.Minute)), replyRaw("r1@remote.test", "ACCEPTED", t0), "outdated", "DECLINED"},
		// The same message by another path: applied once, then its outcome again.
		{"same message twice", replyRaw("r1@remote.test", "ACCEPTED", t0), replyRaw("r1@remote.test", "ACCEPTED", t0), "applied", "ACCEPTED"},
		// Nothing in between: the prepared decision is written.
		{"nothing in between", "", replyRaw("r1@remote.test", "TENTATIVE", t0), "applied", "TENTATIVE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			cfg := filter.DefaultConfig()
			cfg.LocalDomains = []string{"example.test"}
			cfg.DefaultPolicy = "always"
			st := &interposeStore{Store: db}
			p := &filter.Processor{Store: st, Cfg: cfg, Now: func() time.Time { return t0.Add(time.Hour) }}
			ctx := context.Background()
			stored := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:occ@example.test\r\nSEQUENCE:0\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261201T090000Z\r\nDTEND:20261201T100000Z\r\nSUMMARY:Sync\r\nORGANIZER:mailto:org@example.test\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carol@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
			if _, err := p.Import(ctx, "org@example.test", strings.NewReader(stored)); err != nil {
				t.Fatal(err)
			}
			env := filter.Delivery{MailFrom: "carol@remote.test", Rcpts: []string{"org@example.test"}, Transport: "test"}
			if c.interpose != "" {
				st.before = func() {
					rep, err := p.Process(ctx, withMessage(env, strings.NewReader(c.interpose)))
					if err != nil || len(rep.Results) != 1 || rep.Results[0].Outcome != "applied" {
						t.Errorf("interposed message: %+v %v", rep, err)
					}
				}
			}
			rep, err := p.Process(ctx, withMessage(env, strings.NewReader(c.first)))
			if err != nil || len(rep.Results) != 1 {
				t.Fatal(rep, err)
			}
			if got := string(rep.Results[0].Outcome); got != c.wantFirst {
				t.Errorf("outcome %s (%s), want %s", got, rep.Results[0].Reason, c.wantFirst)
			}
			var data string
			err = db.Read(ctx, func(tx calstore.Tx) error {
				ev, err := tx.Event("org@example.test", "occ@example.test")
				data = string(ev.Data)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("PARTSTAT=%s", c.wantPartsat); !strings.Contains(data, want) {
				t.Errorf("stored event lacks %s:\n%s", want, data)
			}
		})
	}
}
