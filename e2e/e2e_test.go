//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TestBaseline: plain mail through the milter-shape Postfix lands in bob's
// Maildir through Dovecot's LMTP. It needs no imipd: with the contrib
// settings (default_action=accept) a missing milter does not stop mail.
func TestBaseline(t *testing.T) {
	mid := unique("baseline") + "@remote.test"
	mustSend(t, E.mx, "someone@remote.test", []string{"bob@example.test"}, plainMessage("someone@remote.test", "bob@example.test", mid))
	m := waitMail(t, "bob@example.test", mid)
	if got := m.Header.Get("Message-Id"); got != "<"+mid+">" {
		t.Errorf("Message-ID = %q", got)
	}
}

const hdr = "X-IMIP-Processed"

// oneHeader returns the message's only imipd header.
func oneHeader(t *testing.T, m *mail.Message) string {
	t.Helper()
	v := headerValues(m, hdr)
	if len(v) != 1 {
		t.Fatalf("%s headers: %q, want exactly one", hdr, v)
	}
	return v[0]
}

type eventJSON struct {
	UID       string `json:"uid"`
	Organizer string `json:"organizer"`
	Sequence  int    `json:"sequence"`
	Status    string `json:"status"`
	Attendees []struct {
		Address  string `json:"address"`
		Partstat string `json:"partstat"`
	} `json:"attendees"`
}

func events(t *testing.T, user string) []eventJSON {
	t.Helper()
	var evs []eventJSON
	out := imipctl(t, "events", "-json", user)
	if err := json.Unmarshal(out, &evs); err != nil {
		t.Fatalf("imipctl events -json %s: %v\n%s", user, err, out)
	}
	return evs
}

func findEvent(evs []eventJSON, uid string) *eventJSON {
	for i := range evs {
		if evs[i].UID == uid {
			return &evs[i]
		}
	}
	return nil
}

// waitPartstat polls the user's calendar until attendee has partstat.
func waitPartstat(t *testing.T, user, uid, attendee, partstat string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for {
		if ev := findEvent(events(t, user), uid); ev != nil {
			for _, a := range ev.Attendees {
				if a.Address == attendee {
					last = a.Partstat
				}
			}
			if last == partstat {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's copy of %s: %s has PARTSTAT %q, want %s", user, uid, attendee, last, partstat)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func request(uid, organizer string, to []string, attendees ...string) itipMessage {
	m := itipMessage{method: "REQUEST", uid: uid, organizer: organizer, from: organizer,
		to: strings.Join(to, ", "), mid: unique("req") + "@" + strings.Split(organizer, "@")[1]}
	for _, a := range attendees {
		m.attendees = append(m.attendees, attendee{a, "NEEDS-ACTION"})
	}
	return m
}

// (a) milter path: an invitation from a known outside sender lands with the
// header, and the event is in bob's calendar, read over the admin socket.
func TestMilterRequest(t *testing.T) {
	needImipd(t)
	org := "org-a@remote.test"
	imipctl(t, "contacts", "add", "bob@example.test", org)
	uid := unique("milter") + "@remote.test"
	msg := request(uid, org, []string{"bob@example.test"}, "bob@example.test")
	mustSend(t, E.mx, org, []string{"bob@example.test"}, msg.bytes())
	m := waitMail(t, "bob@example.test", msg.mid)
	h := oneHeader(t, m)
	if !strings.Contains(h, "method=REQUEST") || !strings.Contains(h, "uid="+uid) {
		t.Errorf("%s: %q", hdr, h)
	}
	if !strings.HasPrefix(h, "needs-action") {
		t.Errorf("%s: %q, want needs-action (a new invitation waits for bob's answer)", hdr, h)
	}
	ev := findEvent(events(t, "bob@example.test"), uid)
	if ev == nil {
		t.Fatalf("imipctl events -json bob@example.test: no event %s", uid)
	}
	if ev.Organizer != org {
		t.Errorf("organizer %q, want %q", ev.Organizer, org)
	}
}

// (b) LMTP path: Postfix -> imipd LMTP -> Dovecot LMTP, two recipients, one
// unknown to Dovecot: its failure is relayed per recipient (Postfix bounces
// it with Dovecot's text), the other copy is delivered with its header.
func TestLMTPProxy(t *testing.T) {
	needImipd(t)
	org := "org-b@remote.test"
	imipctl(t, "contacts", "add", "bob@example.test", org)
	uid := unique("lmtp") + "@remote.test"
	msg := request(uid, org, []string{"bob@example.test", postfixOnly}, "bob@example.test", postfixOnly)
	mustSend(t, E.lp, org, []string{"bob@example.test", postfixOnly}, msg.bytes())
	m := waitMail(t, "bob@example.test", msg.mid)
	h := oneHeader(t, m)
	if !strings.Contains(h, "uid="+uid) || !strings.HasPrefix(h, "needs-action") {
		t.Errorf("bob's %s: %q", hdr, h)
	}
	id := queueID(t, E.lp, msg.mid)
	bounced := waitLog(t, E.lp, regexp.MustCompile(id+`: to=<`+regexp.QuoteMeta(postfixOnly)+`>.*status=bounced.*`))
	if !strings.Contains(bounced, fmt.Sprintf("127.0.0.1[127.0.0.1]:%d", E.lmtpPort)) || !strings.Contains(bounced, "5.1.1") {
		t.Errorf("dave's delivery should fail at imipd's LMTP with Dovecot's 5.1.1:\n%s", bounced)
	}
	sent := waitLog(t, E.lp, regexp.MustCompile(id+`: to=<bob@example.test>.*status=sent.*`))
	if !strings.Contains(sent, fmt.Sprintf(":%d", E.lmtpPort)) {
		t.Errorf("bob's delivery did not go through imipd's LMTP:\n%s", sent)
	}
	if findEvent(events(t, "bob@example.test"), uid) == nil {
		t.Errorf("no event %s for bob", uid)
	}
}

// submitAuth sends over the submission service with SMTP AUTH PLAIN
// (Dovecot's SASL; password "secret") as user, with user as MAIL FROM.
func submitAuth(p *postfix, user string, to []string, msg []byte) error {
	return submitAs(p.submission, user, user, to, msg)
}

// submitAs logs in as login on a submission port and sends with MAIL FROM
// from.
func submitAs(port int, login, from string, to []string, msg []byte) error {
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		return err
	}
	if err := c.Auth(sasl.NewPlainClient("", login, "secret")); err != nil {
		return fmt.Errorf("AUTH: %w", err)
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return fmt.Errorf("RCPT %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func reply(uid, organizer, att, partstat string) itipMessage {
	return itipMessage{method: "REPLY", uid: uid, organizer: organizer,
		attendees: []attendee{{att, partstat}}, from: att, to: organizer,
		mid: unique("reply") + "@" + strings.Split(att, "@")[1]}
}

// (c) outgoing: alice (local organizer) sends an invitation, the attendee's
// REPLY arrives, alice's copy shows the answer.
func TestOutgoing(t *testing.T) {
	needImipd(t)
	alice := "alice@example.test"
	t.Run("sendmail", func(t *testing.T) {
		// sendmail(1) -> pickup -> cleanup: non_smtpd_milters. Mail
		// without a SASL login is nobody's own unless the administrator
		// opted in ([milter] outgoing_daemons, off in contrib): any local
		// account could have written it. bob still gets the invitation.
		uid := unique("out-sendmail") + "@example.test"
		inv := request(uid, alice, []string{"bob@example.test", "dave@remote.test"}, "bob@example.test", "dave@remote.test")
		sendmail(t, E.mx, alice, []string{"bob@example.test", "dave@remote.test"}, inv.bytes())
		waitMail(t, "bob@example.test", inv.mid)
		if findEvent(events(t, alice), uid) != nil {
			t.Fatalf("alice's own copy of %s was recorded from sendmail(1) without a login or an opt-in", uid)
		}
	})
	t.Run("submission", func(t *testing.T) {
		// The contrib submission service: SMTP AUTH through Dovecot.
		uid := unique("out-submission") + "@example.test"
		inv := request(uid, alice, []string{"bob@example.test"}, "bob@example.test")
		if err := submitAuth(E.mx, alice, []string{"bob@example.test"}, inv.bytes()); err != nil {
			t.Fatalf("submission as alice: %v", err)
		}
		waitMail(t, "bob@example.test", inv.mid)
		if findEvent(events(t, alice), uid) == nil {
			t.Fatalf("alice's own copy of %s was not recorded from her submission", uid)
		}
		r := reply(uid, alice, "bob@example.test", "ACCEPTED")
		if err := submitAuth(E.mx, "bob@example.test", []string{alice}, r.bytes()); err != nil {
			t.Fatalf("submission as bob: %v", err)
		}
		waitMail(t, alice, r.mid)
		waitPartstat(t, alice, uid, "bob@example.test", "ACCEPTED")
	})
}

// (d) push: the Dovecot plugin's JSON to imipd's endpoint, then the same
// message through the milter: applied once.
func TestPushThenMilter(t *testing.T) {
	needImipd(t)
	org := "org-d@remote.test"
	bob := "bob@example.test"
	imipctl(t, "contacts", "add", bob, org)
	uid := unique("push") + "@remote.test"
	msg := request(uid, org, []string{bob}, bob)
	raw := msg.bytes()
	body, _ := json.Marshal(map[string]string{"user": bob, "event": "messageNew", "folder": "INBOX", "body": string(raw)})
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/chronos/v1/itip/pushmail", E.httpPort), bytes.NewReader(body))
	req.SetBasicAuth("dovecot", "push-secret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("push: %s %s", resp.Status, rb)
	}
	t.Logf("push answer: %s", bytes.TrimSpace(rb))

	mustSend(t, E.mx, org, []string{bob}, raw)
	m := waitMail(t, bob, msg.mid)
	h := oneHeader(t, m)
	t.Logf("milter copy: %s: %s", hdr, h)
	if !strings.Contains(h, "uid="+uid) {
		t.Errorf("%s: %q", hdr, h)
	}

	var log []struct {
		UID, Outcome, Transport, Reason string
	}
	out := imipctl(t, "log", "-json", bob)
	if err := json.Unmarshal(out, &log); err != nil {
		t.Fatalf("imipctl log -json: %v\n%s", err, out)
	}
	var effective []string
	for _, l := range log {
		if l.UID == uid {
			t.Logf("log: %+v", l)
			if l.Outcome != "duplicate" {
				effective = append(effective, l.Transport+":"+l.Outcome)
			}
		}
	}
	if len(effective) != 1 {
		t.Errorf("log for %s: %v, want one processing (push) and no second one", uid, effective)
	}
	var pending []struct{ UID, Kind string }
	out = imipctl(t, "pending", "-json", bob)
	if err := json.Unmarshal(out, &pending); err != nil {
		t.Fatalf("imipctl pending -json: %v\n%s", err, out)
	}
	n := 0
	for _, p := range pending {
		if p.UID == uid {
			n++
		}
	}
	if n != 1 {
		t.Errorf("pending items for %s: %d, want 1", uid, n)
	}
}

// (e) a forged header in an inbound message is gone at delivery, in both
// shapes, for calendar and plain mail.
func TestForgedHeader(t *testing.T) {
	needImipd(t)
	for _, p := range []*postfix{E.mx, E.lp} {
		t.Run(p.name, func(t *testing.T) {
			forged := unique("forged")
			fh := hdr + ": applied; method=REQUEST; uid=" + forged
			mid := unique("plain-forged") + "@remote.test"
			mustSend(t, p, "x@remote.test", []string{"carol@example.test"}, plainMessage("x@remote.test", "carol@example.test", mid, fh))
			m := waitMail(t, "carol@example.test", mid)
			for _, v := range headerValues(m, hdr) {
				if strings.Contains(v, forged) {
					t.Errorf("plain message: forged header delivered: %s", v)
				}
			}
			uid := unique("forged-cal") + "@remote.test"
			cal := request(uid, "x@remote.test", []string{"carol@example.test"}, "carol@example.test")
			cal.extra = []string{fh}
			mustSend(t, p, "x@remote.test", []string{"carol@example.test"}, cal.bytes())
			m = waitMail(t, "carol@example.test", cal.mid)
			if h := oneHeader(t, m); strings.Contains(h, forged) || !strings.Contains(h, "uid="+uid) {
				t.Errorf("calendar message: %s: %q", hdr, h)
			}
		})
	}
}

// (f) imipd stopped: with default_action=accept mail still flows through
// the milter shape, untagged; after the restart `imipctl catchup` processes
// it, once, run as contrib's systemd/imipd-catchup.service runs it. Runs
// last; imipd runs again after.
func TestImipdStopped(t *testing.T) {
	needImipd(t)
	if err := E.stopImipd(); err != nil {
		t.Errorf("imipd on SIGTERM: %v (want exit status 0)", err)
	}
	defer func() {
		if err := E.startImipd(); err != nil {
			t.Errorf("restart imipd: %v", err)
		}
	}()
	mid := unique("stopped") + "@remote.test"
	mustSend(t, E.mx, "y@remote.test", []string{"bob@example.test"}, plainMessage("y@remote.test", "bob@example.test", mid))
	if v := headerValues(waitMail(t, "bob@example.test", mid), hdr); len(v) != 0 {
		t.Errorf("plain message tagged while imipd is stopped: %q", v)
	}
	uid := unique("stopped-cal") + "@remote.test"
	cal := request(uid, "y@remote.test", []string{"bob@example.test"}, "bob@example.test")
	mustSend(t, E.mx, "y@remote.test", []string{"bob@example.test"}, cal.bytes())
	if v := headerValues(waitMail(t, "bob@example.test", cal.mid), hdr); len(v) != 0 {
		t.Errorf("calendar message tagged while imipd is stopped: %q", v)
	}

	// Issue 15, item 6: the catch-up processes it after the restart (the
	// downtime recorded at start), once; a second run does nothing.
	if err := E.startImipd(); err != nil {
		t.Fatalf("restart imipd: %v", err)
	}
	catchup := contribCatchup(t)
	var caught struct {
		Downtimes []struct{ From, To time.Time } `json:"downtimes"`
		Results   []struct {
			User, UID, Outcome, Reason, File string
		} `json:"results"`
	}
	out := imipctl(t, append(catchup, "-json")...)
	if err := json.Unmarshal(out, &caught); err != nil {
		t.Fatalf("imipctl catchup -json: %v\n%s", err, out)
	}
	if len(caught.Downtimes) == 0 {
		t.Errorf("no downtime recorded for the stop: %s", out)
	}
	n := 0
	for _, r := range caught.Results {
		if r.UID == uid {
			n++
			if r.User != "bob@example.test" || r.Outcome != "needs-action" {
				t.Errorf("caught up: %+v, want bob's needs-action", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d results for %s, want 1:\n%s", n, uid, out)
	}
	pendingID(t, "bob@example.test", uid)
	if out := imipctl(t, catchup...); strings.TrimSpace(string(out)) != "no downtime to catch up" {
		t.Errorf("second catchup: %s", out)
	}
	var items []struct{ UID string }
	json.Unmarshal(imipctl(t, "pending", "-json", "-all", "bob@example.test"), &items)
	n = 0
	for _, it := range items {
		if it.UID == uid {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d pending items for %s after two catch-ups, want 1", n, uid)
	}
}

// contribCatchup is the imipctl command of contrib's
// systemd/imipd-catchup.service (after -config), with its Maildir root
// /var/vmail moved to the private Dovecot's and systemd's %% unescaped.
func contribCatchup(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(E.repo, "contrib/systemd/imipd-catchup.service"))
	if err != nil {
		t.Fatal(err)
	}
	var f []string
	for _, l := range strings.Split(string(b), "\n") {
		if cmd, ok := strings.CutPrefix(l, "ExecStart="); ok {
			f = strings.Fields(cmd)
		}
	}
	if len(f) < 4 || f[0] != "/usr/local/bin/imipctl" || f[1] != "-config" || f[3] != "catchup" {
		t.Fatalf("contrib/systemd/imipd-catchup.service: ExecStart= is not imipctl -config FILE catchup ...: %q", f)
	}
	args := f[3:]
	for i, a := range args {
		a = strings.ReplaceAll(a, "%%", "%")
		if rest, ok := strings.CutPrefix(a, "/var/vmail/"); ok {
			a = filepath.Join(E.root, "mail", rest)
		}
		args[i] = a
	}
	return args
}

// TestDovecotPushSnippet: the commented chronos push block of
// contrib/dovecot/imipd.conf, uncommented, is accepted by doveconf (syntax
// only: Debian's Dovecot has no chronos plugin to load).
func TestDovecotPushSnippet(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(E.repo, "contrib/dovecot/imipd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := snippetBlock(string(b), "push")
	if err != nil {
		t.Fatalf("contrib/dovecot/imipd.conf: %v", err)
	}
	var on strings.Builder
	for _, l := range strings.Split(block, "\n") {
		if s, ok := strings.CutPrefix(l, "#"); ok {
			on.WriteString(s + "\n")
		}
	}
	conf, err := os.ReadFile(E.dovecotConf)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "push.conf")
	if err := os.WriteFile(f, append(conf, on.String()...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(10*time.Second, "doveconf", "-c", f, "-n")
	if err != nil {
		t.Fatalf("doveconf -n with the push block: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("push_notification_driver = chronos:url=")) {
		t.Errorf("doveconf -n does not show the push driver:\n%s", out)
	}
}

// TestForgedHeaderBareCR: a forged header hidden behind a bare CR inside
// another header line (Python's email package ends a line there) never
// reaches the mailbox as a header, as python3's parser reads the delivered
// file: one X-IMIP-Processed, imipd's (issue 13, attack 15b). Sent straight
// to imipd's LMTP proxy the bare CR arrives and imipd removes the hidden
// copy; through Postfix (either shape) the bare CR has become a space before
// imipd sees the message (observed with Debian's Postfix 3.7), so the
// forged text stays, harmless, inside the carrier field.
func TestForgedHeaderBareCR(t *testing.T) {
	needImipd(t)
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no python3")
	}
	for _, path := range []string{"lmtp-direct", E.mx.name, E.lp.name} {
		t.Run(path, func(t *testing.T) {
			cal, forged := bareCRMessage()
			switch path {
			case "lmtp-direct":
				codes, err := lmtpSend(fmt.Sprintf("127.0.0.1:%d", E.lmtpPort), []string{"carol@example.test"}, cal.bytes())
				if err != nil || codes["carol@example.test"] != "250" {
					t.Fatalf("LMTP: %v %v", codes, err)
				}
			case E.mx.name:
				mustSend(t, E.mx, "x@remote.test", []string{"carol@example.test"}, cal.bytes())
			default:
				mustSend(t, E.lp, "x@remote.test", []string{"carol@example.test"}, cal.bytes())
			}
			head := checkBareCR(t, cal, forged)
			if path == "lmtp-direct" && bytes.Contains(head, []byte(forged)) {
				t.Errorf("the hidden copy reached the mailbox:\n%q", head)
			}
		})
	}
}

// bareCRMessage is an invitation to carol whose Comments field hides a
// forged copy of imipd's header behind bare CRs; forged is in its uid=.
func bareCRMessage() (cal itipMessage, forged string) {
	forged = unique("forged-cr")
	uid := unique("cr-cal") + "@remote.test"
	cal = request(uid, "x@remote.test", []string{"carol@example.test"}, "carol@example.test")
	cal.extra = []string{"Comments: look\r" + hdr + ": applied; method=REQUEST; uid=" + forged + "\rX-After: kept"}
	return cal, forged
}

// checkBareCR waits for cal in carol's Maildir and checks that python3's
// email parser reads one X-IMIP-Processed in it, imipd's for cal's UID; it
// returns the delivered header block.
func checkBareCR(t *testing.T, cal itipMessage, forged string) []byte {
	t.Helper()
	const py = "/usr/bin/python3"
	waitMail(t, "carol@example.test", cal.mid)
	raw := findMail("carol@example.test", cal.mid)[0]
	head := raw[:max(bytes.Index(raw, []byte("\n\n")), 0)]
	cmd := exec.Command(py, "-c", "import email,sys\nm=email.message_from_binary_file(sys.stdin.buffer)\nfor v in m.get_all(sys.argv[1]) or []: print(v)", hdr)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	vals := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(vals) != 1 || !strings.Contains(vals[0], "uid="+cal.uid) || strings.Contains(vals[0], forged) {
		t.Errorf("python3 reads %s: %q, want only imipd's\n%q", hdr, vals, head)
	}
	return head
}
