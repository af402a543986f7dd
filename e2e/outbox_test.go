//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message"
)

const smtpSink = "/usr/sbin/smtp-sink"

// sinkServer is Debian Postfix's smtp-sink as the submission server imipd's
// outbox delivers to; every message is dumped to a file under dir.
type sinkServer struct {
	port int
	dir  string
	log  string
	cmd  *exec.Cmd
	done chan error
}

func (s *sinkServer) start(t *testing.T) {
	t.Helper()
	lf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// -u root: smtp-sink insists on a user when started as root; the dump
	// files are written as that user.
	cmd := exec.Command(smtpSink, "-u", "root", "-d", filepath.Join(s.dir, "%Y%m%d%H/%M."), fmt.Sprintf("127.0.0.1:%d", s.port), "100")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("smtp-sink: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); lf.Close() }()
	s.cmd, s.done = cmd, done
	if err := waitTCP(fmt.Sprintf("127.0.0.1:%d", s.port), 10*time.Second); err != nil {
		b, _ := os.ReadFile(s.log)
		t.Fatalf("smtp-sink: %v\n%s", err, b)
	}
}

// stop kills the smtp-sink this test started (by its own process).
func (s *sinkServer) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// sunkMessage is one dumped message: smtp-sink's X-* envelope headers are
// part of its header.
type sunkMessage struct {
	file     string
	header   message.Header
	textType string
	calType  string
	calParam map[string]string
	cal      string // unfolded
}

// messagesFor returns the dumped messages whose calendar part has UID uid.
func (s *sinkServer) messagesFor(t *testing.T, uid string) []sunkMessage {
	t.Helper()
	var out []sunkMessage
	filepath.WalkDir(s.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(b, []byte(uid)) {
			return nil
		}
		e, err := message.Read(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		m := sunkMessage{file: path, header: e.Header}
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				mt, params, _ := p.Header.ContentType()
				body, _ := io.ReadAll(p.Body)
				switch mt {
				case "text/plain":
					m.textType = mt
				case "text/calendar":
					m.calType, m.calParam = mt, params
					m.cal = strings.NewReplacer("\r\n ", "", "\n ", "").Replace(string(body))
				}
			}
		}
		if strings.Contains(m.cal, "UID:"+uid) {
			out = append(out, m)
		}
		return nil
	})
	return out
}

func (s *sinkServer) waitFor(t *testing.T, uid string, d time.Duration) sunkMessage {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := s.messagesFor(t, uid); len(m) > 0 {
			return m[0]
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("no message for %s at smtp-sink after %v\noutbox: %s\nsink log: %s", uid, d, imipctl(t, "outbox", "-json"), b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type outboxJSON struct {
	ID        uint64   `json:"id"`
	To        []string `json:"to"`
	Method    string   `json:"method"`
	UID       string   `json:"uid"`
	Status    string   `json:"status"`
	Attempts  int      `json:"attempts"`
	LastError string   `json:"last_error"`
}

func outboxItem(t *testing.T, uid string) *outboxJSON {
	t.Helper()
	var l []outboxJSON
	out := imipctl(t, "outbox", "-json")
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("imipctl outbox -json: %v\n%s", err, out)
	}
	for i := range l {
		if l[i].UID == uid {
			return &l[i]
		}
	}
	return nil
}

func waitOutbox(t *testing.T, uid, what string, d time.Duration, cond func(*outboxJSON) bool) *outboxJSON {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		it := outboxItem(t, uid)
		if it != nil && cond(it) {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox item for %s not %s after %v: %+v", uid, what, d, it)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// invite delivers a REQUEST from org to bob through the milter-shape
// Postfix and returns bob's pending invitation's id.
func invite(t *testing.T, org, bob, uid string) uint64 {
	t.Helper()
	msg := request(uid, org, []string{bob}, bob)
	mustSend(t, E.mx, org, []string{bob}, msg.bytes())
	waitMail(t, bob, msg.mid)
	return pendingID(t, bob, uid)
}

// pendingID returns the id of user's open pending item for uid.
func pendingID(t *testing.T, user, uid string) uint64 {
	t.Helper()
	var pending []struct {
		ID   uint64 `json:"id"`
		UID  string `json:"uid"`
		Kind string `json:"kind"`
	}
	out := imipctl(t, "pending", "-json", user)
	if err := json.Unmarshal(out, &pending); err != nil {
		t.Fatalf("imipctl pending -json: %v\n%s", err, out)
	}
	for _, p := range pending {
		if p.UID == uid {
			return p.ID
		}
	}
	t.Fatalf("no pending item for %s: %s", uid, out)
	return 0
}

// killImipd kills the running imipd with SIGKILL (no shutdown at all).
func (e *env) killImipd() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.imipd == nil {
		return
	}
	e.imipd.Process.Signal(syscall.SIGKILL)
	<-e.done
	e.imipd = nil
}

// TestOutboxSink: imipd's outbox delivers the REPLY of a user's answer
// through a real SMTP server (smtp-sink), in RFC 6047 form; a REPLY queued
// while the server is down survives kill -9 of imipd and is delivered,
// once, after both are back.
func TestOutboxSink(t *testing.T) {
	if E.imipdBin == "" {
		t.Skip("cmd/imipd not built yet")
	}
	if _, err := os.Stat(smtpSink); err != nil {
		t.Skipf("%s missing (Debian's postfix package)", smtpSink)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	sink := &sinkServer{port: ports[0], dir: filepath.Join(E.root, "sink"), log: filepath.Join(E.root, "sink.log")}
	sink.start(t)
	defer sink.stop()

	// imipd with [submission] address pointing at the sink; afterwards
	// back to the shared configuration.
	submitVia(t, inetAddr(sink.port))

	bob, org := "bob@example.test", "org-ob@remote.test"
	imipctl(t, "contacts", "add", bob, org)

	// 1. Respond to an invitation: the REPLY arrives at the sink.
	uid := unique("outbox-reply") + "@remote.test"
	id := invite(t, org, bob, uid)
	out := imipctl(t, "respond", bob, fmt.Sprint(id), "accept")
	if !strings.Contains(string(out), "queued REPLY") {
		t.Fatalf("imipctl respond: %s", out)
	}
	m := sink.waitFor(t, uid, deliveryWait)
	h := m.header
	if !strings.Contains(h.Get("X-Mail-Args"), "<"+bob+">") || !strings.Contains(h.Get("X-Rcpt-Args"), "<"+org+">") {
		t.Errorf("envelope: MAIL %q RCPT %q", h.Get("X-Mail-Args"), h.Get("X-Rcpt-Args"))
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/alternative" {
		t.Errorf("Content-Type %q", mt)
	}
	for _, k := range []string{"From", "To", "Date", "Message-Id", "Subject"} {
		if h.Get(k) == "" {
			t.Errorf("no %s header", k)
		}
	}
	if !strings.Contains(h.Get("From"), bob) || !strings.Contains(h.Get("To"), org) {
		t.Errorf("From %q To %q", h.Get("From"), h.Get("To"))
	}
	if h.Has("Auto-Submitted") {
		t.Errorf("the user's own answer carries Auto-Submitted: %q", h.Get("Auto-Submitted"))
	}
	if m.textType != "text/plain" || m.calType != "text/calendar" || m.calParam["method"] != "REPLY" {
		t.Errorf("parts: %q, %q %v", m.textType, m.calType, m.calParam)
	}
	if !strings.Contains(m.cal, "METHOD:REPLY") || !strings.Contains(m.cal, "PARTSTAT=ACCEPTED") || !strings.Contains(m.cal, bob) {
		t.Errorf("calendar part:\n%s", m.cal)
	}
	waitOutbox(t, uid, "sent", 10*time.Second, func(it *outboxJSON) bool { return it.Status == "sent" })

	// 2. The sink is down: the next REPLY stays queued; imipd is killed
	// with SIGKILL; after both restart the REPLY is delivered, once.
	sink.stop()
	uid2 := unique("outbox-crash") + "@remote.test"
	id2 := invite(t, org, bob, uid2)
	imipctl(t, "respond", bob, fmt.Sprint(id2), "decline")
	it := waitOutbox(t, uid2, "attempted", 20*time.Second, func(it *outboxJSON) bool { return it.Attempts >= 1 && it.LastError != "" })
	if it.Status != "queued" {
		t.Fatalf("with the sink down: %+v, want queued", it)
	}
	t.Logf("queued while the sink is down: %+v", it)
	E.killImipd()
	sink.start(t)
	if err := E.startImipd(); err != nil {
		t.Fatalf("restart imipd after kill -9: %v", err)
	}
	// The next attempt is due one backoff (at most 30 s, the first
	// retry) after the failed one.
	m2 := sink.waitFor(t, uid2, 90*time.Second)
	if !strings.Contains(m2.cal, "PARTSTAT=DECLINED") {
		t.Errorf("calendar part:\n%s", m2.cal)
	}
	waitOutbox(t, uid2, "sent", 10*time.Second, func(it *outboxJSON) bool { return it.Status == "sent" })
	time.Sleep(500 * time.Millisecond)
	if n := len(sink.messagesFor(t, uid2)); n != 1 {
		t.Errorf("%d deliveries of the REPLY for %s, want 1", n, uid2)
	}
	if n := len(sink.messagesFor(t, uid)); n != 1 {
		t.Errorf("%d deliveries of the REPLY for %s, want 1", n, uid)
	}
}
