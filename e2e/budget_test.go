//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestAutoMailBudgetSink: issue 13, attacks 2 and 3, against the running
// imipd with contrib's configuration (auto_send_limit = 3), real mail
// through Postfix and what imipd sends observed at smtp-sink.
//
//   - Five REFRESHes from one attendee, over two of alice's events: three
//     are answered, the others are ignored with send-budget, and the sink
//     gets three answers in all (the budget is per target address, not per
//     event or sender).
//   - Six ADDs from an organizer both recipients know, for an event neither
//     has, each to alice and bob: each user asks once (refresh-sent), then
//     refresh-asked; the sink gets two REFRESHes, not twelve.
//
// The attendee and the organizer here appear in no other test, so the
// budgets they spend are their own.
func TestAutoMailBudgetSink(t *testing.T) {
	sink := startSinkImipd(t)
	const erin, frank, bob = "erin@remote.test", "frank@remote.test", "bob@example.test"
	uidA, _ := actOrganize(t, "budget-a", erin)
	uidB, _ := actOrganize(t, "budget-b", erin)
	actDumpOnFailure(t, sink, actAlice, uidA)
	var got []string
	for _, uid := range []string{uidA, uidB, uidA, uidB, uidA} {
		h := actInbound(t, actAlice, actRefresh(uid, erin))
		got = append(got, h)
	}
	for i, h := range got {
		want := "reason=refresh-answered"
		if i >= 3 {
			want = "reason=send-budget"
		}
		if !strings.Contains(h, want) {
			t.Errorf("REFRESH %d from erin: %s %q, want %s", i+1, hdr, h, want)
		}
	}
	for _, m := range waitSunk(t, sink, uidA, 2) {
		checkSentIMIP(t, m, "REQUEST", true)
	}
	waitSunk(t, sink, uidB, 1)

	for _, u := range []string{actAlice, bob} {
		imipctl(t, "contacts", "add", u, frank)
	}
	uid := unique("budget-add") + "@remote.test"
	for i := range 6 {
		add := itipMessage{method: "ADD", uid: uid, sequence: 1, organizer: frank, from: frank, to: actAlice + ", " + bob,
			mid: unique("add") + "@remote.test", attendees: []attendee{{actAlice, "NEEDS-ACTION"}, {bob, "NEEDS-ACTION"}}}
		mustSend(t, E.mx, frank, []string{actAlice, bob}, add.bytes())
		want := "reason=refresh-asked"
		if i == 0 {
			want = "reason=refresh-sent"
		}
		for _, rcpt := range []string{actAlice, bob} {
			if h := oneHeader(t, waitMail(t, rcpt, add.mid)); !strings.Contains(h, want) {
				t.Errorf("ADD %d to %s: %s %q, want %s", i+1, rcpt, hdr, h, want)
			}
		}
	}
	for _, m := range waitSunk(t, sink, uid, 2) {
		if r := sinkRcpts(m); len(r) != 1 || r[0] != frank || m.header.Get("Auto-Submitted") != "auto-replied" {
			t.Errorf("REFRESH to %v (Auto-Submitted %q), want to %s, automatic", r, m.header.Get("Auto-Submitted"), frank)
		}
	}
}
