package filter_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"imipd/calstore"
	"imipd/filter"
	"imipd/itip"
)

const bobAddr = "bob@example.test"

// TestRespondToNowInvalid: a pending invitation kept before a stricter
// intake rule (here: no DTSTART, itip/validate.go) can no longer be
// answered, but the user can still dismiss it.
func TestRespondToNowInvalid(t *testing.T) {
	p, db := newProc(t)
	ics := fmt.Sprintf(plainInvite, "old-1@remote.test", "20261201T090000Z", "20261201T100000Z", "Old")
	if r := process(t, p, mail("Alice <alice@remote.test>", bobAddr, "old-1@remote.test", "REQUEST", ics),
		filter.Delivery{MailFrom: "alice@remote.test", Rcpts: []string{bobAddr}}); r.Outcome != itip.NeedsAction {
		t.Fatalf("invitation: %s %s", r.Outcome, r.Reason)
	}
	var id uint64
	err := db.Write(context.Background(), func(tx calstore.Tx) error {
		l, err := tx.PendingList(bobAddr, true)
		if err != nil || len(l) != 1 {
			return fmt.Errorf("pending %v: %w", l, err)
		}
		id = l[0].ID
		l[0].Data = []byte(strings.Replace(string(l[0].Data), "DTSTART:20261201T090000Z\r\n", "", 1))
		return tx.PutPending(l[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Respond(context.Background(), filter.RespondRequest{User: bobAddr, Pending: id, Action: "accept"}); !errors.Is(err, itip.ErrInvalid) {
		t.Fatalf("accepting an invitation without DTSTART: %v, want itip.ErrInvalid", err)
	}
	res, err := p.Respond(context.Background(), filter.RespondRequest{User: bobAddr, Pending: id, Action: "ignore"})
	if err != nil || res.Result.Outcome != itip.Ignored {
		t.Fatalf("ignoring it: %+v %v", res.Result, err)
	}
	db.Read(context.Background(), func(tx calstore.Tx) error {
		if pi, err := tx.PendingItem(bobAddr, id); err != nil || pi.Status != calstore.PendingDone {
			t.Errorf("pending item after ignore: %+v %v", pi, err)
		}
		return nil
	})
}
