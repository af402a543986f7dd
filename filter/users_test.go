package filter_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"imipd/calstore"
	"imipd/filter"
	"imipd/itip"
)

// TestRecipientToUser is the one recipient rule (docs/rules.md "Users and
// addresses", filter/users.go resolveUser) under each delimiter setting and
// both ways users come to exist.
func TestRecipientToUser(t *testing.T) {
	p, db := newProc(t)
	err := db.Write(context.Background(), func(tx calstore.Tx) error {
		for _, u := range []calstore.User{
			{Address: "bob@example.test", Aliases: []string{"robert@alias.test"}},
			{Address: "first-last@example.test"},
		} {
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	const none = "-" // not a user
	for _, c := range []struct {
		delim, create, in, want string
	}{
		{"+", "auto", "bob+x@example.test", "bob@example.test"},
		{"+", "auto", "BOB+Team@Example.TEST", "bob@example.test"},
		{"+", "auto", "bob+a+b@example.test", "bob@example.test"},
		{"+", "auto", "<bob+x@example.test>", "bob@example.test"},
		{"+", "auto", " mailto:Bob+x@example.test", "bob@example.test"},
		{"+", "auto", "<<Bob@example.test>>", "bob@example.test"}, // wrapped twice (STYLE "Known limits")
		{"+", "auto", "robert+x@alias.test", "bob@example.test"},
		{"+", "auto", "first-last+x@example.test", "first-last@example.test"},
		{"+", "auto", "bob-x@example.test", "bob-x@example.test"}, // not a subaddress here: a new user
		{"+", "auto", "carol+x@example.test", "carol@example.test"},
		{"+", "auto", "+x@example.test", "+x@example.test"},
		{"+", "auto", "bob+x@remote.test", none},
		{"+", "auto", "bob", none},
		{"-+", "auto", "bob-x@example.test", "bob@example.test"},
		{"-+", "auto", "bob+x@example.test", "bob@example.test"},
		{"-+", "auto", "first-last@example.test", "first-last@example.test"}, // the whole address first, as Postfix
		{"-+", "auto", "first-last+x@example.test", "first@example.test"},    // then cut at the first delimiter found
		{"", "auto", "bob+x@example.test", "bob+x@example.test"},
		{"", "auto", "BOB@example.test", "bob@example.test"},
		{"+", "listed", "bob+x@example.test", "bob@example.test"},
		{"+", "listed", "Robert@Alias.test", "bob@example.test"},
		{"+", "listed", "carol@example.test", none},
		{"+", "listed", "carol+x@example.test", none},
	} {
		p.Cfg.RecipientDelimiter, p.Cfg.CreateUsers = c.delim, c.create
		got := none
		err := db.Read(context.Background(), func(tx calstore.Tx) error {
			u, ok, err := p.LocalUser(tx, c.in)
			if ok {
				got = u
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("delimiter %q, create %s: %q is %q, want %q", c.delim, c.create, c.in, got, c.want)
		}
	}
}

// TestPerUserCaps: a user at events_per_user gets no new event, and at
// pending_per_user no new pending item: ignored with the cap's reason,
// nothing stored; an update to an event the user holds still applies.
func TestPerUserCaps(t *testing.T) {
	p, db := newProc(t)
	p.Cfg.EventsPerUser, p.Cfg.PendingPerUser = 3, 2
	p.Cfg.DefaultPolicy = itip.Always
	deliver := func(raw string) []filter.Result {
		t.Helper()
		rep, err := p.Process(context.Background(), filter.Delivery{Transport: "lmtp", Rcpts: []string{"bob@example.test"}, Message: strings.NewReader(raw)})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Results
	}
	for i, want := range []string{"needs-action/invitation", "needs-action/invitation", "ignored/pending-limit"} {
		uid := fmt.Sprintf("cap-%d@remote.test", i)
		r := deliver(request(uid, uid, 0, []string{"bob@example.test"}))
		if got := fmt.Sprintf("%s/%s", r[0].Outcome, r[0].Reason); got != want {
			t.Errorf("invitation %d: %s, want %s", i, got, want)
		}
	}
	// Bob answers one invitation: one pending item left, room for one.
	err := db.Write(context.Background(), func(tx calstore.Tx) error {
		l, err := tx.PendingList("bob@example.test", true)
		if err != nil {
			return err
		}
		l[0].Status = calstore.PendingDone
		return tx.PutPending(l[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"needs-action/invitation", "ignored/event-limit"} {
		uid := fmt.Sprintf("more-%d@remote.test", i)
		r := deliver(request(uid, uid, 0, []string{"bob@example.test"}))
		if got := fmt.Sprintf("%s/%s", r[0].Outcome, r[0].Reason); got != want {
			t.Errorf("invitation after the answer %d: %s, want %s", i, got, want)
		}
	}
	st := readState(t, db)
	if st.Events["bob@example.test"] != 3 || st.Opened["bob@example.test"] != 2 {
		t.Errorf("bob: %d events, %d open pending items; want 3 and 2", st.Events["bob@example.test"], st.Opened["bob@example.test"])
	}
}

// TestNewUsersPerHour: the hourly cap on new users is counted in the store,
// so a new Processor on the same file (a restart) does not reset it, and
// it opens again as the hour slides.
func TestNewUsersPerHour(t *testing.T) {
	p, db := newProc(t)
	p.Cfg.NewUsersPerMessage, p.Cfg.NewUsersPerHour = 3, 5
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(4, 11))
	deliver := func(p *filter.Processor) (made int) {
		t.Helper()
		p.Now = func() time.Time { return now }
		rcpts := hostileRcpts(r, "", 4)
		rep, err := p.Process(context.Background(), filter.Delivery{Transport: "lmtp", Rcpts: rcpts, Message: strings.NewReader(request("h@remote.test", "h@remote.test", 0, rcpts[:1]))})
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range rep.Results {
			if res.Reason != filter.ReasonUserLimit {
				made++
			}
		}
		return made
	}
	for i, want := range []int{3, 2, 0} {
		if got := deliver(p); got != want {
			t.Errorf("message %d at 12:00: %d users made, want %d", i, got, want)
		}
	}
	restarted := &filter.Processor{Store: db, Cfg: p.Cfg}
	if got := deliver(restarted); got != 0 {
		t.Errorf("after a restart at 12:00: %d users made, want 0", got)
	}
	now = now.Add(filter.NewUserWindow)
	if got := deliver(restarted); got != 3 {
		t.Errorf("an hour later: %d users made, want 3", got)
	}
	if st := readState(t, db); len(st.Users) != 8 {
		t.Errorf("%d users, want 8", len(st.Users))
	}
}

// TestSubaddressAnswer: Bob invited as ATTENDEE bob+team@ answers as that
// attendee: his stored copy and the REPLY carry bob+team@ with his answer,
// no other ATTENDEE is added for him, and the REPLY comes from bob+team@
// (docs/rules.md "Sender checks": its author is the answering attendee).
func TestSubaddressAnswer(t *testing.T) {
	p, db := newProc(t)
	ctx := context.Background()
	if err := db.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "bob@example.test"}); err != nil {
			return err
		}
		return tx.AddContact(calstore.Contact{User: "bob@example.test", Address: "alice@remote.test"})
	}); err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"bob+team@example.test"}
	rep, err := p.Process(ctx, filter.Delivery{Transport: "lmtp", Rcpts: rcpts, Message: strings.NewReader(request("team-1@remote.test", "team-1@remote.test", 0, rcpts))})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].User != "bob@example.test" || rep.Results[0].Reason != "invitation" {
		t.Fatalf("results %+v, want Bob's invitation", rep.Results)
	}
	var id uint64
	db.Read(ctx, func(tx calstore.Tx) error {
		l, err := tx.PendingList("bob@example.test", true)
		if len(l) == 1 {
			id = l[0].ID
		}
		return err
	})
	if _, err := p.Respond(ctx, filter.RespondRequest{User: "bob@example.test", Pending: id, Action: "accept"}); err != nil {
		t.Fatalf("respond accept: %v", err)
	}
	err = db.Read(ctx, func(tx calstore.Tx) error {
		ev, err := tx.Event("bob@example.test", "team-1@remote.test")
		if err != nil {
			return err
		}
		if got := strings.Count(string(ev.Data), "ATTENDEE"); got != 1 || !strings.Contains(string(ev.Data), "PARTSTAT=ACCEPTED") ||
			!strings.Contains(string(ev.Data), "mailto:bob+team@example.test") {
			t.Errorf("stored after accepting:\n%s", ev.Data)
		}
		out, err := tx.Outbox()
		if err != nil {
			return err
		}
		if len(out) != 1 || out[0].Method != "REPLY" || out[0].From != "bob+team@example.test" || !strings.Contains(string(out[0].Body), "mailto:bob+team@example.test") ||
			strings.Count(string(out[0].Body), "ATTENDEE") != 1 {
			t.Errorf("outbox %+v", out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
