// Package storetest is the conformance suite for calstore.Store
// implementations, in the manner of smallstep/nosql's dbtest: every
// implementation runs the same tests, so the tests are the contract.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"imipd/calstore"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call and arrange for it to be closed (t.Cleanup); the suite closes
// some stores itself first, so a second Close must be harmless.
func Run(t *testing.T, open func(t *testing.T) calstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s calstore.Store)
	}{
		{"Users", testUsers},
		{"UserAliases", testUserAliases},
		{"UserConflict", testUserConflict},
		{"UserReadAfterChange", testUserReadAfterChange},
		{"UserInvalid", testUserInvalid},
		{"DeleteUser", testDeleteUser},
		{"Events", testEvents},
		{"HistoryTrim", testHistoryTrim},
		{"EventHistoryCap", testEventHistoryCap},
		{"ChangeCounter", testChangeCounter},
		{"UserSecrets", testUserSecrets},
		{"Log", testLog},
		{"LogOrderAndLimit", testLogOrder},
		{"Pending", testPending},
		{"PendingForUID", testPendingForUID},
		{"Counts", testCounts},
		{"Contacts", testContacts},
		{"Outbox", testOutbox},
		{"OutboxQueued", testOutboxQueued},
		{"OutboxDue", testOutboxDue},
		{"OutboxClaim", testOutboxClaim},
		{"OutboxSentBefore", testOutboxSentBefore},
		{"Budget", testBudget},
		{"BudgetPrune", testBudgetPrune},
		{"BudgetInvalid", testBudgetInvalid},
		{"Downtimes", testDowntimes},
		{"UnknownUser", testUnknownUser},
		{"CopiedOut", testCopiedOut},
		{"Rollback", testRollback},
		{"RollbackOnPanic", testRollbackOnPanic},
		{"ReadIsReadOnly", testReadOnlyTx},
		{"TxAfterFn", testTxAfterFn},
		{"ConcurrentWrites", testConcurrentWrites},
		{"Batch", testBatch},
		{"BatchFailureIsolated", testBatchFailure},
		{"Closed", testClosed},
		{"ContextCancelled", testContextCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// t0 is a fixed time; stores may round-trip times in another location, so
// tests compare with Equal.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func write(t *testing.T, s calstore.Store, fn func(tx calstore.Tx) error) {
	t.Helper()
	if err := s.Write(ctx, fn); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func read(t *testing.T, s calstore.Store, fn func(tx calstore.Tx) error) {
	t.Helper()
	if err := s.Read(ctx, fn); err != nil {
		t.Fatalf("Read: %v", err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func addUsers(t *testing.T, s calstore.Store, users ...calstore.User) {
	t.Helper()
	write(t, s, func(tx calstore.Tx) error {
		for _, u := range users {
			if err := tx.PutUser(u); err != nil {
				return fmt.Errorf("PutUser %s: %w", u.Address, err)
			}
		}
		return nil
	})
}

func testUsers(t *testing.T, s calstore.Store) {
	addUsers(t, s,
		calstore.User{Address: "Mailto:Carol@Example.Test ", Policy: "never", Created: t0},
		calstore.User{Address: "alice@example.test", Delegates: []string{"MAILTO:Sec@Example.Test", "sec@example.test"}},
		calstore.User{Address: "bob@example.test", Policy: "always"},
	)
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Users()
		if err != nil {
			return err
		}
		var got []string
		for _, u := range l {
			got = append(got, u.Address)
		}
		if want := []string{"alice@example.test", "bob@example.test", "carol@example.test"}; !slices.Equal(got, want) {
			t.Errorf("Users: got %v, want %v", got, want)
		}
		u, err := tx.User("carol@example.test")
		if err != nil {
			return err
		}
		if u.Policy != "never" || !u.Created.Equal(t0) {
			t.Errorf("carol: got %+v", u)
		}
		u, err = tx.User("alice@example.test")
		if err != nil {
			return err
		}
		if !slices.Equal(u.Delegates, []string{"sec@example.test"}) {
			t.Errorf("alice delegates: got %v, want normalised and deduplicated", u.Delegates)
		}
		if u.Created.IsZero() {
			t.Errorf("alice: Created not set")
		}
		return nil
	})
	// Replace keeps Created when the new value has none.
	write(t, s, func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "carol@example.test", Policy: "known"})
	})
	read(t, s, func(tx calstore.Tx) error {
		u, err := tx.User("CAROL@example.test")
		if err != nil {
			return err
		}
		if u.Policy != "known" || !u.Created.Equal(t0) {
			t.Errorf("carol after replace: got %+v, want policy known, created %v", u, t0)
		}
		_, err = tx.User("nobody@example.test")
		wantErr(t, "User(unknown)", err, calstore.ErrNotFound)
		return nil
	})
}

func testUserAliases(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", Aliases: []string{"A.Smith@Example.Test", "alice@example.test", "mailto:alice@other.test"}})
	lookups := []struct {
		addr string
		ok   bool
	}{
		{"alice@example.test", true},
		{"ALICE@EXAMPLE.TEST", true},
		{"mailto:a.smith@example.test", true},
		{"MAILTO:Alice@Other.Test", true},
		{"  alice@other.test\t", true},
		{"smith@example.test", false},
	}
	read(t, s, func(tx calstore.Tx) error {
		for _, l := range lookups {
			u, err := tx.User(l.addr)
			if l.ok && (err != nil || u.Address != "alice@example.test") {
				t.Errorf("User(%q): got %q, %v; want alice@example.test", l.addr, u.Address, err)
			}
			if !l.ok {
				wantErr(t, "User("+l.addr+")", err, calstore.ErrNotFound)
			}
		}
		u, err := tx.User("alice@other.test")
		if err != nil {
			return err
		}
		if want := []string{"a.smith@example.test", "alice@other.test"}; !slices.Equal(u.Aliases, want) {
			t.Errorf("aliases: got %v, want %v (normalised, primary dropped)", u.Aliases, want)
		}
		return nil
	})
	// Dropping an alias frees it for another user.
	addUsers(t, s,
		calstore.User{Address: "alice@example.test", Aliases: []string{"alice@other.test"}},
		calstore.User{Address: "smith@example.test", Aliases: []string{"a.smith@example.test"}},
	)
	read(t, s, func(tx calstore.Tx) error {
		u, err := tx.User("a.smith@example.test")
		if err != nil || u.Address != "smith@example.test" {
			t.Errorf("freed alias: got %q, %v; want smith@example.test", u.Address, err)
		}
		return nil
	})
}

func testUserConflict(t *testing.T, s calstore.Store) {
	addUsers(t, s,
		calstore.User{Address: "alice@example.test", Aliases: []string{"a@example.test"}},
		calstore.User{Address: "bob@example.test"},
	)
	cases := []struct {
		name string
		u    calstore.User
	}{
		{"alias is other's primary", calstore.User{Address: "carol@example.test", Aliases: []string{"Bob@Example.Test"}}},
		{"alias is other's alias", calstore.User{Address: "carol@example.test", Aliases: []string{"mailto:a@example.test"}}},
		{"primary is other's alias", calstore.User{Address: "A@example.test"}},
		{"existing user takes other's alias", calstore.User{Address: "bob@example.test", Aliases: []string{"a@example.test"}}},
	}
	for _, c := range cases {
		err := s.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(c.u) })
		wantErr(t, c.name, err, calstore.ErrConflict)
	}
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Users()
		if err != nil {
			return err
		}
		if len(l) != 2 {
			t.Errorf("after conflicts: %d users, want 2", len(l))
		}
		u, err := tx.User("a@example.test")
		if err != nil || u.Address != "alice@example.test" {
			t.Errorf("a@: got %q, %v", u.Address, err)
		}
		u, err = tx.User("bob@example.test")
		if err != nil || len(u.Aliases) != 0 {
			t.Errorf("bob: got %+v, %v", u, err)
		}
		return nil
	})
}

func testUserInvalid(t *testing.T, s calstore.Store) {
	cases := []struct {
		name string
		u    calstore.User
	}{
		{"empty address", calstore.User{Address: " mailto: "}},
		{"empty alias", calstore.User{Address: "x@example.test", Aliases: []string{""}}},
		{"bad policy", calstore.User{Address: "x@example.test", Policy: "sometimes"}},
		{"long address", calstore.User{Address: strings.Repeat("x", 40000) + "@example.test"}},
	}
	for _, c := range cases {
		err := s.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(c.u) })
		wantErr(t, c.name, err, calstore.ErrInvalid)
	}
}

// populate gives a user one of everything.
func populate(t *testing.T, s calstore.Store, user string, aliases ...string) {
	t.Helper()
	addUsers(t, s, calstore.User{Address: user, Aliases: aliases})
	write(t, s, func(tx calstore.Tx) error {
		if err := tx.PutEvent(user, calstore.Event{UID: "ev-" + user, Data: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")}); err != nil {
			return err
		}
		if err := tx.AddLog(calstore.LogEntry{User: user, Key: "k-" + user, Outcome: "applied"}); err != nil {
			return err
		}
		if _, err := tx.AddPending(calstore.Pending{User: user, UID: "ev-" + user, Kind: "invitation"}); err != nil {
			return err
		}
		return tx.AddContact(calstore.Contact{User: user, Address: "friend@example.org"})
	})
}

func testDeleteUser(t *testing.T, s calstore.Store) {
	populate(t, s, "alice@example.test", "al@example.test")
	populate(t, s, "bob@example.test")
	write(t, s, func(tx calstore.Tx) error { return tx.DeleteUser("MAILTO:AL@example.test") })
	read(t, s, func(tx calstore.Tx) error {
		for _, a := range []string{"alice@example.test", "al@example.test"} {
			_, err := tx.User(a)
			wantErr(t, "User after delete", err, calstore.ErrNotFound)
			_, err = tx.Events(a)
			wantErr(t, "Events after delete", err, calstore.ErrNotFound)
			_, err = tx.LogEntry(a, "k-alice@example.test")
			wantErr(t, "LogEntry after delete", err, calstore.ErrNotFound)
			_, err = tx.PendingList(a, false)
			wantErr(t, "PendingList after delete", err, calstore.ErrNotFound)
			_, err = tx.Contacts(a)
			wantErr(t, "Contacts after delete", err, calstore.ErrNotFound)
		}
		log, err := tx.Log("", 0)
		if err != nil {
			return err
		}
		if len(log) != 1 || log[0].User != "bob@example.test" {
			t.Errorf("Log after delete: got %+v, want only bob's entry", log)
		}
		evs, err := tx.Events("bob@example.test")
		if err != nil || len(evs) != 1 {
			t.Errorf("bob's events: got %d, %v", len(evs), err)
		}
		return nil
	})
	err := s.Write(ctx, func(tx calstore.Tx) error { return tx.DeleteUser("alice@example.test") })
	wantErr(t, "second DeleteUser", err, calstore.ErrNotFound)

	// Re-created, the user starts empty and the addresses are free.
	addUsers(t, s, calstore.User{Address: "alice@example.test"}, calstore.User{Address: "carol@example.test", Aliases: []string{"al@example.test"}})
	read(t, s, func(tx calstore.Tx) error {
		evs, err := tx.Events("alice@example.test")
		if err != nil || len(evs) != 0 {
			t.Errorf("re-created user's events: got %d, %v; want none", len(evs), err)
		}
		_, err = tx.LogEntry("alice@example.test", "k-alice@example.test")
		wantErr(t, "re-created user's log", err, calstore.ErrNotFound)
		return nil
	})
}

func testEvents(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", Aliases: []string{"al@example.test"}})
	stamps := map[string]time.Time{"bob@example.test": t0, "bob@example.test\x0020260301T090000Z": t0.Add(time.Hour)}
	write(t, s, func(tx calstore.Tx) error {
		for _, uid := range []string{"zz", "aa", "mm@host"} {
			ev := calstore.Event{UID: uid, Data: []byte("DATA " + uid), ReplyStamps: stamps, Updated: t0,
				History: []calstore.HistoryEntry{{Time: t0, MessageID: "<m@x>", Method: "REQUEST", Outcome: "applied"}}}
			if err := tx.PutEvent("Al@Example.Test", ev); err != nil {
				return err
			}
		}
		return nil
	})
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Events("alice@example.test")
		if err != nil {
			return err
		}
		var uids []string
		for _, ev := range l {
			uids = append(uids, ev.UID)
		}
		if want := []string{"aa", "mm@host", "zz"}; !slices.Equal(uids, want) {
			t.Errorf("Events: got %v, want %v", uids, want)
		}
		ev, err := tx.Event("al@example.test", "mm@host")
		if err != nil {
			return err
		}
		if string(ev.Data) != "DATA mm@host" || !ev.Updated.Equal(t0) || len(ev.History) != 0 {
			t.Errorf("Event: got %+v (history is read with EventHistory)", ev)
		}
		if h, err := tx.EventHistory("al@example.test", "mm@host"); err != nil || len(h) != 1 || h[0].Method != "REQUEST" {
			t.Errorf("EventHistory: got %+v, %v", h, err)
		}
		if len(ev.ReplyStamps) != 2 || !ev.ReplyStamps["bob@example.test\x0020260301T090000Z"].Equal(t0.Add(time.Hour)) {
			t.Errorf("ReplyStamps: got %v", ev.ReplyStamps)
		}
		_, err = tx.Event("alice@example.test", "MM@HOST")
		wantErr(t, "Event UID is case-sensitive", err, calstore.ErrNotFound)
		return nil
	})
	write(t, s, func(tx calstore.Tx) error {
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "aa", Data: []byte("v2")}); err != nil {
			return err
		}
		return tx.DeleteEvent("alice@example.test", "zz")
	})
	read(t, s, func(tx calstore.Tx) error {
		ev, err := tx.Event("alice@example.test", "aa")
		if err != nil {
			return err
		}
		if string(ev.Data) != "v2" || ev.Updated.IsZero() || ev.History != nil {
			t.Errorf("replaced event: got %+v", ev)
		}
		if h, _ := tx.EventHistory("alice@example.test", "aa"); len(h) != 1 {
			t.Errorf("history of a replaced event: %d entries, want the 1 it had (PutEvent adds)", len(h))
		}
		_, err = tx.Event("alice@example.test", "zz")
		wantErr(t, "deleted event", err, calstore.ErrNotFound)
		if h, err := tx.EventHistory("alice@example.test", "zz"); err != nil || len(h) != 0 {
			t.Errorf("history of a deleted event: %v, %v", h, err)
		}
		return nil
	})
	err := s.Write(ctx, func(tx calstore.Tx) error { return tx.DeleteEvent("alice@example.test", "zz") })
	wantErr(t, "DeleteEvent absent", err, calstore.ErrNotFound)
	err = s.Write(ctx, func(tx calstore.Tx) error { return tx.PutEvent("alice@example.test", calstore.Event{}) })
	wantErr(t, "PutEvent without UID", err, calstore.ErrInvalid)
}

func testEventHistoryCap(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	var h []calstore.HistoryEntry
	for i := range 150 {
		h = append(h, calstore.HistoryEntry{Time: t0.Add(time.Duration(i) * time.Minute), MessageID: fmt.Sprint(i)})
	}
	// Added in two writes: PutEvent adds its History to what is kept.
	write(t, s, func(tx calstore.Tx) error {
		return tx.PutEvent("alice@example.test", calstore.Event{UID: "u", History: h[:70]})
	})
	write(t, s, func(tx calstore.Tx) error {
		return tx.PutEvent("alice@example.test", calstore.Event{UID: "u", History: h[70:]})
	})
	// Another event's history is its own.
	write(t, s, func(tx calstore.Tx) error {
		return tx.PutEvent("alice@example.test", calstore.Event{UID: "u2", History: h[:3]})
	})
	read(t, s, func(tx calstore.Tx) error {
		hist, err := tx.EventHistory("alice@example.test", "u")
		if err != nil {
			return err
		}
		if len(hist) != 100 || hist[0].MessageID != "50" || hist[99].MessageID != "149" {
			t.Errorf("history: %d entries; want 100, 50..149", len(hist))
		}
		if h2, _ := tx.EventHistory("alice@example.test", "u2"); len(h2) != 3 {
			t.Errorf("u2 history: %d entries, want 3", len(h2))
		}
		return nil
	})
	if len(h) != 150 || h[0].MessageID != "0" {
		t.Errorf("PutEvent changed the caller's history slice")
	}
}

func testLog(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", Aliases: []string{"al@example.test"}}, calstore.User{Address: "bob@example.test"})
	e := calstore.LogEntry{User: "MAILTO:al@example.test", Key: "key1", Time: t0, MessageID: "<1@x>", From: "org@example.org",
		Method: "REQUEST", UID: "u1", Outcome: "needs-action", Reason: "new", Transport: "milter"}
	write(t, s, func(tx calstore.Tx) error { return tx.AddLog(e) })
	read(t, s, func(tx calstore.Tx) error {
		got, err := tx.LogEntry("Alice@example.test", "key1")
		if err != nil {
			return err
		}
		want := e
		want.User = "alice@example.test"
		if !got.Time.Equal(want.Time) {
			t.Errorf("LogEntry time: got %v, want %v", got.Time, want.Time)
		}
		got.Time = want.Time
		if got != want {
			t.Errorf("LogEntry: got %+v, want %+v", got, want)
		}
		_, err = tx.LogEntry("alice@example.test", "KEY1")
		wantErr(t, "LogEntry key is case-sensitive", err, calstore.ErrNotFound)
		_, err = tx.LogEntry("bob@example.test", "key1")
		wantErr(t, "LogEntry other user", err, calstore.ErrNotFound)
		return nil
	})
	cases := []struct {
		name string
		e    calstore.LogEntry
		want error
	}{
		{"same key same user", calstore.LogEntry{User: "alice@example.test", Key: "key1"}, calstore.ErrExists},
		{"same key via alias", calstore.LogEntry{User: "al@example.test", Key: "key1"}, calstore.ErrExists},
		{"same key other user", calstore.LogEntry{User: "bob@example.test", Key: "key1"}, nil},
		{"empty key", calstore.LogEntry{User: "bob@example.test"}, calstore.ErrInvalid},
		{"unknown user", calstore.LogEntry{User: "eve@example.test", Key: "k"}, calstore.ErrNotFound},
	}
	for _, c := range cases {
		err := s.Write(ctx, func(tx calstore.Tx) error { return tx.AddLog(c.e) })
		if c.want == nil && err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if c.want != nil {
			wantErr(t, c.name, err, c.want)
		}
	}
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Log("", 0)
		if err != nil {
			return err
		}
		if len(l) != 2 {
			t.Errorf("Log: %d entries, want 2", len(l))
		}
		got, err := tx.LogEntry("bob@example.test", "key1")
		if err != nil || got.Time.IsZero() {
			t.Errorf("bob's entry: %+v, %v; want Time set", got, err)
		}
		return nil
	})
}

func testLogOrder(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"}, calstore.User{Address: "bob@example.test"})
	// Interleaved, over several transactions, with times that do not
	// follow insertion order: order is "most recently added first".
	for i := range 10 {
		write(t, s, func(tx calstore.Tx) error {
			user := "alice@example.test"
			if i%2 == 1 {
				user = "bob@example.test"
			}
			return tx.AddLog(calstore.LogEntry{User: user, Key: fmt.Sprint(i), Time: t0.Add(-time.Duration(i) * time.Hour)})
		})
	}
	keys := func(l []calstore.LogEntry) string {
		var k []string
		for _, e := range l {
			k = append(k, e.Key)
		}
		return strings.Join(k, ",")
	}
	cases := []struct {
		user  string
		limit int
		want  string
	}{
		{"", 0, "9,8,7,6,5,4,3,2,1,0"},
		{"", -1, "9,8,7,6,5,4,3,2,1,0"},
		{"", 3, "9,8,7"},
		{"", 100, "9,8,7,6,5,4,3,2,1,0"},
		{"alice@example.test", 0, "8,6,4,2,0"},
		{"Mailto:BOB@example.test", 2, "9,7"},
	}
	read(t, s, func(tx calstore.Tx) error {
		for _, c := range cases {
			l, err := tx.Log(c.user, c.limit)
			if err != nil {
				return err
			}
			if got := keys(l); got != c.want {
				t.Errorf("Log(%q, %d): got %s, want %s", c.user, c.limit, got, c.want)
			}
		}
		_, err := tx.Log("eve@example.test", 0)
		wantErr(t, "Log(unknown)", err, calstore.ErrNotFound)
		return nil
	})
}

func testPending(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", Aliases: []string{"al@example.test"}}, calstore.User{Address: "bob@example.test"})
	var ids []uint64
	write(t, s, func(tx calstore.Tx) error {
		for i, user := range []string{"alice@example.test", "bob@example.test", "AL@example.test", "alice@example.test"} {
			p, err := tx.AddPending(calstore.Pending{User: user, UID: fmt.Sprint("u", i), Kind: "invitation",
				Actions: []string{"accept", "decline"}, Data: []byte("ICS"), Created: t0})
			if err != nil {
				return err
			}
			wantUser := "alice@example.test"
			if i == 1 {
				wantUser = "bob@example.test"
			}
			if p.Status != "open" || p.User != wantUser {
				t.Errorf("AddPending: got status %q, user %q", p.Status, p.User)
			}
			ids = append(ids, p.ID)
		}
		return nil
	})
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("pending IDs not increasing: %v", ids)
		}
	}
	// IDs keep increasing in later transactions.
	write(t, s, func(tx calstore.Tx) error {
		p, err := tx.AddPending(calstore.Pending{User: "bob@example.test", Kind: "held", Status: "done"})
		if err != nil {
			return err
		}
		if p.ID <= ids[len(ids)-1] || p.Status != "done" {
			t.Errorf("later AddPending: got ID %d status %q, want > %d, done", p.ID, p.Status, ids[len(ids)-1])
		}
		return nil
	})
	read(t, s, func(tx calstore.Tx) error {
		p, err := tx.PendingItem("al@example.test", ids[2])
		if err != nil {
			return err
		}
		if p.User != "alice@example.test" || p.UID != "u2" || string(p.Data) != "ICS" || !slices.Equal(p.Actions, []string{"accept", "decline"}) || !p.Created.Equal(t0) {
			t.Errorf("PendingItem: got %+v", p)
		}
		_, err = tx.PendingItem("bob@example.test", ids[2])
		wantErr(t, "PendingItem of another user", err, calstore.ErrNotFound)
		l, err := tx.PendingList("alice@example.test", false)
		if err != nil {
			return err
		}
		if len(l) != 3 || l[0].ID != ids[0] || l[1].ID != ids[2] || l[2].ID != ids[3] {
			t.Errorf("PendingList: got %+v", l)
		}
		return nil
	})
	write(t, s, func(tx calstore.Tx) error {
		p, err := tx.PendingItem("alice@example.test", ids[2])
		if err != nil {
			return err
		}
		p.Status, p.Resolution, p.Updated = "done", "accept", t0.Add(time.Hour)
		return tx.PutPending(p)
	})
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.PendingList("alice@example.test", true)
		if err != nil {
			return err
		}
		if len(l) != 2 || l[0].ID != ids[0] || l[1].ID != ids[3] {
			t.Errorf("PendingList open: got %+v", l)
		}
		p, err := tx.PendingItem("alice@example.test", ids[2])
		if err != nil {
			return err
		}
		if p.Status != "done" || p.Resolution != "accept" || !p.Updated.Equal(t0.Add(time.Hour)) {
			t.Errorf("after PutPending: got %+v", p)
		}
		return nil
	})
	cases := []struct {
		name string
		p    calstore.Pending
		want error
	}{
		{"unknown ID", calstore.Pending{User: "alice@example.test", ID: 999, Status: "open"}, calstore.ErrNotFound},
		{"other user's ID", calstore.Pending{User: "bob@example.test", ID: ids[0], Status: "open"}, calstore.ErrNotFound},
		{"bad status", calstore.Pending{User: "alice@example.test", ID: ids[0], Status: "maybe"}, calstore.ErrInvalid},
	}
	for _, c := range cases {
		err := s.Write(ctx, func(tx calstore.Tx) error { return tx.PutPending(c.p) })
		wantErr(t, "PutPending "+c.name, err, c.want)
	}
	err := s.Write(ctx, func(tx calstore.Tx) error {
		_, err := tx.AddPending(calstore.Pending{User: "eve@example.test"})
		return err
	})
	wantErr(t, "AddPending unknown user", err, calstore.ErrNotFound)
}

func testPendingForUID(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"}, calstore.User{Address: "bob@example.test"})
	ids := map[string]uint64{}
	write(t, s, func(tx calstore.Tx) error {
		for _, c := range []struct{ name, user, uid, status string }{
			{"a1", "alice@example.test", "ev", ""},
			{"a2", "alice@example.test", "ev", "done"},
			{"a3", "alice@example.test", "ev2", ""},
			{"a4", "alice@example.test", "ev\x00x", ""},
			{"a5", "alice@example.test", "e", ""},
			{"b1", "bob@example.test", "ev", ""},
			{"a6", "alice@example.test", "ev", "obsolete"},
			{"a7", "alice@example.test", "ev", ""},
		} {
			p, err := tx.AddPending(calstore.Pending{User: c.user, UID: c.uid, Status: c.status, Kind: "invitation"})
			if err != nil {
				return err
			}
			ids[c.name] = p.ID
		}
		return nil
	})
	get := func(user, uid string) []uint64 {
		var r []uint64
		read(t, s, func(tx calstore.Tx) error {
			l, err := tx.PendingForUID(user, uid)
			for _, p := range l {
				r = append(r, p.ID)
			}
			return err
		})
		return r
	}
	if got, want := get("alice@example.test", "ev"), []uint64{ids["a1"], ids["a7"]}; !slices.Equal(got, want) {
		t.Errorf("PendingForUID(ev): got %v, want %v", got, want)
	}
	if got := get("alice@example.test", "nope"); len(got) != 0 {
		t.Errorf("PendingForUID(nope): got %v", got)
	}
	// Mark obsolete, and move one item to another UID: the index follows.
	write(t, s, func(tx calstore.Tx) error {
		l, err := tx.PendingForUID("alice@example.test", "ev")
		if err != nil {
			return err
		}
		l[0].Status = "obsolete"
		if err := tx.PutPending(l[0]); err != nil {
			return err
		}
		l[1].UID = "ev2"
		return tx.PutPending(l[1])
	})
	if got := get("alice@example.test", "ev"); len(got) != 0 {
		t.Errorf("PendingForUID(ev) after update: got %v, want none", got)
	}
	if got, want := get("alice@example.test", "ev2"), []uint64{ids["a3"], ids["a7"]}; !slices.Equal(got, want) {
		t.Errorf("PendingForUID(ev2) after update: got %v, want %v", got, want)
	}
	if got, want := get("bob@example.test", "ev"), []uint64{ids["b1"]}; !slices.Equal(got, want) {
		t.Errorf("PendingForUID(bob, ev): got %v, want %v", got, want)
	}
}

func testCounts(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", Aliases: []string{"a@example.test"}}, calstore.User{Address: "bob@example.test"})
	write(t, s, func(tx calstore.Tx) error {
		for _, uid := range []string{"e1", "e2", "e3"} {
			if err := tx.PutEvent("alice@example.test", calstore.Event{UID: uid, Data: []byte("x")}); err != nil {
				return err
			}
		}
		if err := tx.PutEvent("bob@example.test", calstore.Event{UID: "e1", Data: []byte("x")}); err != nil {
			return err
		}
		for _, st := range []string{"", calstore.PendingOpen, calstore.PendingDone, calstore.PendingObsolete} {
			if _, err := tx.AddPending(calstore.Pending{User: "alice@example.test", UID: "e1", Status: st, Kind: "invitation"}); err != nil {
				return err
			}
		}
		return tx.DeleteEvent("alice@example.test", "e3")
	})
	read(t, s, func(tx calstore.Tx) error {
		for _, c := range []struct {
			user         string
			events, open int
		}{{"A@example.test", 2, 2}, {"alice@example.test", 2, 2}, {"bob@example.test", 1, 0}} {
			ev, op, err := tx.Counts(c.user)
			if err != nil {
				return err
			}
			if ev != c.events || op != c.open {
				t.Errorf("Counts(%s) = %d events, %d open pending; want %d, %d", c.user, ev, op, c.events, c.open)
			}
		}
		if _, _, err := tx.Counts("nobody@example.test"); !errors.Is(err, calstore.ErrNotFound) {
			t.Errorf("Counts(nobody): err %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testContacts(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", Aliases: []string{"al@example.test"}}, calstore.User{Address: "bob@example.test"})
	write(t, s, func(tx calstore.Tx) error {
		for _, c := range []calstore.Contact{
			{User: "alice@example.test", Address: "Zed@Example.org", Name: "Zed", Source: "vcard"},
			{User: "al@example.test", Address: "mailto:zed@example.org", Source: "sent"},      // no name: keeps Zed, keeps vcard
			{User: "alice@example.test", Address: "amy@example.org", Source: "sent"},          // new
			{User: "alice@example.test", Address: "AMY@example.org", Name: "Amy", Source: ""}, // name added
		} {
			if err := tx.AddContact(c); err != nil {
				return err
			}
		}
		return tx.AddContact(calstore.Contact{User: "bob@example.test", Address: "x@example.org"})
	})
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Contacts("alice@example.test")
		if err != nil {
			return err
		}
		want := []calstore.Contact{
			{User: "alice@example.test", Address: "amy@example.org", Name: "Amy", Source: "sent"},
			{User: "alice@example.test", Address: "zed@example.org", Name: "Zed", Source: "vcard"},
		}
		if !slices.Equal(l, want) {
			t.Errorf("Contacts: got %+v, want %+v", l, want)
		}
		for _, c := range []struct {
			user, addr string
			want       bool
		}{
			{"alice@example.test", "ZED@example.org", true},
			{"al@example.test", "mailto:amy@example.org", true},
			{"alice@example.test", "x@example.org", false},
			{"bob@example.test", "x@example.org", true},
			{"bob@example.test", "", false},
		} {
			got, err := tx.IsContact(c.user, c.addr)
			if err != nil || got != c.want {
				t.Errorf("IsContact(%q, %q): got %v, %v; want %v", c.user, c.addr, got, err, c.want)
			}
		}
		l, err = tx.Contacts("bob@example.test")
		if err != nil || len(l) != 1 || l[0].Source != "manual" {
			t.Errorf("bob's contacts: got %+v, %v; want one, source manual", l, err)
		}
		return nil
	})
	cases := []struct {
		name string
		c    calstore.Contact
		want error
	}{
		{"unknown user", calstore.Contact{User: "eve@example.test", Address: "x@example.org"}, calstore.ErrNotFound},
		{"empty address", calstore.Contact{User: "bob@example.test"}, calstore.ErrInvalid},
		{"bad source", calstore.Contact{User: "bob@example.test", Address: "y@example.org", Source: "guess"}, calstore.ErrInvalid},
	}
	for _, c := range cases {
		err := s.Write(ctx, func(tx calstore.Tx) error { return tx.AddContact(c.c) })
		wantErr(t, "AddContact "+c.name, err, c.want)
	}
}

func testOutbox(t *testing.T, s calstore.Store) {
	var items []calstore.OutboxItem
	write(t, s, func(tx calstore.Tx) error {
		for i := range 3 {
			o, err := tx.Enqueue(calstore.OutboxItem{User: "Alice@example.test", From: "mailto:Alice@example.test",
				To: []string{"Org@Example.org", "org@example.org"}, Method: "REPLY", UID: fmt.Sprint("u", i),
				Body: []byte("ICS"), Auto: i == 1, Status: "sent"})
			if err != nil {
				return err
			}
			items = append(items, o)
		}
		return nil
	})
	for i, o := range items {
		if o.Status != "queued" || o.Created.IsZero() || o.NextAttempt.IsZero() || o.From != "alice@example.test" || !slices.Equal(o.To, []string{"org@example.org"}) {
			t.Errorf("Enqueue %d: got %+v", i, o)
		}
		if i > 0 && o.ID <= items[i-1].ID {
			t.Errorf("outbox IDs not increasing: %d after %d", o.ID, items[i-1].ID)
		}
	}
	write(t, s, func(tx calstore.Tx) error {
		o, err := tx.OutboxItem(items[1].ID)
		if err != nil {
			return err
		}
		if !o.Auto || o.UID != "u1" || string(o.Body) != "ICS" {
			t.Errorf("OutboxItem: got %+v", o)
		}
		o.Status, o.Attempts, o.LastError, o.NextAttempt = "failed", 3, "451 try later", t0
		if err := tx.PutOutbox(o); err != nil {
			return err
		}
		return tx.DeleteOutbox(items[0].ID)
	})
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Outbox()
		if err != nil {
			return err
		}
		if len(l) != 2 || l[0].ID != items[1].ID || l[1].ID != items[2].ID {
			t.Fatalf("Outbox: got %+v", l)
		}
		if l[0].Status != "failed" || l[0].Attempts != 3 || l[0].LastError != "451 try later" || !l[0].NextAttempt.Equal(t0) {
			t.Errorf("after PutOutbox: got %+v", l[0])
		}
		_, err = tx.OutboxItem(items[0].ID)
		wantErr(t, "deleted outbox item", err, calstore.ErrNotFound)
		return nil
	})
	cases := []struct {
		name string
		fn   func(tx calstore.Tx) error
		want error
	}{
		{"PutOutbox unknown", func(tx calstore.Tx) error {
			return tx.PutOutbox(calstore.OutboxItem{ID: 999, From: "a@x", To: []string{"b@x"}, Status: "queued"})
		}, calstore.ErrNotFound},
		{"PutOutbox bad status", func(tx calstore.Tx) error {
			o := items[2]
			o.Status = "lost"
			return tx.PutOutbox(o)
		}, calstore.ErrInvalid},
		{"Enqueue without To", func(tx calstore.Tx) error {
			_, err := tx.Enqueue(calstore.OutboxItem{From: "a@x"})
			return err
		}, calstore.ErrInvalid},
		{"DeleteOutbox unknown", func(tx calstore.Tx) error { return tx.DeleteOutbox(999) }, calstore.ErrNotFound},
	}
	for _, c := range cases {
		wantErr(t, c.name, s.Write(ctx, c.fn), c.want)
	}
}

func testUnknownUser(t *testing.T, s calstore.Store) {
	const u = "eve@example.test"
	calls := []struct {
		name string
		fn   func(tx calstore.Tx) error
	}{
		{"Event", func(tx calstore.Tx) error { _, err := tx.Event(u, "x"); return err }},
		{"Events", func(tx calstore.Tx) error { _, err := tx.Events(u); return err }},
		{"PutEvent", func(tx calstore.Tx) error { return tx.PutEvent(u, calstore.Event{UID: "x"}) }},
		{"DeleteEvent", func(tx calstore.Tx) error { return tx.DeleteEvent(u, "x") }},
		{"DeleteUser", func(tx calstore.Tx) error { return tx.DeleteUser(u) }},
		{"LogEntry", func(tx calstore.Tx) error { _, err := tx.LogEntry(u, "k"); return err }},
		{"PendingItem", func(tx calstore.Tx) error { _, err := tx.PendingItem(u, 1); return err }},
		{"PendingList", func(tx calstore.Tx) error { _, err := tx.PendingList(u, false); return err }},
		{"PendingForUID", func(tx calstore.Tx) error { _, err := tx.PendingForUID(u, "x"); return err }},
		{"Contacts", func(tx calstore.Tx) error { _, err := tx.Contacts(u); return err }},
		{"IsContact", func(tx calstore.Tx) error { _, err := tx.IsContact(u, "x@y"); return err }},
	}
	for _, c := range calls {
		wantErr(t, c.name, s.Write(ctx, c.fn), calstore.ErrNotFound)
	}
}

func testCopiedOut(t *testing.T, s calstore.Store) {
	aliases := []string{"al@example.test"}
	data := []byte("ORIGINAL")
	write(t, s, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "alice@example.test", Aliases: aliases}); err != nil {
			return err
		}
		ev := calstore.Event{UID: "u", Data: data, ReplyStamps: map[string]time.Time{"b@x": t0},
			History: []calstore.HistoryEntry{{Summary: "first"}}}
		if err := tx.PutEvent("alice@example.test", ev); err != nil {
			return err
		}
		// Changing what was passed in, inside the same transaction,
		// does not reach the store.
		data[0] = 'X'
		aliases[0] = "changed@example.test"
		ev.ReplyStamps["c@x"] = t0
		ev.History[0].Summary = "changed"
		if _, err := tx.AddPending(calstore.Pending{User: "alice@example.test", UID: "u", Actions: []string{"accept"}, Data: []byte("P")}); err != nil {
			return err
		}
		_, err := tx.Enqueue(calstore.OutboxItem{From: "alice@example.test", To: []string{"b@x"}, Body: []byte("B")})
		return err
	})
	mutate := func(b []byte) {
		for i := range b {
			b[i] = 'Z'
		}
	}
	// Change everything returned, once inside the transaction and once
	// after it; the next read must see the stored values.
	for round := range 2 {
		var keep []func()
		read(t, s, func(tx calstore.Tx) error {
			r, err := readReturned(tx)
			if err != nil {
				return err
			}
			m := func() {
				r.u.Aliases[0] = "x"
				mutate(r.ev.Data)
				r.ev.ReplyStamps["b@x"] = time.Time{}
				r.hist[0].Summary = "x"
				mutate(r.evs[0].Data)
				r.ps[0].Actions[0] = "x"
				mutate(r.ps[0].Data)
				r.ob[0].To[0] = "x"
				mutate(r.ob[0].Body)
			}
			if round == 0 {
				m()
			} else {
				keep = append(keep, m)
			}
			return nil
		})
		for _, m := range keep {
			m()
		}
		read(t, s, func(tx calstore.Tx) error {
			r, err := readReturned(tx)
			if err != nil {
				return err
			}
			u, ev, hist, ps, ob := r.u, r.ev, r.hist, r.ps, r.ob
			if u.Aliases[0] != "al@example.test" || string(ev.Data) != "ORIGINAL" || len(ev.ReplyStamps) != 1 ||
				!ev.ReplyStamps["b@x"].Equal(t0) || len(hist) != 1 || hist[0].Summary != "first" ||
				ps[0].Actions[0] != "accept" || string(ps[0].Data) != "P" || ob[0].To[0] != "b@x" || string(ob[0].Body) != "B" {
				t.Errorf("round %d: store changed through returned or passed values: %+v %+v %+v %+v", round, u, ev, ps[0], ob[0])
			}
			return nil
		})
	}
}

// returned is what testCopiedOut reads: every kind of value a Tx
// returns.
type returned struct {
	u    calstore.User
	ev   calstore.Event
	hist []calstore.HistoryEntry
	evs  []calstore.Event
	ps   []calstore.Pending
	ob   []calstore.OutboxItem
}

func readReturned(tx calstore.Tx) (r returned, err error) {
	if r.u, err = tx.User("al@example.test"); err != nil {
		return r, err
	}
	if r.ev, err = tx.Event("alice@example.test", "u"); err != nil {
		return r, err
	}
	if r.hist, err = tx.EventHistory("alice@example.test", "u"); err != nil {
		return r, err
	}
	if r.evs, err = tx.Events("alice@example.test"); err != nil {
		return r, err
	}
	if r.ps, err = tx.PendingList("alice@example.test", false); err != nil {
		return r, err
	}
	r.ob, err = tx.Outbox()
	return r, err
}

var errTest = errors.New("test: abort")

// testUserReadAfterChange reads a user's record again and again around
// changes that commit, roll back and run in a batch: a store that keeps
// decoded records must never serve a stale one or share its slices.
func testUserReadAfterChange(t *testing.T, s calstore.Store) {
	const addr = "carol@example.test"
	write(t, s, func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: addr, Policy: "always", Aliases: []string{"c@example.test"}})
	})
	get := func() calstore.User {
		t.Helper()
		var u calstore.User
		read(t, s, func(tx calstore.Tx) error {
			var err error
			u, err = tx.User(addr)
			return err
		})
		return u
	}
	want := func(policy string, aliases ...string) {
		t.Helper()
		for range 3 { // a miss, then hits that must not see the caller's change
			u := get()
			if u.Policy != policy || !slices.Equal(u.Aliases, aliases) {
				t.Fatalf("User = policy %q aliases %v, want %q %v", u.Policy, u.Aliases, policy, aliases)
			}
			if len(u.Aliases) > 0 {
				u.Aliases[0] = "changed-by-caller@example.test"
			}
		}
	}
	want("always", "c@example.test")

	// A change read inside its own transaction, then rolled back.
	err := s.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: addr, Policy: "never"}); err != nil {
			return err
		}
		if u, err := tx.User(addr); err != nil || u.Policy != "never" {
			return fmt.Errorf("inside: %+v %v", u, err)
		}
		return errTest
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Write: %v", err)
	}
	want("always", "c@example.test")

	write(t, s, func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: addr, Policy: "known", Aliases: []string{"c@example.test", "cc@example.test"}})
	})
	want("known", "c@example.test", "cc@example.test")

	if err := s.Batch(ctx, func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: addr, Policy: "never"})
	}); err != nil {
		t.Fatalf("Batch: %v", err)
	}
	want("never")
}

func testRollback(t *testing.T, s calstore.Store) {
	populate(t, s, "alice@example.test")
	var pendingID, outboxID uint64
	err := s.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "bob@example.test", Aliases: []string{"b@example.test"}}); err != nil {
			return err
		}
		if err := tx.PutUser(calstore.User{Address: "alice@example.test", Policy: "never", Aliases: []string{"al@example.test"}}); err != nil {
			return err
		}
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "new"}); err != nil {
			return err
		}
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "ev-alice@example.test", Data: []byte("changed")}); err != nil {
			return err
		}
		if err := tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "k2"}); err != nil {
			return err
		}
		p, err := tx.AddPending(calstore.Pending{User: "alice@example.test", Kind: "held"})
		if err != nil {
			return err
		}
		pendingID = p.ID
		if err := tx.AddContact(calstore.Contact{User: "alice@example.test", Address: "new@example.org"}); err != nil {
			return err
		}
		o, err := tx.Enqueue(calstore.OutboxItem{From: "alice@example.test", To: []string{"x@example.org"}})
		if err != nil {
			return err
		}
		outboxID = o.ID
		if err := tx.DeleteUser("alice@example.test"); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errTest)
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Write: got %v, want fn's error", err)
	}
	read(t, s, func(tx calstore.Tx) error {
		_, err := tx.User("bob@example.test")
		wantErr(t, "rolled-back user", err, calstore.ErrNotFound)
		_, err = tx.User("b@example.test")
		wantErr(t, "rolled-back alias", err, calstore.ErrNotFound)
		u, err := tx.User("alice@example.test")
		if err != nil || u.Policy != "" || len(u.Aliases) != 0 {
			t.Errorf("alice after rollback: %+v, %v", u, err)
		}
		_, err = tx.User("al@example.test")
		wantErr(t, "rolled-back alias of alice", err, calstore.ErrNotFound)
		evs, err := tx.Events("alice@example.test")
		if err != nil || len(evs) != 1 || string(evs[0].Data) != "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n" {
			t.Errorf("events after rollback: %+v, %v", evs, err)
		}
		_, err = tx.LogEntry("alice@example.test", "k2")
		wantErr(t, "rolled-back log entry", err, calstore.ErrNotFound)
		_, err = tx.PendingItem("alice@example.test", pendingID)
		wantErr(t, "rolled-back pending", err, calstore.ErrNotFound)
		if ok, err := tx.IsContact("alice@example.test", "new@example.org"); ok || err != nil {
			t.Errorf("rolled-back contact: %v, %v", ok, err)
		}
		_, err = tx.OutboxItem(outboxID)
		wantErr(t, "rolled-back outbox item", err, calstore.ErrNotFound)
		l, err := tx.Log("", 0)
		if err != nil || len(l) != 1 {
			t.Errorf("log after rollback: %d entries, %v; want 1", len(l), err)
		}
		return nil
	})
	// Once-only: a duplicate found inside Write aborts it, the caller's
	// error comes back unchanged.
	err = s.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "dup"}); err != nil {
			return err
		}
		return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "k-alice@example.test"})
	})
	wantErr(t, "duplicate AddLog in Write", err, calstore.ErrExists)
	read(t, s, func(tx calstore.Tx) error {
		_, err := tx.Event("alice@example.test", "dup")
		wantErr(t, "event of aborted Write", err, calstore.ErrNotFound)
		return nil
	})
}

func testRollbackOnPanic(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	func() {
		defer func() {
			if r := recover(); r != "test panic" {
				t.Errorf("recovered %v, want the panic to pass through", r)
			}
		}()
		_ = s.Write(ctx, func(tx calstore.Tx) error {
			if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "p"}); err != nil {
				return err
			}
			panic("test panic")
		})
	}()
	read(t, s, func(tx calstore.Tx) error {
		_, err := tx.Event("alice@example.test", "p")
		wantErr(t, "event of panicked Write", err, calstore.ErrNotFound)
		return nil
	})
	// The writer lock was released.
	done := make(chan error, 1)
	go func() {
		done <- s.Write(ctx, func(tx calstore.Tx) error { return tx.PutEvent("alice@example.test", calstore.Event{UID: "q"}) })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Write after panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write after panic blocked: writer lock not released")
	}
}

func testReadOnlyTx(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	writes := []struct {
		name string
		fn   func(tx calstore.Tx) error
	}{
		{"PutUser", func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: "bob@example.test"}) }},
		{"DeleteUser", func(tx calstore.Tx) error { return tx.DeleteUser("alice@example.test") }},
		{"PutEvent", func(tx calstore.Tx) error { return tx.PutEvent("alice@example.test", calstore.Event{UID: "x"}) }},
		{"AddLog", func(tx calstore.Tx) error { return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "k"}) }},
		{"AddPending", func(tx calstore.Tx) error {
			_, err := tx.AddPending(calstore.Pending{User: "alice@example.test"})
			return err
		}},
		{"AddContact", func(tx calstore.Tx) error {
			return tx.AddContact(calstore.Contact{User: "alice@example.test", Address: "x@y"})
		}},
		{"Enqueue", func(tx calstore.Tx) error {
			_, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}})
			return err
		}},
	}
	for _, w := range writes {
		err := s.Read(ctx, w.fn)
		wantErr(t, w.name+" in Read", err, calstore.ErrReadOnly)
	}
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Users()
		if err != nil || len(l) != 1 {
			t.Errorf("after writes in Read: %d users, %v; want 1", len(l), err)
		}
		return nil
	})
}

func testTxAfterFn(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	var kept calstore.Tx
	read(t, s, func(tx calstore.Tx) error { kept = tx; return nil })
	_, err := kept.User("alice@example.test")
	wantErr(t, "Tx from Read used afterwards", err, calstore.ErrClosed)
	write(t, s, func(tx calstore.Tx) error { kept = tx; return nil })
	err = kept.PutUser(calstore.User{Address: "bob@example.test"})
	wantErr(t, "Tx from Write used afterwards", err, calstore.ErrClosed)
}

func testConcurrentWrites(t *testing.T, s calstore.Store) {
	const workers, each = 16, 20
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				err := s.Write(ctx, func(tx calstore.Tx) error {
					key := fmt.Sprintf("w%d-%d", w, i)
					if _, err := tx.LogEntry("alice@example.test", key); err == nil {
						return fmt.Errorf("key %s present before its write", key)
					}
					if err := tx.PutEvent("alice@example.test", calstore.Event{UID: key}); err != nil {
						return err
					}
					if _, err := tx.AddPending(calstore.Pending{User: "alice@example.test", UID: key}); err != nil {
						return err
					}
					return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: key})
				})
				if err != nil {
					errs <- err
				}
				// Readers alongside the writers.
				if err := s.Read(ctx, func(tx calstore.Tx) error { _, err := tx.Log("", 5); return err }); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	read(t, s, func(tx calstore.Tx) error {
		evs, err := tx.Events("alice@example.test")
		if err != nil {
			return err
		}
		log, err := tx.Log("alice@example.test", 0)
		if err != nil {
			return err
		}
		ps, err := tx.PendingList("alice@example.test", false)
		if err != nil {
			return err
		}
		if len(evs) != workers*each || len(log) != workers*each || len(ps) != workers*each {
			t.Errorf("after concurrent writes: %d events, %d log entries, %d pending; want %d each", len(evs), len(log), len(ps), workers*each)
		}
		seen := map[uint64]bool{}
		for _, p := range ps {
			if seen[p.ID] {
				t.Errorf("pending ID %d assigned twice", p.ID)
			}
			seen[p.ID] = true
		}
		return nil
	})
}

func testClosed(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	called := false
	err := s.Read(ctx, func(tx calstore.Tx) error { called = true; return nil })
	wantErr(t, "Read after Close", err, calstore.ErrClosed)
	err = s.Write(ctx, func(tx calstore.Tx) error { called = true; return nil })
	wantErr(t, "Write after Close", err, calstore.ErrClosed)
	if called {
		t.Errorf("fn called on a closed store")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testContextCancelled(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	called := false
	err := s.Read(cctx, func(tx calstore.Tx) error { called = true; return nil })
	wantErr(t, "Read with cancelled ctx", err, context.Canceled)
	err = s.Write(cctx, func(tx calstore.Tx) error { called = true; return nil })
	wantErr(t, "Write with cancelled ctx", err, context.Canceled)
	if called {
		t.Errorf("fn called with a cancelled ctx")
	}
	dctx, dcancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer dcancel()
	err = s.Write(dctx, func(tx calstore.Tx) error { return nil })
	wantErr(t, "Write past deadline", err, context.DeadlineExceeded)

	// Cancelled while fn runs: nothing is committed, ctx's error returned.
	cctx, cancel = context.WithCancel(ctx)
	err = s.Write(cctx, func(tx calstore.Tx) error {
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "late"}); err != nil {
			return err
		}
		cancel()
		return nil
	})
	wantErr(t, "Write cancelled during fn", err, context.Canceled)
	read(t, s, func(tx calstore.Tx) error {
		_, err := tx.Event("alice@example.test", "late")
		wantErr(t, "event of cancelled Write", err, calstore.ErrNotFound)
		return nil
	})
}

// testBatch: concurrent Batch calls all land, each with its once-only check
// inside (a repeated key is refused), and a lone call works.
func testBatch(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	if err := s.Batch(ctx, func(tx calstore.Tx) error {
		return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: "lone"})
	}); err != nil {
		t.Fatalf("lone Batch: %v", err)
	}
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		// Every key is delivered twice at once: exactly one of the two
		// may see it absent (the once-only check in the same transaction).
		for range 2 {
			wg.Go(func() {
				key := fmt.Sprintf("b%d", i)
				err := s.Batch(ctx, func(tx calstore.Tx) error {
					if _, err := tx.LogEntry("alice@example.test", key); err == nil {
						return calstore.ErrExists
					}
					if err := tx.PutEvent("alice@example.test", calstore.Event{UID: key}); err != nil {
						return err
					}
					return tx.AddLog(calstore.LogEntry{User: "alice@example.test", Key: key})
				})
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	ok, dup := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, calstore.ErrExists):
			dup++
		default:
			t.Error(err)
		}
	}
	if ok != n || dup != n {
		t.Fatalf("%d committed, %d refused as duplicates; want %d and %d", ok, dup, n, n)
	}
	read(t, s, func(tx calstore.Tx) error {
		evs, err := tx.Events("alice@example.test")
		if len(evs) != n {
			t.Errorf("%d events, want %d", len(evs), n)
		}
		return err
	})
}

// testBatchFailure: a failing or panicking fn leaves nothing behind and
// does not take the other calls of its group with it.
func testBatchFailure(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	boom := errors.New("boom")
	var wg sync.WaitGroup
	results := make(chan string, 30)
	for i := range 30 {
		wg.Go(func() {
			uid := fmt.Sprintf("f%d", i)
			defer func() {
				if p := recover(); p != nil {
					results <- "panic"
				}
			}()
			err := s.Batch(ctx, func(tx calstore.Tx) error {
				if err := tx.PutEvent("alice@example.test", calstore.Event{UID: uid}); err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return boom
				case 7:
					panic("fn panicked")
				}
				return nil
			})
			switch {
			case err == nil:
				results <- "ok"
			case errors.Is(err, boom):
				results <- "boom"
			default:
				results <- err.Error()
			}
		})
	}
	wg.Wait()
	close(results)
	got := map[string]int{}
	for r := range results {
		got[r]++
	}
	if got["ok"] != 24 || got["boom"] != 3 || got["panic"] != 3 {
		t.Fatalf("results %v, want 24 ok, 3 boom, 3 panic", got)
	}
	read(t, s, func(tx calstore.Tx) error {
		for i := range 30 {
			_, err := tx.Event("alice@example.test", fmt.Sprintf("f%d", i))
			want := i%10 != 3 && i%10 != 7
			if (err == nil) != want {
				t.Errorf("event f%d stored=%v, want %v", i, err == nil, want)
			}
		}
		return nil
	})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Batch(cctx, func(tx calstore.Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

// testChangeCounter: every PutEvent and DeleteEvent advances the user's
// counter by one, Event.Change records it, Changes reports puts and
// deletions after a value; users have separate counters.
func testChangeCounter(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", Aliases: []string{"al@example.test"}}, calstore.User{Address: "bob@example.test"})
	counter := func(user string) uint64 {
		t.Helper()
		var n uint64
		read(t, s, func(tx calstore.Tx) error {
			var err error
			n, err = tx.ChangeCounter(user)
			return err
		})
		return n
	}
	if n := counter("alice@example.test"); n != 0 {
		t.Fatalf("new user: counter %d, want 0", n)
	}
	write(t, s, func(tx calstore.Tx) error {
		for _, uid := range []string{"a", "b", "c"} {
			if err := tx.PutEvent("al@example.test", calstore.Event{UID: uid, Data: []byte(uid), Change: 99}); err != nil {
				return err
			}
		}
		return nil
	})
	if n := counter("al@example.test"); n != 3 {
		t.Fatalf("after 3 puts: counter %d, want 3", n)
	}
	if n := counter("bob@example.test"); n != 0 {
		t.Fatalf("other user: counter %d, want 0", n)
	}
	read(t, s, func(tx calstore.Tx) error {
		ev, err := tx.Event("alice@example.test", "b")
		if err != nil {
			return err
		}
		if ev.Change != 2 {
			t.Errorf("Event.Change = %d, want 2 (caller's value ignored)", ev.Change)
		}
		return nil
	})
	write(t, s, func(tx calstore.Tx) error {
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "a", Data: []byte("a2")}); err != nil {
			return err
		}
		return tx.DeleteEvent("alice@example.test", "c")
	})
	read(t, s, func(tx calstore.Tx) error {
		cur, changed, deleted, err := tx.Changes("alice@example.test", 3)
		if err != nil {
			return err
		}
		if cur != 5 || !slices.Equal(changed, []string{"a"}) || !slices.Equal(deleted, []string{"c"}) {
			t.Errorf("Changes(3) = %d %v %v, want 5 [a] [c]", cur, changed, deleted)
		}
		cur, changed, deleted, err = tx.Changes("alice@example.test", 0)
		if err != nil {
			return err
		}
		if cur != 5 || !slices.Equal(changed, []string{"a", "b"}) || !slices.Equal(deleted, []string{"c"}) {
			t.Errorf("Changes(0) = %d %v %v, want 5 [a b] [c]", cur, changed, deleted)
		}
		cur, changed, deleted, err = tx.Changes("alice@example.test", 5)
		if err != nil {
			return err
		}
		if cur != 5 || len(changed) != 0 || len(deleted) != 0 {
			t.Errorf("Changes(5) = %d %v %v, want nothing", cur, changed, deleted)
		}
		return nil
	})
	// Storing a deleted UID again: no longer reported as deleted.
	write(t, s, func(tx calstore.Tx) error {
		return tx.PutEvent("alice@example.test", calstore.Event{UID: "c", Data: []byte("c2")})
	})
	read(t, s, func(tx calstore.Tx) error {
		cur, changed, deleted, err := tx.Changes("alice@example.test", 4)
		if err != nil {
			return err
		}
		if cur != 6 || !slices.Equal(changed, []string{"c"}) || len(deleted) != 0 {
			t.Errorf("Changes(4) after re-put = %d %v %v, want 6 [c] []", cur, changed, deleted)
		}
		_, _, _, err = tx.Changes("nobody@example.test", 0)
		wantErr(t, "Changes of unknown user", err, calstore.ErrNotFound)
		_, err = tx.ChangeCounter("nobody@example.test")
		wantErr(t, "ChangeCounter of unknown user", err, calstore.ErrNotFound)
		return nil
	})
	// A failed write leaves the counter alone.
	err := s.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "x", Data: []byte("x")}); err != nil {
			return err
		}
		return calstore.ErrInvalid
	})
	wantErr(t, "rolled back write", err, calstore.ErrInvalid)
	if n := counter("alice@example.test"); n != 6 {
		t.Errorf("after rollback: counter %d, want 6", n)
	}
}

// testUserSecrets: the CalDAV password hash and feed hash are kept with the
// user record and replaced with it.
func testUserSecrets(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test", PasswordHash: "$2a$10$hash", FeedHash: "abcd"})
	read(t, s, func(tx calstore.Tx) error {
		u, err := tx.User("alice@example.test")
		if err != nil {
			return err
		}
		if u.PasswordHash != "$2a$10$hash" || u.FeedHash != "abcd" {
			t.Errorf("User secrets: got %q %q", u.PasswordHash, u.FeedHash)
		}
		return nil
	})
	write(t, s, func(tx calstore.Tx) error {
		u, err := tx.User("alice@example.test")
		if err != nil {
			return err
		}
		u.FeedHash = ""
		return tx.PutUser(u)
	})
	read(t, s, func(tx calstore.Tx) error {
		u, err := tx.User("alice@example.test")
		if err != nil {
			return err
		}
		if u.PasswordHash != "$2a$10$hash" || u.FeedHash != "" {
			t.Errorf("User secrets after revoke: got %q %q", u.PasswordHash, u.FeedHash)
		}
		return nil
	})
}

// testHistoryTrim: an event keeps its newest MaxHistory history entries, in
// order; another event's history (a UID that is a prefix of it) is left
// alone; DeleteEvent removes the history.
func testHistoryTrim(t *testing.T, s calstore.Store) {
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	n := calstore.MaxHistory + 7
	write(t, s, func(tx calstore.Tx) error {
		if err := tx.PutEvent("alice@example.test", calstore.Event{UID: "a", Data: []byte("A"),
			History: []calstore.HistoryEntry{{Time: t0, MessageID: "<other>"}}}); err != nil {
			return err
		}
		for i := range n {
			ev := calstore.Event{UID: "ab", Data: []byte("AB"), History: []calstore.HistoryEntry{{Time: t0, MessageID: fmt.Sprintf("<%d>", i)}}}
			if err := tx.PutEvent("alice@example.test", ev); err != nil {
				return err
			}
		}
		return nil
	})
	read(t, s, func(tx calstore.Tx) error {
		h, err := tx.EventHistory("alice@example.test", "ab")
		if err != nil {
			return err
		}
		if len(h) != calstore.MaxHistory || h[0].MessageID != fmt.Sprintf("<%d>", n-calstore.MaxHistory) || h[len(h)-1].MessageID != fmt.Sprintf("<%d>", n-1) {
			t.Errorf("history of ab: %d entries, first %+v", len(h), h[0])
		}
		if h, err := tx.EventHistory("alice@example.test", "a"); err != nil || len(h) != 1 || h[0].MessageID != "<other>" {
			t.Errorf("history of a: %+v, %v", h, err)
		}
		return nil
	})
	write(t, s, func(tx calstore.Tx) error { return tx.DeleteEvent("alice@example.test", "ab") })
	read(t, s, func(tx calstore.Tx) error {
		if h, err := tx.EventHistory("alice@example.test", "ab"); err != nil || len(h) != 0 {
			t.Errorf("history after DeleteEvent: %d entries, %v", len(h), err)
		}
		if h, _ := tx.EventHistory("alice@example.test", "a"); len(h) != 1 {
			t.Errorf("history of a after deleting ab: %d entries", len(h))
		}
		return nil
	})
}

// testOutboxQueued: the queued count follows every status change, without
// reading the items.
func testOutboxQueued(t *testing.T, s calstore.Store) {
	queued := func(want int) {
		t.Helper()
		read(t, s, func(tx calstore.Tx) error {
			n, err := tx.OutboxQueued()
			if err != nil {
				return err
			}
			if n != want {
				t.Errorf("OutboxQueued = %d, want %d", n, want)
			}
			return nil
		})
	}
	queued(0)
	var ids []uint64
	write(t, s, func(tx calstore.Tx) error {
		for range 4 {
			o, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}, Body: []byte("ICS")})
			if err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		return nil
	})
	queued(4)
	status := func(id uint64, st string) func(tx calstore.Tx) error {
		return func(tx calstore.Tx) error {
			o, err := tx.OutboxItem(id)
			if err != nil {
				return err
			}
			o.Status = st
			return tx.PutOutbox(o)
		}
	}
	write(t, s, status(ids[0], calstore.OutboxSent))
	write(t, s, status(ids[1], calstore.OutboxFailed))
	write(t, s, status(ids[2], calstore.OutboxQueued)) // queued to queued: no change
	queued(2)
	write(t, s, status(ids[1], calstore.OutboxQueued)) // retried
	queued(3)
	write(t, s, func(tx calstore.Tx) error { return tx.DeleteOutbox(ids[0]) }) // a sent one
	write(t, s, func(tx calstore.Tx) error { return tx.DeleteOutbox(ids[3]) }) // a queued one
	queued(2)
	// A rolled-back change leaves the count alone.
	err := s.Write(ctx, func(tx calstore.Tx) error {
		if _, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}}); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("Write: want the function's error")
	}
	queued(2)
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Outbox()
		n := 0
		for _, o := range l {
			if o.Status == calstore.OutboxQueued {
				n++
			}
		}
		if n != 2 {
			t.Errorf("outbox holds %d queued items, want 2", n)
		}
		return err
	})
}

// enqueueAt queues an item created at created and due at next; it
// returns its ID.
func enqueueAt(t *testing.T, s calstore.Store, created, next time.Time) uint64 {
	t.Helper()
	var id uint64
	write(t, s, func(tx calstore.Tx) error {
		o, err := tx.Enqueue(calstore.OutboxItem{From: "a@x", To: []string{"b@x"}, Body: []byte("ICS"), Created: created, NextAttempt: next})
		id = o.ID
		return err
	})
	return id
}

// changeOutbox changes a stored item with fn.
func changeOutbox(t *testing.T, s calstore.Store, id uint64, fn func(o *calstore.OutboxItem)) {
	t.Helper()
	write(t, s, func(tx calstore.Tx) error {
		o, err := tx.OutboxItem(id)
		if err != nil {
			return err
		}
		fn(&o)
		return tx.PutOutbox(o)
	})
}

// ids lists the IDs of items.
func ids(l []calstore.OutboxItem) []uint64 {
	var out []uint64
	for _, o := range l {
		out = append(out, o.ID)
	}
	return out
}

// testOutboxDue: OutboxDue answers the queued items due at a time,
// oldest first by Created (then ID), follows every change of status and
// next attempt, and OutboxNextDue the first queued item due later.
func testOutboxDue(t *testing.T, s calstore.Store) {
	due := func(at time.Time, limit int, want []uint64, next time.Time) {
		t.Helper()
		read(t, s, func(tx calstore.Tx) error {
			l, err := tx.OutboxDue(at, limit)
			if err != nil {
				return err
			}
			if got := ids(l); !slices.Equal(got, want) {
				t.Errorf("OutboxDue(%v, %d) = %v, want %v", at.Sub(t0), limit, got, want)
			}
			for _, o := range l {
				if o.Status != calstore.OutboxQueued || o.NextAttempt.After(at) || string(o.Body) != "ICS" {
					t.Errorf("OutboxDue(%v): item %+v", at.Sub(t0), o)
				}
			}
			n, err := tx.OutboxNextDue(at)
			if err != nil {
				return err
			}
			if !n.Equal(next) {
				t.Errorf("OutboxNextDue(%v) = %v, want %v", at.Sub(t0), n, next)
			}
			return nil
		})
	}
	due(t0, 0, nil, time.Time{})
	// Created out of ID order; a is due last but was created first.
	b := enqueueAt(t, s, t0.Add(2*time.Minute), t0)
	a := enqueueAt(t, s, t0.Add(time.Minute), t0.Add(10*time.Minute))
	c := enqueueAt(t, s, t0.Add(2*time.Minute), t0.Add(5*time.Minute)) // created with b: after b by ID
	d := enqueueAt(t, s, t0, t0.Add(time.Hour))

	due(t0.Add(-time.Second), 0, nil, t0)
	due(t0, 0, []uint64{b}, t0.Add(5*time.Minute)) // due at its time exactly
	due(t0.Add(5*time.Minute), 0, []uint64{b, c}, t0.Add(10*time.Minute))
	due(t0.Add(10*time.Minute), 0, []uint64{a, b, c}, t0.Add(time.Hour))
	due(t0.Add(10*time.Minute), 2, []uint64{a, b}, t0.Add(time.Hour))
	due(t0.Add(2*time.Hour), 0, []uint64{d, a, b, c}, time.Time{})

	// A claim moves the next attempt; sent, failed and deleted items are
	// never due; a failed item queued again is.
	changeOutbox(t, s, a, func(o *calstore.OutboxItem) { o.Attempts++; o.NextAttempt = t0.Add(3 * time.Hour) })
	changeOutbox(t, s, b, func(o *calstore.OutboxItem) { o.Status = calstore.OutboxSent })
	changeOutbox(t, s, c, func(o *calstore.OutboxItem) { o.Status = calstore.OutboxFailed })
	write(t, s, func(tx calstore.Tx) error { return tx.DeleteOutbox(d) })
	due(t0.Add(2*time.Hour), 0, nil, t0.Add(3*time.Hour))
	changeOutbox(t, s, c, func(o *calstore.OutboxItem) { o.Status, o.NextAttempt = calstore.OutboxQueued, t0.Add(time.Hour) })
	due(t0.Add(2*time.Hour), 0, []uint64{c}, t0.Add(3*time.Hour))
	due(t0.Add(4*time.Hour), 0, []uint64{a, c}, time.Time{})
	// A rolled-back claim leaves the item due.
	err := s.Write(ctx, func(tx calstore.Tx) error {
		l, err := tx.OutboxDue(t0.Add(4*time.Hour), 1)
		if err != nil || len(l) != 1 {
			return fmt.Errorf("claim: %v, %v", ids(l), err)
		}
		l[0].NextAttempt = t0.Add(5 * time.Hour)
		if err := tx.PutOutbox(l[0]); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatalf("Write: %v, want the function's error", err)
	}
	due(t0.Add(4*time.Hour), 0, []uint64{a, c}, time.Time{})
}

// testOutboxClaim: senders claiming at once, each in its own Write
// (OutboxDue, then the next attempt moved: the lease), claim every due
// item once, and none of the items not due.
func testOutboxClaim(t *testing.T, s calstore.Store) {
	const n, senders = 40, 4
	for i := range n {
		enqueueAt(t, s, t0.Add(time.Duration(i)*time.Second), t0)
	}
	later := enqueueAt(t, s, t0, t0.Add(time.Hour))
	var mu sync.Mutex
	claimed := map[uint64]int{}
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				var got []calstore.OutboxItem
				err := s.Write(ctx, func(tx calstore.Tx) error {
					var err error
					if got, err = tx.OutboxDue(t0.Add(time.Minute), 1); err != nil {
						return err
					}
					for _, o := range got {
						o.Attempts++
						o.NextAttempt = t0.Add(2 * time.Hour)
						if err := tx.PutOutbox(o); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, o := range got {
					claimed[o.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d items claimed, want %d", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 || id == later {
			t.Errorf("item %d claimed %d times", id, c)
		}
	}
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Outbox()
		for _, o := range l {
			if want := o.ID != later; (o.Attempts == 1) != want {
				t.Errorf("item %d: %d attempts", o.ID, o.Attempts)
			}
		}
		return err
	})
}

// testOutboxSentBefore: OutboxSentBefore lists the sent items last
// updated before a time, by their latest Updated, oldest first, and
// nothing else; deleting them (the sender's retention) takes them off.
func testOutboxSentBefore(t *testing.T, s calstore.Store) {
	mk := func(status string, updated time.Time) uint64 {
		id := enqueueAt(t, s, t0.Add(-48*time.Hour), t0)
		changeOutbox(t, s, id, func(o *calstore.OutboxItem) { o.Status, o.Updated = status, updated })
		return id
	}
	oldSent := mk(calstore.OutboxSent, t0.Add(-2*time.Hour))
	edge := mk(calstore.OutboxSent, t0.Add(-time.Hour)) // at the cut: kept
	newSent := mk(calstore.OutboxSent, t0)
	oldFailed := mk(calstore.OutboxFailed, t0.Add(-3*time.Hour))
	oldQueued := mk(calstore.OutboxQueued, t0.Add(-3*time.Hour))
	moved := mk(calstore.OutboxSent, t0.Add(-3*time.Hour))
	changeOutbox(t, s, moved, func(o *calstore.OutboxItem) { o.Updated = t0 }) // updated since
	sent := func(before time.Time, limit int, want []uint64) {
		t.Helper()
		read(t, s, func(tx calstore.Tx) error {
			got, err := tx.OutboxSentBefore(before, limit)
			if !slices.Equal(got, want) {
				t.Errorf("OutboxSentBefore(%v, %d) = %v, want %v", before.Sub(t0), limit, got, want)
			}
			return err
		})
	}
	prune := func(before time.Time, left []uint64) {
		t.Helper()
		var l []uint64
		read(t, s, func(tx calstore.Tx) error {
			var err error
			l, err = tx.OutboxSentBefore(before, 0)
			return err
		})
		write(t, s, func(tx calstore.Tx) error {
			for _, id := range l {
				if err := tx.DeleteOutbox(id); err != nil {
					return err
				}
			}
			return nil
		})
		read(t, s, func(tx calstore.Tx) error {
			l, err := tx.Outbox()
			if got := ids(l); !slices.Equal(got, left) {
				t.Errorf("after deleting the items sent before %v: %v, want %v", before.Sub(t0), got, left)
			}
			return err
		})
	}
	sent(t0.Add(-3*time.Hour), 0, nil)
	sent(t0.Add(-time.Hour), 0, []uint64{oldSent})
	sent(t0.Add(time.Second), 0, []uint64{oldSent, edge, newSent, moved})
	sent(t0.Add(time.Second), 2, []uint64{oldSent, edge})
	prune(t0.Add(-time.Hour), []uint64{edge, newSent, oldFailed, oldQueued, moved})
	sent(t0.Add(-time.Hour), 0, nil)
	prune(t0.Add(time.Second), []uint64{oldFailed, oldQueued})
	sent(t0.Add(time.Hour), 0, nil)
	read(t, s, func(tx calstore.Tx) error {
		n, err := tx.OutboxQueued()
		if n != 1 {
			t.Errorf("OutboxQueued after pruning = %d, want 1", n)
		}
		return err
	})
}

// take spends one use of key in its own transaction.
func take(t *testing.T, s calstore.Store, key string, at time.Time, window time.Duration, limit int) bool {
	t.Helper()
	var ok bool
	write(t, s, func(tx calstore.Tx) error {
		var err error
		ok, err = tx.TakeBudget(key, at, window, limit)
		return err
	})
	return ok
}

func used(t *testing.T, s calstore.Store, key string, at time.Time) int {
	t.Helper()
	var n int
	read(t, s, func(tx calstore.Tx) error {
		var err error
		n, err = tx.BudgetUsed(key, at)
		return err
	})
	return n
}

// testBudget: a budget counts uses per key over a sliding window, across
// transactions and whatever user the caller acts for.
func testBudget(t *testing.T, s calstore.Store) {
	const dave, carol = "auto-send\x00dave@remote.test", "auto-send\x00carol@remote.test"
	var got []bool
	for i := range 4 {
		got = append(got, take(t, s, dave, t0.Add(time.Duration(i)*time.Minute), time.Hour, 3))
	}
	if want := []bool{true, true, true, false}; !slices.Equal(got, want) {
		t.Errorf("four uses of a budget of 3: got %v, want %v", got, want)
	}
	if n := used(t, s, dave, t0.Add(5*time.Minute)); n != 3 {
		t.Errorf("BudgetUsed = %d, want 3", n)
	}
	// Another key has its own budget; a key that is a prefix of another
	// shares nothing with it.
	if !take(t, s, carol, t0.Add(5*time.Minute), time.Hour, 3) {
		t.Error("carol's budget spent by dave's uses")
	}
	if n := used(t, s, "auto-send\x00dave", t0.Add(5*time.Minute)); n != 0 {
		t.Errorf("prefix key: BudgetUsed = %d, want 0", n)
	}
	// Several uses in one transaction count against each other.
	write(t, s, func(tx calstore.Tx) error {
		for i, want := range []bool{true, true, false} {
			ok, err := tx.TakeBudget("k2", t0, time.Hour, 2)
			if err != nil {
				return err
			}
			if ok != want {
				t.Errorf("use %d in one transaction: got %v, want %v", i, ok, want)
			}
		}
		return nil
	})
	// A rolled-back use is not spent.
	err := s.Write(ctx, func(tx calstore.Tx) error {
		if _, err := tx.TakeBudget("k3", t0, time.Hour, 1); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("Write: want the function's error")
	}
	if !take(t, s, "k3", t0, time.Hour, 1) {
		t.Error("a rolled-back use was kept")
	}
	// The window slides: the first use expires an hour after it was taken
	// (at t0+1h), the second a minute later.
	if take(t, s, dave, t0.Add(time.Hour-time.Nanosecond), time.Hour, 3) {
		t.Error("a use live until t0+1h did not count just before")
	}
	if !take(t, s, dave, t0.Add(time.Hour), time.Hour, 3) {
		t.Error("a use expired at t0+1h still counted")
	}
	if take(t, s, dave, t0.Add(time.Hour), time.Hour, 3) {
		t.Error("second take at t0+1h: only one use had expired")
	}
	// Deleting a user does not reset a budget: budgets are global.
	addUsers(t, s, calstore.User{Address: "alice@example.test"})
	write(t, s, func(tx calstore.Tx) error { return tx.DeleteUser("alice@example.test") })
	if n := used(t, s, dave, t0.Add(time.Hour)); n != 3 {
		t.Errorf("after DeleteUser: BudgetUsed = %d, want 3", n)
	}
	// limit <= 0 never spends.
	if take(t, s, "k4", t0, time.Hour, 0) || used(t, s, "k4", t0) != 0 {
		t.Error("limit 0 spent a use")
	}
}

// testBudgetPrune: expired uses of every key go when any budget is taken;
// live ones stay.
func testBudgetPrune(t *testing.T, s calstore.Store) {
	for i := range 50 {
		take(t, s, fmt.Sprint("old", i), t0, time.Minute, 1)
	}
	take(t, s, "live", t0, 24*time.Hour, 1)
	if n := used(t, s, "old7", t0.Add(30*time.Second)); n != 1 {
		t.Fatalf("BudgetUsed before expiry = %d, want 1", n)
	}
	// A read after expiry does not count expired uses, pruned or not.
	if n := used(t, s, "old7", t0.Add(time.Minute)); n != 0 {
		t.Errorf("BudgetUsed at expiry = %d, want 0", n)
	}
	// Taking another key prunes them: the same key can be taken again
	// with limit 1, and the long-lived use is still there.
	if !take(t, s, "other", t0.Add(2*time.Minute), time.Minute, 1) {
		t.Fatal("take after expiry refused")
	}
	for i := range 50 {
		if !take(t, s, fmt.Sprint("old", i), t0.Add(2*time.Minute), time.Minute, 1) {
			t.Fatalf("old%d: expired use still counted", i)
		}
	}
	if take(t, s, "live", t0.Add(2*time.Minute), 24*time.Hour, 1) {
		t.Error("pruning dropped a live use")
	}
}

func testBudgetInvalid(t *testing.T, s calstore.Store) {
	cases := []struct {
		name string
		fn   func(tx calstore.Tx) error
		want error
	}{
		{"empty key", func(tx calstore.Tx) error { _, err := tx.TakeBudget("", t0, time.Hour, 1); return err }, calstore.ErrInvalid},
		{"long key", func(tx calstore.Tx) error {
			_, err := tx.TakeBudget(strings.Repeat("k", calstore.MaxBudgetKeyLen+1), t0, time.Hour, 1)
			return err
		}, calstore.ErrInvalid},
		{"zero window", func(tx calstore.Tx) error { _, err := tx.TakeBudget("k", t0, 0, 1); return err }, calstore.ErrInvalid},
		{"long key read", func(tx calstore.Tx) error {
			_, err := tx.BudgetUsed(strings.Repeat("k", calstore.MaxBudgetKeyLen+1), t0)
			return err
		}, calstore.ErrInvalid},
	}
	for _, c := range cases {
		wantErr(t, c.name, s.Write(ctx, c.fn), c.want)
	}
	if !take(t, s, strings.Repeat("k", calstore.MaxBudgetKeyLen), t0, time.Hour, 1) {
		t.Error("a key of MaxBudgetKeyLen bytes refused")
	}
	read(t, s, func(tx calstore.Tx) error {
		_, err := tx.TakeBudget("k", t0, time.Hour, 1)
		wantErr(t, "TakeBudget in Read", err, calstore.ErrReadOnly)
		return nil
	})
}

// testDowntimes: the catch-up record. Alive and the downtime list start
// empty, round-trip, clear, refuse a stretch that ends before it starts,
// and keep at most MaxDowntimes by merging the oldest (still covering them).
func testDowntimes(t *testing.T, s calstore.Store) {
	read(t, s, func(tx calstore.Tx) error {
		at, err := tx.Alive()
		if err != nil || !at.IsZero() {
			t.Errorf("Alive on a new store = %v, %v; want zero", at, err)
		}
		l, err := tx.Downtimes()
		if err != nil || len(l) != 0 {
			t.Errorf("Downtimes on a new store = %v, %v; want none", l, err)
		}
		return nil
	})
	d := calstore.Downtime{From: t0, To: t0.Add(time.Hour)}
	write(t, s, func(tx calstore.Tx) error {
		if err := tx.SetAlive(t0.Add(time.Minute)); err != nil {
			return err
		}
		wantErr(t, "PutDowntimes backwards", tx.PutDowntimes([]calstore.Downtime{{From: d.To, To: d.From}}), calstore.ErrInvalid)
		return tx.PutDowntimes([]calstore.Downtime{d})
	})
	read(t, s, func(tx calstore.Tx) error {
		if at, err := tx.Alive(); err != nil || !at.Equal(t0.Add(time.Minute)) {
			t.Errorf("Alive = %v, %v; want %v", at, err, t0.Add(time.Minute))
		}
		if l, err := tx.Downtimes(); err != nil || len(l) != 1 || !l[0].From.Equal(d.From) || !l[0].To.Equal(d.To) {
			t.Errorf("Downtimes = %v, %v; want [%v]", l, err, d)
		}
		return nil
	})
	var many []calstore.Downtime
	for i := range calstore.MaxDowntimes + 3 {
		at := t0.Add(time.Duration(i) * time.Hour)
		many = append(many, calstore.Downtime{From: at, To: at.Add(time.Minute)})
	}
	write(t, s, func(tx calstore.Tx) error { return tx.PutDowntimes(many) })
	read(t, s, func(tx calstore.Tx) error {
		l, err := tx.Downtimes()
		if err != nil || len(l) != calstore.MaxDowntimes {
			t.Fatalf("Downtimes after %d: %d, %v; want %d", len(many), len(l), err, calstore.MaxDowntimes)
		}
		if !l[0].From.Equal(many[0].From) || !l[0].To.Equal(many[3].To) || !l[len(l)-1].To.Equal(many[len(many)-1].To) {
			t.Errorf("merged: first %v, last %v; want the first to span %v..%v", l[0], l[len(l)-1], many[0].From, many[3].To)
		}
		return nil
	})
	write(t, s, func(tx calstore.Tx) error { return tx.PutDowntimes(nil) })
	read(t, s, func(tx calstore.Tx) error {
		if l, err := tx.Downtimes(); err != nil || len(l) != 0 {
			t.Errorf("Downtimes after clearing = %v, %v", l, err)
		}
		return nil
	})
}
