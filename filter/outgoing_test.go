package filter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"imipd/calstore"
	"imipd/filter"
)

func process(t *testing.T, p *filter.Processor, raw string, env filter.Delivery) filter.Result {
	t.Helper()
	env.Transport, env.Received = "test", p.Now()
	rep, err := p.Process(context.Background(), withMessage(env, strings.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) == 0 {
		return filter.Result{}
	}
	return rep.Results[len(rep.Results)-1]
}

const invite = `BEGIN:VCALENDAR
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:%s
SEQUENCE:0
DTSTAMP:20261125T110000Z
DTSTART:20261201T090000Z
DTEND:20261201T100000Z
SUMMARY:Review
ORGANIZER%s:mailto:%s
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:%s
END:VEVENT
END:VCALENDAR
`

// Someone a user wrote to is known afterwards (docs/rules.md "Policy": learned by the
// submission milter), so their invitation is not held as unknown-sender.
func TestLearnSentContacts(t *testing.T) {
	p, db := newProc(t)
	ics := fmt.Sprintf(invite, "r1@remote.test", "", "carol@remote.test", "alice@example.test")
	in := mail("carol@remote.test", "alice@example.test", "i1@remote.test", "REQUEST", ics)
	if r := process(t, p, in, filter.Delivery{Rcpts: []string{"alice@example.test"}}); r.Reason != "unknown-sender" {
		t.Fatalf("before: %s/%s, want held as unknown-sender", r.Outcome, r.Reason)
	}
	process(t, p, mail("alice@example.test", "carol@remote.test", "out1@example.test", "", ""),
		filter.Delivery{MailFrom: "alice@example.test", Rcpts: []string{"carol@remote.test"}, Login: "alice@example.test"})
	var known bool
	db.Read(context.Background(), func(tx calstore.Tx) error {
		known, _ = tx.IsContact("alice@example.test", "carol@remote.test")
		return nil
	})
	if !known {
		t.Fatal("carol not learned as alice's contact")
	}
	in2 := mail("carol@remote.test", "alice@example.test", "i2@remote.test", "REQUEST", strings.Replace(ics, "r1@", "r2@", 1))
	if r := process(t, p, in2, filter.Delivery{Rcpts: []string{"alice@example.test"}}); r.Reason != "invitation" {
		t.Fatalf("after: %s/%s, want needs-action/invitation", r.Outcome, r.Reason)
	}
	// Switched off, nothing is learned.
	p.Cfg.LearnSentContacts = false
	process(t, p, mail("alice@example.test", "dave@remote.test", "out2@example.test", "", ""),
		filter.Delivery{MailFrom: "alice@example.test", Rcpts: []string{"dave@remote.test"}, Login: "alice@example.test"})
	db.Read(context.Background(), func(tx calstore.Tx) error {
		known, _ = tx.IsContact("alice@example.test", "dave@remote.test")
		return nil
	})
	if known {
		t.Fatal("learned with learn_sent_contacts off")
	}
}

// A delegate's invitation on the boss's behalf teaches the boss's own copy
// (docs/rules.md "Working on behalf of").
func TestDelegateOrganizes(t *testing.T) {
	p, db := newProc(t)
	db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "boss@example.test", Delegates: []string{"sec@example.test"}})
	})
	ics := fmt.Sprintf(invite, "d1@example.test", ";SENT-BY=\"mailto:sec@example.test\"", "boss@example.test", "carol@remote.test")
	raw := mail("sec@example.test", "carol@remote.test", "d1@example.test", "REQUEST", ics)
	rep, err := p.Process(context.Background(), filter.Delivery{MailFrom: "sec@example.test", Rcpts: []string{"carol@remote.test"}, Login: "sec@example.test", Transport: "test", Message: strings.NewReader(raw)})
	if err != nil {
		t.Fatal(err)
	}
	var boss *filter.Result
	for i, r := range rep.Results {
		if r.User == "boss@example.test" {
			boss = &rep.Results[i]
		}
	}
	if boss == nil || boss.Outcome != "applied" || boss.Reason != "organizer-copy" {
		t.Fatalf("boss's copy: %+v (all %+v)", boss, rep.Results)
	}
	// Someone who is not a delegate teaches nothing.
	raw2 := mail("mallory@example.test", "carol@remote.test", "d2@example.test", "REQUEST", strings.Replace(strings.Replace(ics, "d1@", "d2@", 1), "sec@", "mallory@", 1))
	rep, _ = p.Process(context.Background(), filter.Delivery{MailFrom: "mallory@example.test", Rcpts: []string{"carol@remote.test"}, Login: "mallory@example.test", Transport: "test", Message: strings.NewReader(raw2)})
	for _, r := range rep.Results {
		if r.User == "boss@example.test" {
			t.Fatalf("non-delegate reached the boss's calendar: %+v", r)
		}
	}
}

// REFRESH answers count against the target's budget of automatic mail
// (auto_send_limit): over it, the REFRESH is ignored with send-budget.
func TestRefreshLimit(t *testing.T) {
	p, _ := newProc(t)
	p.Cfg.AutoSendLimit = 2
	ics := fmt.Sprintf(invite, "f1@example.test", "", "alice@example.test", "carol@remote.test")
	process(t, p, mail("alice@example.test", "carol@remote.test", "f1@example.test", "REQUEST", ics),
		filter.Delivery{MailFrom: "alice@example.test", Rcpts: []string{"carol@remote.test"}, Login: "alice@example.test"})
	refresh := "BEGIN:VCALENDAR\nVERSION:2.0\nMETHOD:REFRESH\nBEGIN:VEVENT\nUID:f1@example.test\nDTSTAMP:20261125T113000Z\nORGANIZER:mailto:alice@example.test\nATTENDEE:mailto:carol@remote.test\nEND:VEVENT\nEND:VCALENDAR\n"
	var got []string
	for i := 0; i < 3; i++ {
		r := process(t, p, mail("carol@remote.test", "alice@example.test", fmt.Sprintf("rf%d@remote.test", i), "REFRESH", refresh),
			filter.Delivery{Rcpts: []string{"alice@example.test"}})
		got = append(got, string(r.Outcome)+"/"+string(r.Reason))
	}
	want := "applied/refresh-answered applied/refresh-answered ignored/send-budget"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

// A delegate answers an invitation on the boss's behalf: the REPLY names
// the delegate as SENT-BY and the outbox item as Sender; someone else may not.
func TestRespondAsDelegate(t *testing.T) {
	p, db := newProc(t)
	db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "boss@example.test", Delegates: []string{"sec@example.test"}, Policy: "always"}); err != nil {
			return err
		}
		return nil
	})
	ics := fmt.Sprintf(invite, "inv-d@remote.test", "", "carol@remote.test", "boss@example.test")
	r := process(t, p, mail("carol@remote.test", "boss@example.test", "inv-d@remote.test", "REQUEST", ics), filter.Delivery{Rcpts: []string{"boss@example.test"}})
	if r.Reason != "invitation" {
		t.Fatalf("invitation: %+v", r)
	}
	var id uint64
	db.Read(context.Background(), func(tx calstore.Tx) error {
		ps, _ := tx.PendingList("boss@example.test", true)
		id = ps[0].ID
		return nil
	})
	if _, err := p.Respond(context.Background(), filter.RespondRequest{User: "boss@example.test", Pending: id, Action: "accept", As: "mallory@example.test"}); err == nil {
		t.Fatal("a non-delegate answered for the boss")
	}
	if _, err := p.Respond(context.Background(), filter.RespondRequest{User: "boss@example.test", Pending: id, Action: "accept", As: "sec@example.test"}); err != nil {
		t.Fatal(err)
	}
	var items []calstore.OutboxItem
	db.Read(context.Background(), func(tx calstore.Tx) error { items, _ = tx.Outbox(); return nil })
	if len(items) != 1 || items[0].SentBy != "sec@example.test" || items[0].From != "boss@example.test" ||
		!strings.Contains(string(items[0].Body), `SENT-BY="mailto:sec@example.test"`) {
		t.Fatalf("outbox: %+v\n%s", items, items[0].Body)
	}
}
