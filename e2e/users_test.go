//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestSubaddresses is issue 13's attack 11 with the real MTAs: Postfix
// (recipient_delimiter = +) and Dovecot accept bob+<anything>@example.test
// for bob, and one invitation to many of them made a user of each. Through
// the milter and through the LMTP proxy they are all Bob now: no new user,
// one event in Bob's calendar, every copy in Bob's Maildir tagged alike.
func TestSubaddresses(t *testing.T) {
	needImipd(t)
	imipctl(t, "contacts", "add", "bob@example.test", "org-sub@remote.test")
	for _, p := range []*postfix{E.mx, E.lp} {
		t.Run(p.name, func(t *testing.T) {
			org := "org-sub@remote.test"
			uid := unique("sub") + "@remote.test"
			var rcpts []string
			for range 20 {
				rcpts = append(rcpts, unique("bob+")+"@example.test")
			}
			msg := request(uid, org, rcpts, rcpts...)
			mustSend(t, p, org, rcpts, msg.bytes())
			var copies [][]byte
			for deadline := time.Now().Add(deliveryWait); len(copies) < len(rcpts); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d copies in bob's Maildir after %v", len(copies), len(rcpts), deliveryWait)
				}
				copies = findMail("bob@example.test", msg.mid)
			}
			want := ""
			for _, c := range copies {
				i := strings.Index(string(c), hdr+": ")
				if i < 0 {
					t.Fatalf("a copy without %s:\n%s", hdr, c)
				}
				v, _, _ := strings.Cut(string(c[i+len(hdr)+2:]), "\n")
				if want == "" {
					want = v
				}
				if v != want || v != "needs-action; method=REQUEST; uid="+uid+"; reason=invitation" {
					t.Fatalf("copy tagged %q, another %q; want needs-action for Bob's invitation, the same on every copy", v, want)
				}
			}
			var users []struct {
				Address string `json:"address"`
			}
			if out := imipctl(t, "users", "-json"); json.Unmarshal(out, &users) != nil {
				t.Fatalf("imipctl users -json:\n%s", out)
			}
			for _, u := range users {
				if strings.Contains(u.Address, "+") {
					t.Errorf("user %s made from a subaddress", u.Address)
				}
			}
			if findEvent(events(t, "bob@example.test"), uid) == nil {
				t.Errorf("no event %s for bob", uid)
			}
			t.Logf("%d copies, all %q; %d users", len(copies), want, len(users))
		})
	}
}
