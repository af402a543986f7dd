package filter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
	"imipd/itip"
)

// autoTo counts the automatic outbox items addressed to target, by method.
func autoTo(t *testing.T, db calstore.Store, target string) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := db.Read(context.Background(), func(tx calstore.Tx) error {
		items, err := tx.Outbox()
		for _, it := range items {
			for _, to := range it.To {
				if it.Auto && to == target {
					n[it.Method]++
				}
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// clock is a settable clock for a Processor.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// budgetProc is a Processor on a bbolt file at path, its clock and its log.
func budgetProc(t *testing.T, path string, c *clock) (*filter.Processor, *calstore.DB, *bytes.Buffer) {
	t.Helper()
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	var logs bytes.Buffer
	return &filter.Processor{Store: db, Cfg: cfg, Now: c.now, Log: slog.New(slog.NewTextHandler(&logs, nil))}, db, &logs
}

// addFor is an ADD from its organizer for an event the recipients do not
// have (RFC 5546 §3.2.4: the attendee asks for it with REFRESH).
func addFor(uid, id string) string {
	ics := "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:ADD\nBEGIN:VEVENT\nUID:" + uid + "\nSEQUENCE:1\nDTSTAMP:20261125T100000Z\n" +
		"DTSTART:20261203T090000Z\nDTEND:20261203T100000Z\nSUMMARY:Weekly sync (extra)\nORGANIZER:mailto:alice@remote.test\n" +
		"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.test\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carl@example.test\nEND:VEVENT\nEND:VCALENDAR\n"
	return mail("alice@remote.test", "bob@example.test, carl@example.test", id, "ADD", ics)
}

// knownOrganizer makes bob and carl users who apply everything and know
// alice: the ADD passes every gate, so only the budgets stop REFRESH.
func knownOrganizer(t *testing.T, db calstore.Store) {
	t.Helper()
	err := db.Write(context.Background(), func(tx calstore.Tx) error {
		for _, u := range []string{"bob@example.test", "carl@example.test"} {
			if err := tx.PutUser(calstore.User{Address: u, Policy: string(itip.Always)}); err != nil {
				return err
			}
			if err := tx.AddContact(calstore.Contact{User: u, Address: "alice@remote.test"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// outcomes processes raw for env and returns "outcome/reason" per result.
func outcomes(t *testing.T, p *filter.Processor, raw string, env filter.Delivery) []string {
	t.Helper()
	env.Transport, env.Received = "test", p.Now()
	rep, err := p.Process(context.Background(), withMessage(env, strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rep.Results {
		out = append(out, string(r.Outcome)+"/"+string(r.Reason))
	}
	return out
}

// Issue 13, attack 2: 20 ADD messages to 2 local recipients for an unknown
// UID sent 40 REFRESHes. Now each user asks the organizer once per UID and
// RefreshAskWindow, counted in the file (the store is closed and reopened
// halfway); and 20 ADDs with 20 UIDs send the organizer at most
// auto_send_limit REFRESHes an hour.
func TestAddRefreshBudget(t *testing.T) {
	rcpts := filter.Delivery{Rcpts: []string{"bob@example.test", "carl@example.test"}}
	t.Run("same UID", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "imipd.db")
		c := &clock{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
		p, db, logs := budgetProc(t, path, c)
		knownOrganizer(t, db)
		var got []string
		for i := range 20 {
			if i == 10 {
				db.Close()
				p, db, _ = budgetProc(t, path, c)
			}
			got = append(got, outcomes(t, p, addFor("weekly-1@remote.test", fmt.Sprintf("add%d@remote.test", i)), rcpts)...)
			c.t = c.t.Add(time.Minute)
		}
		if n := autoTo(t, db, "alice@remote.test")["REFRESH"]; n != 2 {
			t.Errorf("20 ADDs to 2 users: %d REFRESH sent, want 2 (one per user)", n)
		}
		if want := "ignored/refresh-sent ignored/refresh-sent ignored/refresh-asked"; strings.Join(got[:3], " ") != want {
			t.Errorf("outcomes %v, want %s then refresh-asked", got, want)
		}
		if !strings.Contains(logs.String(), "target=alice@remote.test") || !strings.Contains(logs.String(), "uid=weekly-1@remote.test") {
			t.Errorf("no log line names the target and UID:\n%s", logs.String())
		}
		// A day later each user may ask again once.
		c.t = c.t.Add(filter.RefreshAskWindow)
		for i := range 3 {
			outcomes(t, p, addFor("weekly-1@remote.test", fmt.Sprintf("later%d@remote.test", i)), rcpts)
		}
		if n := autoTo(t, db, "alice@remote.test")["REFRESH"]; n != 4 {
			t.Errorf("a day later: %d REFRESH sent in all, want 4", n)
		}
	})
	t.Run("20 UIDs", func(t *testing.T) {
		c := &clock{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
		p, db, _ := budgetProc(t, filepath.Join(t.TempDir(), "imipd.db"), c)
		knownOrganizer(t, db)
		for i := range 20 {
			outcomes(t, p, addFor(fmt.Sprintf("u%d@remote.test", i), fmt.Sprintf("add%d@remote.test", i)), rcpts)
		}
		if n := autoTo(t, db, "alice@remote.test")["REFRESH"]; n != p.Cfg.AutoSendLimit {
			t.Errorf("20 ADDs with 20 UIDs to 2 users: %d REFRESH sent, want the budget, %d", n, p.Cfg.AutoSendLimit)
		}
	})
}

// Issue 13, attack 3: the budget of automatic mail is per target address,
// across senders and local users, and not per asker. Mallory's forged
// REFRESHes for Dave spend none of it (the sender rule answers none);
// Dave's six REFRESHes to two local organizers (alice and bob) get
// auto_send_limit answers in all; Carol, asking after Dave's budget is
// spent, is answered (her budget is her own); an hour after Dave's first
// answer he is answered again.
//
// The semantics: every automatic message to an address counts against
// that address's budget of auto_send_limit per sliding hour, whoever's
// message asked for it and whichever local user sends it. Only verified
// authors can ask for mail to themselves (docs/rules.md "Sender checks"), so the
// one spending Dave's budget is Dave.
func TestAutoSendBudgetPerTarget(t *testing.T) {
	c := &clock{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	p, db, logs := budgetProc(t, filepath.Join(t.TempDir(), "imipd.db"), c)
	for _, org := range []string{"alice", "bob"} {
		ics := fmt.Sprintf(invite, org+"-ev@example.test", "", org+"@example.test", "dave@remote.test")
		ics = strings.Replace(ics, "END:VEVENT", "ATTENDEE:mailto:carol@remote.test\nEND:VEVENT", 1)
		outcomes(t, p, mail(org+"@example.test", "dave@remote.test", org+"-inv@example.test", "REQUEST", ics),
			filter.Delivery{MailFrom: org + "@example.test", Rcpts: []string{"dave@remote.test", "carol@remote.test"}, Login: org + "@example.test"})
	}
	// refreshAs is a REFRESH from author for the attendee named in
	// attendee (an ATTENDEE property value with its parameters).
	refreshAs := func(org, author, attendee, id string) []string {
		ics := "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REFRESH\nBEGIN:VEVENT\nUID:" + org + "-ev@example.test\nDTSTAMP:20261125T113000Z\n" +
			"ORGANIZER:mailto:" + org + "@example.test\nATTENDEE" + attendee + "\nEND:VEVENT\nEND:VCALENDAR\n"
		return outcomes(t, p, mail(author, org+"@example.test", id, "REFRESH", ics), filter.Delivery{Rcpts: []string{org + "@example.test"}})
	}
	refresh := func(org, asker, id string) []string { return refreshAs(org, asker, ":mailto:"+asker, id) }
	// The figure: Mallory's six REFRESHes naming herself as Dave's
	// SENT-BY sent Dave six REQUESTs and spent his budget. The sender rule
	// answers none of them, so they spend nothing of it.
	for i := range 6 {
		for _, r := range refreshAs("alice", "mallory@evil.example", `;SENT-BY="mailto:mallory@evil.example":mailto:dave@remote.test`, fmt.Sprintf("forged%d@evil.example", i)) {
			if r == "applied/refresh-answered" {
				t.Errorf("Mallory's REFRESH %d for Dave was answered", i)
			}
		}
	}
	if n := autoTo(t, db, "dave@remote.test")["REQUEST"]; n != 0 {
		t.Errorf("Mallory's REFRESHes sent Dave %d answers", n)
	}
	var got []string
	for i := range 6 {
		org := []string{"alice", "bob"}[i%2]
		got = append(got, refresh(org, "dave@remote.test", fmt.Sprintf("rf%d@remote.test", i))...)
		c.t = c.t.Add(time.Minute)
	}
	want := "applied/refresh-answered applied/refresh-answered applied/refresh-answered ignored/send-budget ignored/send-budget ignored/send-budget"
	if strings.Join(got, " ") != want {
		t.Errorf("Dave's six REFRESHes: %v, want %s", got, want)
	}
	if n := autoTo(t, db, "dave@remote.test")["REQUEST"]; n != p.Cfg.AutoSendLimit {
		t.Errorf("answers to Dave: %d, want the budget, %d", n, p.Cfg.AutoSendLimit)
	}
	if !strings.Contains(logs.String(), "target=dave@remote.test") || !strings.Contains(logs.String(), "reason=send-budget") {
		t.Errorf("no log line names the target:\n%s", logs.String())
	}
	if r := refresh("alice", "carol@remote.test", "rf-carol@remote.test"); strings.Join(r, " ") != "applied/refresh-answered" {
		t.Errorf("Carol after Dave's budget was spent: %v, want answered", r)
	}
	// Dave's first answer was at 12:00; at 13:00 it no longer counts.
	c.t = time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	if r := refresh("bob", "dave@remote.test", "rf-late@remote.test"); strings.Join(r, " ") != "applied/refresh-answered" {
		t.Errorf("Dave an hour later: %v, want answered", r)
	}
	if n := autoTo(t, db, "dave@remote.test")["REQUEST"]; n != p.Cfg.AutoSendLimit+1 {
		t.Errorf("answers to Dave after an hour: %d, want %d", n, p.Cfg.AutoSendLimit+1)
	}
}
