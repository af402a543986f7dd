package filter_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"imipd/calstore"
	"imipd/filter"
)

// moved is the invitation of outgoing_test.go's invite, moved by its
// organizer (SEQUENCE 1) from 09:00–10:00 to 14:00–15:00 UTC.
const moved = `BEGIN:VCALENDAR
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:%s
SEQUENCE:1
DTSTAMP:20261125T113000Z
DTSTART:20261201T140000Z
DTEND:20261201T150000Z
SUMMARY:Review
ORGANIZER:mailto:%s
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:%s
END:VEVENT
END:VCALENDAR
`

// TestPendingStaysCurrent: an update that moves an invitation the user has
// not answered yet closes the open item as superseded and opens a new one
// describing the new time, with the new message (issue 14, item 2). The
// old item can no longer be answered; the new one answers with the new
// time. An invitation the user already decided on or ignored is not asked
// again by an update that does not reschedule the user's answer.
func TestPendingStaysCurrent(t *testing.T) {
	ctx := context.Background()
	brief := func(l []calstore.Pending) string {
		var b strings.Builder
		for _, p := range l {
			fmt.Fprintf(&b, "\n#%d %s %s/%s %s: %s", p.ID, p.Kind, p.Status, p.Resolution, p.MessageID, p.Summary)
		}
		return b.String()
	}
	pending := func(db *calstore.DB, user string) (open, all []calstore.Pending) {
		t.Helper()
		db.Read(ctx, func(tx calstore.Tx) error {
			open, _ = tx.PendingList(user, true)
			all, _ = tx.PendingList(user, false)
			return nil
		})
		return open, all
	}
	for _, c := range []struct {
		name  string
		first string // "": leave the invitation open; else respond with this action
	}{{"open", ""}, {"ignored", "ignore"}} {
		t.Run(c.name, func(t *testing.T) {
			p, db := newProc(t)
			const bob, uid = "bob@example.test", "moved-1@remote.test"
			db.Write(ctx, func(tx calstore.Tx) error { return tx.PutUser(calstore.User{Address: bob, Policy: "always"}) })
			env := filter.Delivery{Rcpts: []string{bob}}
			if r := process(t, p, mail("carol@remote.test", bob, "inv-1@remote.test", "REQUEST", fmt.Sprintf(invite, uid, "", "carol@remote.test", bob)), env); r.Reason != "invitation" {
				t.Fatalf("invitation: %+v", r)
			}
			open, _ := pending(db, bob)
			if len(open) != 1 || !strings.Contains(open[0].Summary, "09:00–10:00") {
				t.Fatalf("first item: %s", brief(open))
			}
			old := open[0]
			if c.first != "" {
				if _, err := p.Respond(ctx, filter.RespondRequest{User: bob, Pending: old.ID, Action: c.first}); err != nil {
					t.Fatal(err)
				}
			}
			r := process(t, p, mail("carol@remote.test", bob, "upd-1@remote.test", "REQUEST", fmt.Sprintf(moved, uid, "carol@remote.test", bob)), env)
			if r.Outcome != "applied" || r.Reason != "updated" {
				t.Fatalf("update: %+v", r)
			}
			open, all := pending(db, bob)
			if c.first != "" {
				if len(open) != 0 {
					t.Fatalf("a decided invitation was asked again: %s", brief(open))
				}
				return
			}
			if len(open) != 1 || len(all) != 2 {
				t.Fatalf("open:%s\nall:%s", brief(open), brief(all))
			}
			now := open[0]
			if now.ID == old.ID || now.Kind != "invitation" || now.MessageID != "upd-1@remote.test" ||
				!strings.Contains(now.Summary, "on Tue 1 Dec 2026, 14:00–15:00 (UTC)") || strings.Contains(now.Summary, "09:00") {
				t.Errorf("the open item does not describe the event as it is now: %s", brief(open))
			}
			if all[0].ID != old.ID || all[0].Status != calstore.PendingObsolete || all[0].Resolution != "superseded" {
				t.Errorf("old item: %s", brief(all[:1]))
			}
			if _, err := p.Respond(ctx, filter.RespondRequest{User: bob, Pending: old.ID, Action: "accept"}); !errors.Is(err, filter.ErrNotOpen) {
				t.Errorf("answering the superseded item: %v, want ErrNotOpen", err)
			}
			if _, err := p.Respond(ctx, filter.RespondRequest{User: bob, Pending: now.ID, Action: "accept"}); err != nil {
				t.Fatal(err)
			}
			var items []calstore.OutboxItem
			db.Read(ctx, func(tx calstore.Tx) error { items, _ = tx.Outbox(); return nil })
			if len(items) != 1 || !strings.Contains(string(items[0].Body), "DTSTART:20261201T140000Z") || !strings.Contains(string(items[0].Body), "SEQUENCE:1") {
				t.Fatalf("the REPLY is not about the new time: %+v", items)
			}
			// Delivered again (once-only): nothing changes.
			process(t, p, mail("carol@remote.test", bob, "upd-1@remote.test", "REQUEST", fmt.Sprintf(moved, uid, "carol@remote.test", bob)), env)
			if open, all := pending(db, bob); len(open) != 0 || len(all) != 2 {
				t.Errorf("after a repeated delivery: open:%s\nall:%s", brief(open), brief(all))
			}
		})
	}
}
