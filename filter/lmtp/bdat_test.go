package lmtp_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"imipd/filter/lmtp"
)

// TestLMTPTruncatedBDAT: a BDAT LAST chunk shorter than announced, followed
// by the end of the connection, is a failed transaction (issue 13, attack
// 15a): nothing goes downstream, no recipient gets 2xx, and the calendar is
// unchanged. The same chunk complete is delivered.
func TestLMTPTruncatedBDAT(t *testing.T) {
	for _, tc := range []struct {
		name      string
		truncated bool
	}{{"truncated", true}, {"complete", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLMTPEnv(t, lmtp.Options{})
			e.setUsers(t, map[string]string{"bob@example.test": "always"}, nil)
			// The whole invitation goes; a truncated chunk announces more.
			msg := lmtpInvite("bdat-1")
			size := len(msg)
			if tc.truncated {
				size += 64
			}
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "LHLO mx.example.test\r\nMAIL FROM:<alice@remote.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT %d LAST\r\n%s", size, msg)
			c.(*net.TCPConn).CloseWrite() // the client hangs up (its read side stays open for the replies)
			b, _ := io.ReadAll(c)
			replies := string(b)
			delivered := strings.Contains(replies, "250 2.0.0 <bob@example.test>")
			if delivered == tc.truncated || (tc.truncated && !strings.Contains(replies, "421 4.4.2 <bob@example.test>")) {
				t.Errorf("replies:\n%s", replies)
			}
			if n := len(e.ds.transactions()); (n == 0) != tc.truncated {
				t.Errorf("%d downstream transactions", n)
			}
			if evs := storedEvents(t, e.db, "bob@example.test"); (len(evs) == 0) != tc.truncated {
				t.Errorf("%d events stored", len(evs))
			}
		})
	}
}
