//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	milter "github.com/d--j/go-milter"
	"github.com/emersion/go-smtp"
)

// TestAttacks replays issue 13's numbered attacks from outside against an
// imipd of its own, built from this tree and configured from
// contrib/imipd.toml with require_authenticated_sender = true and a trusted
// authserv-id (as the tester had): the milter on a unix socket,
// the LMTP proxy forwarding to a sink, the outbox sending to a sink that
// counts what imipd mails, CalDAV on loopback. Each case asserts the
// outcome header, that the calendar did not change and that nothing was
// sent.
func TestAttacks(t *testing.T) {
	if E.imipdBin == "" {
		t.Skip("cmd/imipd not built")
	}
	a := startAttackImipd(t)
	for _, u := range []string{"bob@example.test", "alice@example.test"} {
		a.ctl(t, "user", "add", u)
	}
	a.ctl(t, "user", "add", "-policy", "never", "carl@example.test")
	a.ctl(t, "contacts", "add", "bob@example.test", "carol@remote.example", "mallory@evil.example")

	// Carol invites Bob (applied as an invitation), Bob accepts.
	a.lmtp(t, "carol@remote.example", []string{"bob@example.test"}, a.msg("Carol <carol@remote.example>", "REQUEST", "pass",
		vevent("board-1@remote.example", 2, "20261201T100000Z", "SUMMARY:Board meeting", "LOCATION:Room 4",
			"ORGANIZER;CN=Carol:mailto:carol@remote.example", "ATTENDEE;PARTSTAT=ACCEPTED:mailto:carol@remote.example",
			"ATTENDEE;RSVP=TRUE:mailto:bob@example.test")))
	// Alice organizes a meeting with Dave (her own mail: SASL login alice).
	a.milter(t, "submission", "alice@example.test", "alice@example.test", []string{"dave@remote.example"},
		a.msg("Alice <alice@example.test>", "REQUEST", "", vevent("team-1@example.test", 1, "20261201T100000Z",
			"SUMMARY:Team sync", "ORGANIZER:mailto:alice@example.test", "ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.test",
			"ATTENDEE;PARTSTAT=ACCEPTED:mailto:dave@remote.example")))
	// Bob organizes one (login bob@example.test).
	a.milter(t, "submission", "bob@example.test", "bob@example.test", []string{"dave@remote.example"},
		a.msg("Bob <bob@example.test>", "REQUEST", "", vevent("bobs-1@example.test", 1, "20261201T100000Z",
			"SUMMARY:Bob's meeting", "ORGANIZER:mailto:bob@example.test", "ATTENDEE;RSVP=TRUE:mailto:dave@remote.example")))
	board := a.event(t, "bob@example.test", "board-1@remote.example")
	team := a.event(t, "alice@example.test", "team-1@example.test")
	bobs := a.event(t, "bob@example.test", "bobs-1@example.test")
	if !strings.Contains(bobs, "ORGANIZER:mailto:bob@example.test") || !strings.Contains(team, "dave@remote.example") {
		t.Fatalf("seed events missing:\n%s\n%s", bobs, team)
	}
	sentBefore := a.sent()

	mallory := "Mallory <mallory@evil.example>"
	sentBy := `SENT-BY="mailto:mallory@evil.example"`
	cases := []struct {
		name, via, daemon, auth, from string
		rcpt                          string
		raw                           []byte
		want                          string // regexp on the X-IMIP-Processed value
	}{
		{"1-cancel-sentby", "lmtp", "", "", "mallory@evil.example", "bob@example.test",
			a.msg(mallory, "CANCEL", "pass", vevent("board-1@remote.example", 2, "20261206T100000Z",
				"ORGANIZER;"+sentBy+":mailto:carol@remote.example", "ATTENDEE:mailto:bob@example.test", "STATUS:CANCELLED")),
			`^needs-action; .*reason=sender-mismatch`},
		{"1-cancel-sentby-milter-case", "milter", "mx.example.test", "", "mallory@evil.example", "bob@example.test",
			a.msg(mallory, "CANCEL", "pass", vevent("board-1@remote.example", 2, "20261206T100001Z",
				`ORGANIZER;sent-by="MAILTO:Mallory@EVIL.example":mailto:carol@remote.example`, "STATUS:CANCELLED")),
			`^needs-action; .*reason=sender-mismatch`},
		{"1-request-rewrite", "milter", "mx.example.test", "", "mallory@evil.example", "bob@example.test",
			a.msg(mallory, "REQUEST", "pass", vevent("board-1@remote.example", 2, "20261206T110000Z",
				"SUMMARY:Moved", "LOCATION:https://evil.example", "ORGANIZER;"+sentBy+":mailto:carol@remote.example",
				"ATTENDEE:mailto:bob@example.test")),
			`^needs-action; .*reason=sender-mismatch`},
		{"1-reply-attendee-sentby", "lmtp", "", "", "mallory@evil.example", "alice@example.test",
			a.msg(mallory, "REPLY", "pass", vevent("team-1@example.test", 1, "20261206T100000Z",
				"ORGANIZER:mailto:alice@example.test", "ATTENDEE;"+sentBy+";PARTSTAT=DECLINED:mailto:dave@remote.example")),
			`^needs-action; .*reason=sender-mismatch`},
		{"2-add-relay", "lmtp", "", "", "mallory@evil.example", "carl@example.test",
			a.msg(mallory, "ADD", "fail", vevent("evil-uid-1", 1, "20261206T050000Z",
				"ORGANIZER;"+sentBy+":mailto:victim@third.example", "ATTENDEE:mailto:carl@example.test")),
			`^ignored; .*reason=unknown-event`},
		{"3-refresh-for-dave", "milter", "mx.example.test", "", "mallory@evil.example", "alice@example.test",
			a.msg(mallory, "REFRESH", "pass", "BEGIN:VEVENT\nUID:team-1@example.test\nDTSTAMP:20261206T051000Z\n"+
				"ORGANIZER:mailto:alice@example.test\nATTENDEE;"+sentBy+":mailto:dave@remote.example\nEND:VEVENT\n"),
			`^needs-action; .*reason=sender-mismatch`},
		{"4-login-mismatch", "milter", "submission", "alice@example.test", "bob@example.test", "dave@remote.example",
			a.msg("Bob <bob@example.test>", "CANCEL", "", vevent("bobs-1@example.test", 2, "20261206T100000Z",
				"ORGANIZER:mailto:bob@example.test", "ATTENDEE:mailto:dave@remote.example", "STATUS:CANCELLED")),
			`^$`},
		{"4-pickup-claim", "milter", "pickup", "", "bob@example.test", "eve@evil.example",
			a.msg("Bob <bob@example.test>", "REQUEST", "", vevent("planted-1@example.test", 1, "20261206T100000Z",
				"SUMMARY:Planted", "ORGANIZER:mailto:bob@example.test", "ATTENDEE:mailto:eve@evil.example")),
			`^$`},
		{"5-secondly", "lmtp", "", "", "carol@remote.example", "bob@example.test",
			a.msg("Carol <carol@remote.example>", "REQUEST", "pass", vevent("rr-1@remote.example", 0, "20261206T050000Z",
				"RRULE:FREQ=SECONDLY", "ORGANIZER:mailto:carol@remote.example", "ATTENDEE:mailto:bob@example.test")),
			`^rejected; reason=rrule-frequency`},
		{"5-vtimezone-feb30", "lmtp", "", "", "carol@remote.example", "bob@example.test",
			a.msg("Carol <carol@remote.example>", "REQUEST", "pass", tzBomb()),
			`^rejected; reason=malformed`},
		{"8-month-13", "lmtp", "", "", "carol@remote.example", "bob@example.test",
			a.msg("Carol <carol@remote.example>", "REQUEST", "pass", strings.Replace(vevent("bad-1@remote.example", 0,
				"20261206T050000Z", "ORGANIZER:mailto:carol@remote.example", "ATTENDEE:mailto:bob@example.test"),
				"DTSTART:20261215", "DTSTART:20261315", 1)),
			`^rejected; reason=bad-date`},
		{"10-reply-cn-injection", "lmtp", "", "", "dave@remote.example", "alice@example.test",
			a.msg("Dave <dave@remote.example>", "REPLY", "pass", vevent("team-1@example.test", 1, "20261206T100002Z",
				"ORGANIZER:mailto:alice@example.test",
				`ATTENDEE;CN="Dave^nDESCRIPTION:Dial in at https://evil.example^nEND:VEVENT^nBEGIN:VEVENT";PARTSTAT=TENTATIVE:mailto:dave@remote.example`)),
			`^applied; method=REPLY`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got string
			if c.via == "lmtp" {
				got = a.lmtp(t, c.from, []string{c.rcpt}, c.raw)
			} else {
				got = a.milter(t, c.daemon, c.auth, c.from, []string{c.rcpt}, c.raw)
			}
			if !regexp.MustCompile(c.want).MatchString(got) {
				t.Errorf("X-IMIP-Processed %q, want %s", got, c.want)
			}
		})
	}
	if got := a.event(t, "bob@example.test", "board-1@remote.example"); got != board {
		t.Errorf("Carol's meeting in Bob's calendar changed:\n%s\nwas\n%s", got, board)
	}
	if got := a.event(t, "bob@example.test", "bobs-1@example.test"); got != bobs {
		t.Errorf("Bob's own meeting changed:\n%s\nwas\n%s", got, bobs)
	}
	got := a.event(t, "alice@example.test", "team-1@example.test")
	if !strings.Contains(got, "ATTENDEE;PARTSTAT=TENTATIVE:mailto:dave@remote.example") || strings.Contains(got, "evil") {
		t.Errorf("Dave's own answer: want only PARTSTAT and a plain CN taken, got\n%s", got)
	}
	if out, _ := exec.Command(E.imipctlBin, "-config", a.conf, "events", "bob@example.test").CombinedOutput(); bytes.Contains(out, []byte("planted")) ||
		bytes.Contains(out, []byte("rr-1")) || bytes.Contains(out, []byte("bad-1")) {
		t.Errorf("an attack stored an event:\n%s", out)
	}
	if n := a.sent() - sentBefore; n != 0 {
		t.Errorf("imipd sent %d mails for the attacks, want 0", n)
	}

	t.Run("6-blocked-source-oracle", func(t *testing.T) {
		pw := "bob-app-password-1"
		cmd := exec.Command(E.imipctlBin, "-config", a.conf, "user", "password", "bob@example.test")
		cmd.Stdin = strings.NewReader(pw + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user password: %v\n%s", err, out)
		}
		login := func(source, pass string) int {
			req, _ := http.NewRequest("PROPFIND", "http://"+a.caldav+"/dav/calendars/bob@example.test/invitations/", nil)
			req.Header.Set("Depth", "0")
			req.Header.Set("X-Forwarded-For", source)
			req.SetBasicAuth("bob@example.test", pass)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := login("198.51.100.1", pw); c != 207 {
			t.Fatalf("Bob's app: %d", c)
		}
		for i := range 40 {
			login("203.0.113.50", fmt.Sprintf("guess%d", i))
		}
		if c := login("203.0.113.50", pw); c != 429 {
			t.Errorf("the right password from a blocked source after 40 guesses: %d, want 429", c)
		}
		if c := login("198.51.100.1", pw); c != 207 {
			t.Errorf("Bob's app after the guesses: %d, want 207", c)
		}
	})

	t.Run("11-subaddresses", func(t *testing.T) {
		var rcpts, atts []string
		for i := range 500 {
			rcpts = append(rcpts, fmt.Sprintf("bob+r%d@example.test", i))
			atts = append(atts, fmt.Sprintf("ATTENDEE:mailto:bob+r%d@example.test", i))
		}
		a.lmtp(t, "carol@remote.example", rcpts, a.msg("Carol <carol@remote.example>", "REQUEST", "pass",
			vevent("plus-1@remote.example", 0, "20261206T050000Z", append([]string{"ORGANIZER:mailto:carol@remote.example"}, atts...)...)))
		if out := a.ctl(t, "users"); strings.Contains(out, "bob+") {
			t.Errorf("subaddresses became users:\n%s", out)
		}
		if out := a.ctl(t, "pending", "bob@example.test"); strings.Count(out, "plus-1") > 1 {
			t.Errorf("more than one pending item for 500 subaddresses:\n%s", out)
		}
	})

	t.Run("12-alarm-line", func(t *testing.T) {
		url := "http://" + a.caldav + "/dav/calendars/bob@example.test/invitations/board-1@remote.example.ics"
		body := strings.Replace(board, "END:VEVENT", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nDESCRIPTION:"+
			strings.Repeat("x", 70000)+"\r\nEND:VALARM\r\nEND:VEVENT", 1)
		req, _ := http.NewRequest("PUT", url, strings.NewReader(strings.ReplaceAll(body, "\n", "\r\n")))
		req.Header.Set("Content-Type", "text/calendar")
		req.SetBasicAuth("bob@example.test", "bob-app-password-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("PUT of a 70 KB VALARM line: %d, want refused", resp.StatusCode)
		}
		if got := a.event(t, "bob@example.test", "board-1@remote.example"); got != board {
			t.Errorf("a refused PUT changed the event:\n%s", got)
		}
	})

	t.Run("14-listen-beyond-loopback", func(t *testing.T) {
		b, _ := os.ReadFile(a.conf)
		bad := regexp.MustCompile(`(?m)^listen  = .*$`).ReplaceAll(b, []byte(`listen  = "inet:0.0.0.0:2424"`))
		p := filepath.Join(t.TempDir(), "bad.toml")
		os.WriteFile(p, bad, 0o600)
		if out, err := exec.Command(E.imipdBin, "-config", p, "-test").CombinedOutput(); err == nil {
			t.Errorf("-test passed an LMTP listener on 0.0.0.0:\n%s", out)
		}
	})

	t.Run("15-bdat-cut", func(t *testing.T) {
		before := a.delivered()
		c, err := net.Dial("tcp", a.lmtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		raw := a.msg("Carol <carol@remote.example>", "REQUEST", "pass", vevent("bdat-1@remote.example", 0, "20261206T050000Z",
			"ORGANIZER:mailto:carol@remote.example", "ATTENDEE:mailto:bob@example.test"))
		fmt.Fprintf(c, "LHLO x\r\nMAIL FROM:<carol@remote.example>\r\nRCPT TO:<bob@example.test>\r\nBDAT %d LAST\r\n", len(raw)+500)
		c.Write(raw)
		time.Sleep(300 * time.Millisecond)
		c.Close()
		time.Sleep(300 * time.Millisecond)
		if n := a.delivered() - before; n != 0 {
			t.Errorf("a BDAT chunk cut short was delivered %d times", n)
		}
	})
}

type attackImipd struct {
	conf, caldav, lmtpAddr, sock string
	mu                           sync.Mutex
	sentN, deliveredN            int
	lastHeader                   string
}

func (a *attackImipd) sent() int      { a.mu.Lock(); defer a.mu.Unlock(); return a.sentN }
func (a *attackImipd) delivered() int { a.mu.Lock(); defer a.mu.Unlock(); return a.deliveredN }

// startAttackImipd runs an imipd with its own data directory, sinks and
// listeners, stopped at the end of the test.
func startAttackImipd(t *testing.T) *attackImipd {
	dir, err := os.MkdirTemp(E.root, "attacks-")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	a := &attackImipd{caldav: fmt.Sprintf("127.0.0.1:%d", ports[3]), lmtpAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		sock: filepath.Join(dir, "milter.sock")}
	down := smtp.NewServer(sinkBackend{a, false})
	down.LMTP, down.Domain = true, "sink"
	out := smtp.NewServer(sinkBackend{a, true})
	out.Domain, out.AllowInsecureAuth = "sink", true
	for i, s := range []*smtp.Server{down, out} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[1+3*i]))
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(l)
		t.Cleanup(func() { s.Close() })
	}
	b, err := os.ReadFile(filepath.Join(E.repo, "contrib/imipd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range [][2]string{
		{`data_dir       = "/var/lib/imipd"`, fmt.Sprintf("data_dir = %q", filepath.Join(dir, "data"))},
		{"require_authenticated_sender = false", "require_authenticated_sender = true"},
		{`listen = "unix:/run/imipd/milter.sock"`, fmt.Sprintf(`listen = "unix:%s"`, a.sock)},
		{`socket_group = "postfix"`, `socket_group = ""`},
		{`listen  = ""`, fmt.Sprintf(`listen  = "inet:%s"`, a.lmtpAddr)},
		{`forward = ""`, fmt.Sprintf(`forward = "inet:127.0.0.1:%d"`, ports[1])},
		{`listen = "127.0.0.1:8009"`, fmt.Sprintf(`listen = "127.0.0.1:%d"`, ports[2])},
		{`address = "unix:/var/spool/postfix/public/imipd"`, fmt.Sprintf(`address = "inet:127.0.0.1:%d"`, ports[4])},
		{`listen = ""                                  # e.g. "127.0.0.1:8443"; plain HTTP only on loopback`, fmt.Sprintf("listen = %q", a.caldav)},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("contrib/imipd.toml has no %q", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	a.conf = filepath.Join(dir, "imipd.toml")
	if err := os.WriteFile(a.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "imipd.log")
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(E.imipdBin, "-config", a.conf)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done, exited := make(chan error, 1), make(chan struct{})
	go func() { done <- cmd.Wait(); lf.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("imipd log:\n%s", b)
		}
	})
	if err := waitListening(done, logFile, 15*time.Second, "unix:"+a.sock, a.lmtpAddr, a.caldav); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *attackImipd) ctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(E.imipctlBin, append([]string{"-config", a.conf}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("imipctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// event is the stored copy (imipctl event's data section).
func (a *attackImipd) event(t *testing.T, user, uid string) string {
	t.Helper()
	out := a.ctl(t, "event", user, uid)
	_, data, _ := strings.Cut(out, "\ndata:\n")
	return data
}

// msg is an iMIP message from the internet: Authentication-Results of the
// trusted id with the given DMARC result ("" none).
func (a *attackImipd) msg(from, method, dmarc, vevents string) []byte {
	var b strings.Builder
	dom := from[strings.LastIndex(from, "@")+1:]
	dom = strings.TrimSuffix(dom, ">")
	if dmarc != "" {
		fmt.Fprintf(&b, "Authentication-Results: mx.example.test; dkim=pass header.d=%s; dmarc=%s header.from=%s\r\n", dom, dmarc, dom)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: bob@example.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d@attack.test>\r\n",
		from, method, time.Now().UTC().Format(time.RFC1123Z), time.Now().UnixNano())
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/calendar; method=%s; charset=UTF-8\r\n\r\n", method)
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//attack//EN\r\nMETHOD:" + method + "\r\n")
	b.WriteString(strings.ReplaceAll(strings.TrimSuffix(vevents, "\n"), "\n", "\r\n") + "\r\nEND:VCALENDAR\r\n")
	return []byte(b.String())
}

func vevent(uid string, seq int, stamp string, lines ...string) string {
	return fmt.Sprintf("BEGIN:VEVENT\nUID:%s\nSEQUENCE:%d\nDTSTAMP:%s\nDTSTART:20261215T130000Z\nDTEND:20261215T140000Z\n%s\nEND:VEVENT\n",
		uid, seq, stamp, strings.Join(lines, "\n"))
}

// tzBomb is attack 5's time zones: 20 VTIMEZONEs of 47 STANDARD blocks from
// 1601 whose rule is February 30.
func tzBomb() string {
	var b strings.Builder
	for z := range 20 {
		fmt.Fprintf(&b, "BEGIN:VTIMEZONE\nTZID:Zone%d\n", z)
		for s := range 47 {
			fmt.Fprintf(&b, "BEGIN:STANDARD\nDTSTART:%d0101T000000\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\nTZOFFSETFROM:+0%d00\nTZOFFSETTO:+0%d00\nEND:STANDARD\n",
				1601+s, s%9, (s+1)%9)
		}
		b.WriteString("END:VTIMEZONE\n")
	}
	return b.String() + "BEGIN:VEVENT\nUID:tzbomb-0@remote.example\nSEQUENCE:0\nDTSTAMP:20261206T050000Z\n" +
		"DTSTART;TZID=Zone0:20261215T130000\nSUMMARY:tz\nORGANIZER:mailto:carol@remote.example\nATTENDEE:mailto:bob@example.test\nEND:VEVENT\n"
}

// lmtp delivers raw through imipd's LMTP proxy and returns the
// X-IMIP-Processed value the downstream sink received ("" none).
func (a *attackImipd) lmtp(t *testing.T, from string, rcpts []string, raw []byte) string {
	t.Helper()
	a.mu.Lock()
	a.lastHeader = ""
	a.mu.Unlock()
	nc, err := net.Dial("tcp", a.lmtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(nc)
	defer c.Close()
	if err := c.Hello("mx.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		t.Fatalf("LMTP: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastHeader
}

// milter runs raw through imipd's milter as Postfix would and returns the
// X-IMIP-Processed value it adds ("" none).
func (a *attackImipd) milter(t *testing.T, daemon, auth, from string, rcpts []string, raw []byte) string {
	t.Helper()
	c := milter.NewClient("unix", a.sock, milter.WithReadTimeout(30*time.Second), milter.WithWriteTimeout(30*time.Second),
		milter.WithoutDefaultMacros(),
		milter.WithMacroRequest(milter.StageConnect, []milter.MacroName{milter.MacroDaemonName}),
		milter.WithMacroRequest(milter.StageMail, []milter.MacroName{milter.MacroQueueId, milter.MacroAuthType, milter.MacroAuthAuthen}),
		milter.WithMacroRequest(milter.StageRcpt, []milter.MacroName{milter.MacroRcptAddr}))
	m := milter.NewMacroBag()
	m.Set(milter.MacroDaemonName, daemon)
	s, err := c.Session(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Conn("client.remote.test", milter.FamilyInet, 40000, "192.0.2.7")
	s.Helo("client.remote.test")
	m.Set(milter.MacroQueueId, fmt.Sprintf("Q%d", time.Now().UnixNano()))
	if auth != "" {
		m.Set(milter.MacroAuthType, "PLAIN")
		m.Set(milter.MacroAuthAuthen, auth)
	}
	s.Mail(from, "")
	for _, r := range rcpts {
		m.Set(milter.MacroRcptAddr, r)
		s.Rcpt(r, "")
	}
	head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
	s.DataStart()
	for _, line := range strings.Split(head, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		s.HeaderField(k, strings.TrimPrefix(v, " "), nil)
	}
	s.HeaderEnd()
	s.BodyChunk([]byte(body))
	mods, _, err := s.End()
	if err != nil {
		t.Fatalf("milter end: %v", err)
	}
	for _, md := range mods {
		if md.Type == milter.ActionAddHeader && md.HeaderName == "X-IMIP-Processed" {
			return md.HeaderValue
		}
	}
	return ""
}

type sinkBackend struct {
	a    *attackImipd
	sent bool // the outbox's sink, else the LMTP downstream
}

func (b sinkBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{b: b}, nil }

type sinkSession struct {
	b     sinkBackend
	rcpts []string
}

func (s *sinkSession) AuthPlain(string, string) error       { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *sinkSession) Reset()                 { s.rcpts = nil }
func (s *sinkSession) Logout() error          { return nil }
func (s *sinkSession) Data(r io.Reader) error { s.record(r); return nil }
func (s *sinkSession) LMTPData(r io.Reader, st smtp.StatusCollector) error {
	s.record(r)
	for _, rc := range s.rcpts {
		st.SetStatus(rc, nil)
	}
	return nil
}

func (s *sinkSession) record(r io.Reader) {
	b, _ := io.ReadAll(r)
	a := s.b.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.b.sent {
		a.sentN++
		return
	}
	a.deliveredN++
	if m := regexp.MustCompile(`(?m)^X-IMIP-Processed: (.*?)\r?$`).FindSubmatch(b); m != nil {
		a.lastHeader = string(m[1])
	}
}
