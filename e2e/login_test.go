//go:build e2e

package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Issue 13, attack 4: alice logs in on the submission service and sends
// with MAIL FROM and From bob, cancelling the meeting Bob organizes.
// contrib's submission service refuses it (smtpd_sender_login_maps,
// reject_sender_login_mismatch); on a submission service without that
// check, imipd still does not take it for Bob's own mail: Bob's copy stays
// as it was.
func TestSenderLogin(t *testing.T) {
	needImipd(t)
	bob, alice, carol := "bob@example.test", "alice@example.test", "carol@example.test"
	uid := unique("login") + "@example.test"
	inv := request(uid, bob, []string{carol}, carol)
	if err := submitAuth(E.mx, bob, []string{carol}, inv.bytes()); err != nil {
		t.Fatalf("submission as bob: %v", err)
	}
	waitMail(t, carol, inv.mid)
	deadline := time.Now().Add(deliveryWait)
	var before *eventJSON
	for before = findEvent(events(t, bob), uid); before == nil; before = findEvent(events(t, bob), uid) {
		if time.Now().After(deadline) {
			t.Fatalf("Bob's own copy of %s was not recorded from his submission", uid)
		}
		time.Sleep(100 * time.Millisecond)
	}

	cancel := inv
	cancel.method, cancel.sequence, cancel.mid = "CANCEL", 1, unique("forged-cancel")+"@example.test"

	t.Run("postfix-refuses", func(t *testing.T) {
		err := submitAs(E.mx.submission, alice, bob, []string{carol}, cancel.bytes())
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 553 || !strings.Contains(se.Message, "not owned by user") {
			t.Fatalf("alice sending as bob on contrib's submission service: %v, want 553 ... not owned by user", err)
		}
	})

	t.Run("imipd-holds", func(t *testing.T) {
		if err := submitAs(E.mx.noLoginCheck, alice, bob, []string{carol}, cancel.bytes()); err != nil {
			t.Fatalf("submission without the login check: %v", err)
		}
		waitMail(t, carol, cancel.mid) // the CANCEL was processed (carol's copy)
		after := findEvent(events(t, bob), uid)
		if after == nil || after.Status != before.Status || after.Sequence != before.Sequence {
			t.Fatalf("alice's login changed Bob's meeting: before %+v, after %+v", before, after)
		}
	})
}
