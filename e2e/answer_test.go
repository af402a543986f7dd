//go:build e2e

package e2e

import (
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAnswerPath (issue 15, item 1): a user's answer leaves as contrib sets
// it up, with no stand-in server: `imipctl respond` queues the REPLY, the
// outbox hands it to Postfix's "imipd" service (master.cf.snippet; the
// shared config's [submission] address is its socket), and Postfix
// delivers it: to a local organizer's Maildir through Dovecot, applied to
// her calendar by the milter (shape A) or the LMTP proxy (shape B, the lp
// instance's imipd service), and to a remote organizer's domain routed to
// smtp-sink.
func TestAnswerPath(t *testing.T) {
	needImipd(t)
	if _, err := os.Stat(smtpSink); err != nil {
		t.Skipf("%s missing (Debian's postfix package)", smtpSink)
	}
	bob := "bob@example.test"
	via := regexp.MustCompile(`postfix/imipd/smtpd\[\d+\]: ([0-9A-F]+): client=`)

	t.Run("local organizer", func(t *testing.T) { answerLocal(t, E.mx, via) })
	t.Run("local organizer, LMTP shape", func(t *testing.T) {
		// The lp instance's imipd service (no milter there): imipd's LMTP
		// proxy applies the REPLY at delivery.
		submitVia(t, "unix:"+filepath.Join(E.root, E.lp.name, "queue", "public", "imipd"))
		answerLocal(t, E.lp, via)
	})

	t.Run("remote organizer", func(t *testing.T) {
		sink := &sinkServer{port: E.sinkPort, dir: filepath.Join(E.root, "sink-answer"), log: filepath.Join(E.root, "sink-answer.log")}
		sink.start(t)
		defer sink.stop()
		org := "org-answer@" + sinkDomain
		imipctl(t, "contacts", "add", bob, org)
		uid := unique("answer-remote") + "@" + sinkDomain
		id := invite(t, org, bob, uid)
		imipctl(t, "respond", bob, fmt.Sprint(id), "decline")
		m := sink.waitFor(t, uid, deliveryWait)
		h := m.header
		if !strings.Contains(h.Get("X-Mail-Args"), "<"+bob+">") || !strings.Contains(h.Get("X-Rcpt-Args"), "<"+org+">") {
			t.Errorf("envelope: MAIL %q RCPT %q", h.Get("X-Mail-Args"), h.Get("X-Rcpt-Args"))
		}
		// Postfix, not imipd, talked to the sink.
		if rcv := strings.Join(h.Values("Received"), "\n"); !strings.Contains(rcv, "by mx.example.test (Postfix)") {
			t.Errorf("not relayed by the mx Postfix; Received:\n%s", rcv)
		}
		if m.calParam["method"] != "REPLY" || !strings.Contains(m.cal, "PARTSTAT=DECLINED") {
			t.Errorf("calendar part %v:\n%s", m.calParam, m.cal)
		}
		waitOutbox(t, uid, "sent", 10*time.Second, func(it *outboxJSON) bool { return it.Status == "sent" })
		assertVia(t, E.mx, via, h.Get("Message-Id"))
	})
}

// answerLocal: alice (local) invites bob, bob accepts with imipctl respond,
// and the REPLY reaches alice's Maildir through p's imipd service, applied
// to her calendar as incoming mail.
func answerLocal(t *testing.T, p *postfix, via *regexp.Regexp) {
	m := answerToAlice(t, "answer-local-"+p.name, func(login string, to []string, msg []byte) error {
		return submitAuth(E.mx, login, to, msg)
	})
	assertVia(t, p, via, m.Header.Get("Message-Id"))
}

// answerToAlice: alice (local) sends an invitation to bob with submit (as
// her login), bob accepts it with imipctl respond, and imipd's outbox sends
// the REPLY; it returns the REPLY as it reached alice's Maildir, checked to
// be bob's, applied to her calendar as incoming mail.
func answerToAlice(t *testing.T, tag string, submit func(login string, to []string, msg []byte) error) *mail.Message {
	t.Helper()
	bob, alice := "bob@example.test", "alice@example.test"
	imipctl(t, "contacts", "add", bob, alice)
	uid := unique(tag) + "@example.test"
	inv := request(uid, alice, []string{bob}, bob)
	if err := submit(alice, []string{bob}, inv.bytes()); err != nil {
		t.Fatalf("submission as alice: %v", err)
	}
	waitMail(t, bob, inv.mid)
	id := pendingID(t, bob, uid)
	if out := imipctl(t, "respond", bob, fmt.Sprint(id), "accept"); !strings.Contains(string(out), "queued REPLY") {
		t.Fatalf("imipctl respond: %s", out)
	}
	waitOutbox(t, uid, "sent", deliveryWait, func(it *outboxJSON) bool { return it.Status == "sent" })
	m := waitMail(t, alice, "UID:"+uid)
	if from := m.Header.Get("From"); !strings.Contains(from, bob) {
		t.Errorf("From %q, want bob's answer", from)
	}
	if rp := m.Header.Get("Return-Path"); rp != "<"+bob+">" {
		t.Errorf("Return-Path %q, want <%s>", rp, bob)
	}
	// Processed as incoming mail for alice (not as bob's own: no login).
	h := oneHeader(t, m)
	if !strings.HasPrefix(h, "applied") || !strings.Contains(h, "method=REPLY") || !strings.Contains(h, "uid="+uid) {
		t.Errorf("alice's %s: %q, want applied REPLY", hdr, h)
	}
	waitPartstat(t, alice, uid, bob, "ACCEPTED")
	return m
}

// TestAnswerPathREADME: README "How answers leave" shows contrib's imipd
// service line for line, so an administrator who copies it from there gets
// what TestAnswerPath runs.
func TestAnswerPathREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(E.repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := os.ReadFile(filepath.Join(E.repo, "contrib/postfix/master.cf.snippet"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := masterService(string(snippet), "imipd")
	if err != nil {
		t.Fatalf("contrib/postfix/master.cf.snippet: %v", err)
	}
	_, sec, ok := strings.Cut(string(readme), "### How answers leave\n")
	if !ok {
		t.Fatal(`README: no section "How answers leave"`)
	}
	if !strings.Contains(sec, "```\n"+svc+"```\n") {
		t.Errorf("README \"How answers leave\" does not show contrib's service:\n%s", svc)
	}
}

// assertVia checks that Postfix p took the message with Message-ID mid on
// contrib's "imipd" service (syslog_name postfix/imipd).
func assertVia(t *testing.T, p *postfix, via *regexp.Regexp, mid string) {
	t.Helper()
	if mid == "" {
		t.Error("no Message-ID")
		return
	}
	b, _ := os.ReadFile(p.maillog)
	ids := map[string]bool{}
	for _, m := range via.FindAllSubmatch(b, -1) {
		ids[string(m[1])] = true
	}
	cleanup := regexp.MustCompile(`\]: ([0-9A-F]+): message-id=` + regexp.QuoteMeta(mid))
	for _, m := range cleanup.FindAllSubmatch(b, -1) {
		if ids[string(m[1])] {
			return
		}
	}
	t.Errorf("the %s Postfix did not take %s on its imipd service (maillog %s)", p.name, mid, p.maillog)
}
