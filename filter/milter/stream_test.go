package milter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"imipd/filter/milter"
)

// A calendar part after a large attachment, sent in many body chunks,
// streams through and is applied; a large plain message is accepted
// untagged.
func TestMilterStreamLargeMessages(t *testing.T) {
	f := newMilterFixture(t, "tcp", milter.Options{}, nil)
	s := f.session("")
	req := request("big-cal@remote.test", "big-cal@remote.test", 0, []string{"bob@example.test"})
	head, cal, _ := strings.Cut(req, "\r\n\r\n")
	head = strings.Replace(head, "Content-Type: text/calendar; method=REQUEST; charset=UTF-8", "Content-Type: multipart/mixed; boundary=b1", 1)
	att := strings.Repeat(strings.Repeat("QUJD", 19)+"\r\n", 3<<20/78)
	raw := head + "\r\n\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + att +
		"--b1\r\nContent-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n" + cal + "--b1--\r\n"
	ops, code := sendMessage(t, s, envelope{from: "alice@remote.test", rcpts: []string{"bob@example.test"}}, raw)
	wantOps(t, ops, code, "add "+hdr+": needs-action; method=REQUEST; uid=big-cal@remote.test; reason=invitation")

	plain := strings.Replace(plainMessage, "Shall we?\r\n", "Shall we?\r\n"+att, 1)
	ops, code = sendMessage(t, s, envelope{from: "carol@remote.test", rcpts: []string{"bob@example.test"}}, plain)
	wantOps(t, ops, code, "del "+hdr+" #2", "del "+hdr+" #1")
}

// A connection that ends in the middle of a body cuts that message's
// processing: Shutdown does not wait for it.
func TestMilterStreamConnectionLost(t *testing.T) {
	f := newMilterFixture(t, "tcp", milter.Options{}, nil)
	s := f.session("")
	if _, err := s.Mail("alice@remote.test", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rcpt("bob@example.test", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DataStart(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeaderField("Content-Type", "multipart/mixed; boundary=x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeaderEnd(); err != nil {
		t.Fatal(err)
	}
	if act, err := s.BodyChunk([]byte("--x\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\n")); err != nil || act.Type != gomilter.ActionContinue {
		t.Fatal(act, err)
	}
	f.dialer.last().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.shutdown = true
	if err := f.m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (processing of the lost message still running)", err)
	}
}
