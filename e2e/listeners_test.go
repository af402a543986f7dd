//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"regexp"
	"testing"
	"time"
)

// Issue 13, attack 14: Authentication-Results with the trusted
// authserv-id are believed only from the MTA that strips incoming copies.
// A real Postfix that is not one of imipd's LMTP peers (its LMTP client
// bound to 127.0.0.2; contrib's peers are 127.0.0.1 and ::1) delivers a
// message carrying a forged "dmarc=pass" with the trusted id: imipd closes
// the connection at accept with a log line, Postfix defers, and nothing is
// delivered or processed.
func TestLMTPNonPeer(t *testing.T) {
	needImipd(t)
	org := "org-np@remote.test"
	uid := unique("nonpeer") + "@remote.test"
	msg := request(uid, org, []string{nonPeerRcpt}, nonPeerRcpt)
	msg.extra = []string{"Authentication-Results: mx.example.test; dmarc=pass header.from=remote.test; dkim=pass header.d=remote.test"}
	mustSend(t, E.lp, org, []string{nonPeerRcpt}, msg.bytes())
	id := queueID(t, E.lp, msg.mid)
	t.Cleanup(func() { runCmd(10*time.Second, "postsuper", "-c", E.lp.dir, "-d", id) })
	waitLog(t, E.lp, regexp.MustCompile(id+`: to=<`+regexp.QuoteMeta(nonPeerRcpt)+`>.*status=deferred`))
	deadline := time.Now().Add(deliveryWait)
	for {
		b, _ := os.ReadFile(E.imipdLog())
		if bytes.Contains(b, []byte("peer not allowed")) && bytes.Contains(b, []byte("127.0.0.2")) {
			if bytes.Contains(b, []byte(msg.mid)) {
				t.Errorf("imipd processed the message from a non-peer:\n%s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("imipd logged no refused peer 127.0.0.2")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
