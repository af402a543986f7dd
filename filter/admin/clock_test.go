package admin

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"imipd/calstore"
)

// TestCommandsUseProcessorClock: the times commands record (a user's
// creation, an outbox item requeued now) come from the Processor's clock,
// not the wall clock.
func TestCommandsUseProcessorClock(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	env, db := scanEnv(t, t.TempDir(), now)
	var out bytes.Buffer
	env.Out = &out
	ctx := context.Background()
	if err := Run(ctx, env, []string{"user", "add", "bob@example.test"}); err != nil {
		t.Fatal(err)
	}
	var it calstore.OutboxItem
	if err := db.Write(ctx, func(tx calstore.Tx) error {
		var err error
		it, err = tx.Enqueue(calstore.OutboxItem{User: "bob@example.test", From: "bob@example.test", To: []string{"alice@remote.test"},
			Method: "REPLY", UID: "clock@example.test", Body: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")})
		if err != nil {
			return err
		}
		it.Status, it.LastError = calstore.OutboxFailed, "RCPT: 550 no"
		return tx.PutOutbox(it)
	}); err != nil {
		t.Fatal(err)
	}
	if err := Run(ctx, env, []string{"outbox", "retry", strconv.FormatUint(it.ID, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Read(ctx, func(tx calstore.Tx) error {
		u, err := tx.User("bob@example.test")
		if err != nil {
			return err
		}
		if !u.Created.Equal(now) {
			t.Errorf("user created %v, want the clock's %v", u.Created, now)
		}
		got, err := tx.OutboxItem(it.ID)
		if err != nil {
			return err
		}
		if got.Status != calstore.OutboxQueued || !got.NextAttempt.Equal(now) {
			t.Errorf("retried item: %s, next attempt %v, want queued at the clock's %v", got.Status, got.NextAttempt, now)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
