package lmtp_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"imipd/filter"
	"imipd/filter/lmtp"
	"imipd/internal/filtertest"
)

const hdr = "X-IMIP-Processed"

// TestLMTPSubaddressFlood is issue 13's attack 11 through the LMTP proxy:
// one invitation to 500 bob+<random>@example.test (Dovecot's default
// recipient_delimiter accepts them all) made 500 users with a pending
// item each and grew the store from 4 MiB to 327 MiB. Now they are all
// Bob: one user, one event, one pending item, every copy tagged alike.
func TestLMTPSubaddressFlood(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.setUsers(t, map[string]string{"bob@example.test": "always"}, nil)
	before := readState(t, e.db)
	rcpts := hostileRcpts(rand.New(rand.NewPCG(1, 11)), "bob+", 500)
	d := lmtpDeliver(t, e.addr, "mallory@remote.test", rcpts, flood("flood-1@remote.test", rcpts))
	if d.err != nil || len(d.rcptErr) > 0 || len(d.failed) > 0 || len(d.ok) != len(rcpts) {
		t.Fatalf("delivery: err %v, %d refused, %d failed, %d ok", d.err, len(d.rcptErr), len(d.failed), len(d.ok))
	}
	after := readState(t, e.db)
	if strings.Join(after.Users, " ") != "bob@example.test" {
		t.Errorf("users after the flood: %d (%.3q...), want only bob", len(after.Users), after.Users[:min(3, len(after.Users))])
	}
	if after.Events["bob@example.test"] != 1 || after.Opened["bob@example.test"] != 1 {
		t.Errorf("bob: %d events, %d open pending items, want 1 and 1", after.Events["bob@example.test"], after.Opened["bob@example.test"])
	}
	// The object itself (500 attendees, ~40 KiB) is kept as the event and
	// as the pending invitation; the flood made 500 of each.
	t.Logf("500 subaddresses: %d users, store %d -> %d bytes", len(after.Users), before.Size, after.Size)
	if grew := after.Size - before.Size; grew > 4<<20 {
		t.Errorf("store grew by %d bytes, want under 4 MiB", grew)
	}
	txns := e.ds.transactions()
	if len(txns) != 1 {
		t.Fatalf("%d downstream transactions, want one copy for all of Bob's addresses", len(txns))
	}
	if got := lmtpHeader(t, txns[0].Data, hdr); len(got) != 1 || got[0] != "needs-action; method=REQUEST; uid=flood-1@remote.test; reason=invitation" {
		t.Errorf("header %q", got)
	}
}

// TestLMTPRandomLocalRecipients: 1,000 random recipients at a local domain
// made 1,000 users. Under create = auto the message makes at most
// new_users_per_message users, and the hour at most new_users_per_hour;
// under listed none. Everyone turned away gets ignored with its reason and
// nothing stored.
func TestLMTPRandomLocalRecipients(t *testing.T) {
	for _, c := range []struct {
		create, reason string
		perMessage     int
	}{
		{filter.CreateAuto, "user-limit", filter.DefaultNewUsersPerMessage},
		{filter.CreateListed, "unknown-user", 0},
	} {
		t.Run(c.create, func(t *testing.T) {
			e := newLMTPEnvWith(t, lmtp.Options{}, func(cfg *filter.Config) { cfg.CreateUsers = c.create })
			r := rand.New(rand.NewPCG(2, 11))
			created := 0
			for i := range 7 { // 7 × 1,000 recipients, within the hour
				rcpts := hostileRcpts(r, "", 1000)
				uid := fmt.Sprintf("random-%d@remote.test", i)
				d := lmtpDeliver(t, e.addr, "mallory@remote.test", rcpts, strings.ReplaceAll(request(uid, uid, 0, rcpts[:1]), "\r\n", "\n"))
				if d.err != nil || len(d.ok) != len(rcpts) {
					t.Fatalf("delivery %d: err %v, %d ok", i, d.err, len(d.ok))
				}
				st := readState(t, e.db)
				if n := len(st.Users) - created; n > c.perMessage {
					t.Fatalf("message %d made %d users, want at most %d", i, n, c.perMessage)
				}
				created = len(st.Users)
			}
			want := min(7*c.perMessage, filter.DefaultNewUsersPerHour)
			if created != want {
				t.Errorf("%d users after 7,000 recipients, want %d", created, want)
			}
			ignored := 0
			for _, tx := range e.ds.transactions() {
				for _, v := range lmtpHeader(t, tx.Data, hdr) {
					if strings.HasPrefix(v, "ignored;") && strings.HasSuffix(v, "; reason="+c.reason) {
						ignored += len(tx.Rcpts)
					}
				}
			}
			if ignored != 7000-created {
				t.Errorf("%d copies tagged ignored; reason=%s, want %d", ignored, c.reason, 7000-created)
			}
		})
	}
}

// TestLMTPVerifiedRecipients: under create = auto only a recipient the
// downstream server accepted can become a user, because the proxy passes
// RCPT on before it processes anything (SECURITY.md "What imipd trusts").
func TestLMTPVerifiedRecipients(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.ds.rejectRcpt["nobody@example.test"] = true
	rcpts := []string{"nobody@example.test", "carol@example.test"}
	d := lmtpDeliver(t, e.addr, "alice@remote.test", rcpts, flood("verified-1@remote.test", rcpts))
	if d.rcptErr["nobody@example.test"] == nil || len(d.ok) != 1 {
		t.Fatalf("delivery: refused %v, ok %d", d.rcptErr, len(d.ok))
	}
	if st := readState(t, e.db); strings.Join(st.Users, " ") != "carol@example.test" {
		t.Errorf("users %v, want carol only", st.Users)
	}
}

// Fixtures shared with the other packages' tests (internal/filtertest).
var (
	hostileRcpts = filtertest.HostileRcpts
	flood        = filtertest.Flood
	readState    = filtertest.ReadState
	request      = filtertest.Request
)
