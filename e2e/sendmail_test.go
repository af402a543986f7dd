//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Sendmail: Debian's sendmail-bin and sendmail-cf conflict with postfix (both
// provide mail-transport-agent), so .ci/install-e2e unpacks the two packages
// with dpkg -x into sendmailPrefix instead of installing them: the binary
// runs from there with a private sendmail.cf, and Postfix stays installed.
// IMIPD_E2E_SENDMAIL names another prefix; a system-wide Sendmail (prefix
// "/") is used when the private one is absent.
const sendmailPrefix = "/opt/imipd-e2e/sendmail"

// contribSendmailBlock marks the lines of contrib/sendmail/imipd.mc an
// administrator adds to sendmail.mc.
const contribSendmailBlock = "imipd"

// sendmailMTA is a private Sendmail in the foreground (-bD), started by a
// test and ended by its PID.
type sendmailMTA struct {
	dir  string // private directory: sendmail.mc, sendmail.cf, queue, log
	port int    // SMTP on 127.0.0.1
	cmd  *exec.Cmd
	done chan error
	log  string // Sendmail's SMTP and LMTP traffic (-X), and its stderr
}

// sendmailFiles returns the Sendmail binary and the directory of its m4
// configuration kit (cf/m4/cf.m4 inside), or why they are not there.
func sendmailFiles() (bin, cfDir string, err error) {
	prefixes := []string{sendmailPrefix, "/"}
	if p := os.Getenv("IMIPD_E2E_SENDMAIL"); p != "" {
		prefixes = []string{p}
	}
	for _, p := range prefixes {
		bin = filepath.Join(p, "usr/libexec/sendmail/sendmail")
		cfDir = filepath.Join(p, "usr/share/sendmail/cf")
		if _, err := os.Stat(bin); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(cfDir, "m4/cf.m4")); err != nil {
			continue
		}
		return bin, cfDir, nil
	}
	return "", "", fmt.Errorf("no Sendmail binary and m4 kit under %s: run .ci/install-e2e as root (it unpacks sendmail-bin and sendmail-cf there)", strings.Join(prefixes, " or "))
}

// startSendmail renders sendmail.mc around contrib/sendmail/imipd.mc, builds
// sendmail.cf with m4, and runs Sendmail on a free loopback port. It
// delivers everything to Dovecot's LMTP (the shared test Dovecot) and hands
// every message to imipd's milter socket, as contrib says.
func startSendmail(t *testing.T) *sendmailMTA {
	t.Helper()
	bin, cfDir, err := sendmailFiles()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("m4"); err != nil {
		t.Fatalf("m4 missing (sendmail.cf is built with it): run .ci/install-e2e as root")
	}
	block := contribSendmailLines(t)
	if !strings.Contains(block, "S="+contribMilterSock) {
		t.Fatalf("contrib/sendmail/imipd.mc: no S=%s", contribMilterSock)
	}
	block = strings.ReplaceAll(block, "S="+contribMilterSock, "S=unix:"+E.milterSock)

	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	s := &sendmailMTA{dir: filepath.Join(E.root, fmt.Sprintf("sendmail-%d", ports[0])), port: ports[0]}
	// Sendmail refuses a queue directory others can read, and files in
	// directories others can write.
	queue := filepath.Join(s.dir, "mqueue")
	if err := os.MkdirAll(queue, 0o700); err != nil {
		t.Fatal(err)
	}
	s.log = filepath.Join(s.dir, "sendmail.log")
	for name, text := range map[string]string{
		// No DNS: names are looked up in the private hosts file only.
		"service.switch": "hosts files\naliases files\n",
		"hosts":          "127.0.0.1 sm.example.test sm localhost\n",
		"nsswitch.conf":  "hosts: files\npasswd: files\ngroup: files\nshadow: files\n",
		// Cyrus SASL's config for Sendmail (AUTH PLAIN against a private
		// sasldb), read from /usr/lib/sasl2, which this directory is
		// bound over for Sendmail alone (below).
		"sasl/Sendmail.conf": "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN\nsasldb_path: " +
			filepath.Join(s.dir, "sasl/sasldb2") + "\n",
		"relay-domains": "",
		"helpfile":      "",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(s.dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeSASLDB(t, filepath.Join(s.dir, "sasl/sasldb2"), mailboxes)
	mc := fmt.Sprintf(`divert(-1)
# private Sendmail for imipd's e2e tests
divert(0)dnl
include(%[1]s)dnl
VERSIONID(`+"`imipd e2e'"+`)dnl
OSTYPE(`+"`linux'"+`)dnl
define(`+"`confDOMAIN_NAME', `sm.example.test'"+`)dnl
define(`+"`QUEUE_DIR', `%[2]s'"+`)dnl
define(`+"`confPID_FILE', `%[3]s/sendmail.pid'"+`)dnl
define(`+"`STATUS_FILE', `%[3]s/statistics'"+`)dnl
define(`+"`HELP_FILE', `%[3]s/helpfile'"+`)dnl
define(`+"`confCR_FILE', `%[3]s/relay-domains'"+`)dnl
define(`+"`ALIAS_FILE', `'"+`)dnl
define(`+"`confSERVICE_SWITCH_FILE', `%[3]s/service.switch'"+`)dnl
define(`+"`confHOSTS_FILE', `%[3]s/hosts'"+`)dnl
define(`+"`confDONT_PROBE_INTERFACES', `True'"+`)dnl
dnl No IDENT (RFC 1413) query back to each client.
define(`+"`confTO_IDENT', `0'"+`)dnl
dnl The private directory is under /tmp: trust its sticky bit for the paths
dnl Sendmail checks (the milter socket's among them).
define(`+"`confDONT_BLAME_SENDMAIL', `TrustStickyBit'"+`)dnl
dnl The machine is shared: never queue or refuse for its load average.
define(`+"`confQUEUE_LA', `1000'"+`)dnl
define(`+"`confREFUSE_LA', `1000'"+`)dnl
dnl AUTH PLAIN without TLS (loopback only), users in the private sasldb.
define(`+"`confAUTH_MECHANISMS', `PLAIN'"+`)dnl
TRUST_AUTH_MECH(`+"`PLAIN'"+`)dnl
dnl Outside senders' domains do not resolve here (no DNS).
FEATURE(`+"`accept_unresolvable_domains'"+`)dnl
FEATURE(`+"`nocanonify'"+`)dnl
RELAY_DOMAIN(`+"`example.test'"+`)dnl
dnl Every message goes to the test Dovecot's LMTP (mailer "dovecot" below).
define(`+"`SMART_HOST', `dovecot:[127.0.0.1]'"+`)dnl
DAEMON_OPTIONS(`+"`Port=%[4]d, Addr=127.0.0.1, Name=MTA'"+`)dnl
dnl ---- contrib/sendmail/imipd.mc (block %[5]s) ----
%[6]sdnl ---- end of contrib ----
MAILER(`+"`smtp'"+`)dnl
MAILER_DEFINITIONS
Mdovecot,	P=[IPC], F=lsDFMnqXzm, S=EnvFromSMTP/HdrFromSMTP, R=EnvToSMTP, E=\r\n, T=DNS/RFC822/SMTP, A=TCP 127.0.0.1 %[7]d
`, "`"+filepath.Join(cfDir, "m4/cf.m4")+"'", queue, s.dir, s.port, contribSendmailBlock, block, E.dovecotLMTP)
	mcFile := filepath.Join(s.dir, "sendmail.mc")
	if err := os.WriteFile(mcFile, []byte(mc), 0o644); err != nil {
		t.Fatal(err)
	}
	cf, err := runCmd(20*time.Second, "m4", mcFile)
	if err != nil {
		t.Fatalf("m4 %s: %v\n%s", mcFile, err, cf)
	}
	if !regexp.MustCompile(`(?m)^Ximipd, S=unix:`+regexp.QuoteMeta(E.milterSock)+`,`).Match(cf) ||
		!regexp.MustCompile(`(?m)^O InputMailFilters=imipd$`).Match(cf) {
		t.Fatalf("sendmail.cf built from contrib has no imipd input filter:\n%s", cf)
	}
	cfFile := filepath.Join(s.dir, "sendmail.cf")
	if err := os.WriteFile(cfFile, cf, 0o644); err != nil {
		t.Fatal(err)
	}

	// -bD: the daemon in the foreground, a child of the test, ended by its
	// PID. -q10s retries what could not be delivered at once. Sendmail
	// logs to syslog, which is not here; -X writes its SMTP traffic (its
	// answers, and the LMTP deliveries) to the log instead, for a failing
	// test. (-d would print into the SMTP sessions.)
	//
	// Sendmail qualifies the machine's name before it reads its config: it
	// asks DNS, and sleeps 60 s when the name stays unqualified (this
	// machine's is "vm"). So it runs in its own UTS and mount namespaces
	// (unshare(1), util-linux): named sm.example.test, with the private
	// hosts file and an nsswitch.conf of "files" bound over /etc/hosts and
	// /etc/nsswitch.conf for its processes only, and the SASL config over
	// /usr/lib/sasl2 (libsasl2-2's, empty; Sendmail clears the environment,
	// so SASL_CONF_PATH cannot name it). No DNS query leaves, and
	// the machine's name and files are untouched. sh execs Sendmail, so
	// the PID started is Sendmail's.
	lf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--uts", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
		`echo sm.example.test >/proc/sys/kernel/hostname &&
mount --bind "$1/hosts" /etc/hosts &&
mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf &&
mount --bind "$1/sasl" /usr/lib/sasl2 &&
shift && exec "$0" "$@"`,
		bin, s.dir, "-C", cfFile, "-bD", "-q10s", "-X", s.log)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	s.cmd, s.done = cmd, make(chan error, 1)
	go func() { s.done <- cmd.Wait(); lf.Close() }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("sendmail: %v", err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			const max = 40000
			if len(b) > max {
				b = b[len(b)-max:]
			}
			t.Logf("==== %s ====\n%s", s.log, b)
		}
	})
	if err := waitListening(s.done, s.log, 15*time.Second, fmt.Sprintf("127.0.0.1:%d", s.port)); err != nil {
		t.Fatalf("sendmail: %v", err)
	}
	return s
}

// stop ends the Sendmail daemon by its PID (SIGTERM; the daemon passes it to
// the children it forked) and waits for it.
func (s *sendmailMTA) stop() error {
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM) {
			return fmt.Errorf("exit on SIGTERM: %v", err)
		}
		return nil
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return errors.New("did not exit within 10s of SIGTERM (killed)")
	}
}

// TestSendmail: the milter path through Debian's Sendmail, configured with
// contrib/sendmail/imipd.mc. An invitation from a known outside organizer
// (imipd logs Sendmail's queue id, "i"); a local organizer's invitation sent
// with AUTH, recorded as her own ({auth_authen}), and an outside attendee's
// REPLY to it; the same without a login (nobody's own); messages carrying a
// forged X-IMIP-Processed; and mail while imipd is stopped (delivered
// untagged: contrib sets no F=). Each is delivered through Dovecot with
// imipd's one header, and the calendars change as the rules say (read back
// with imipctl).
func TestSendmail(t *testing.T) {
	needImipd(t)
	s := startSendmail(t)
	send := func(t *testing.T, from string, to []string, msg []byte) {
		t.Helper()
		if err := sendSMTP(s.port, from, to, msg); err != nil {
			t.Fatalf("SMTP to Sendmail: %v", err)
		}
	}

	t.Run("invitation", func(t *testing.T) {
		org, bob := "org-sm@remote.test", "bob@example.test"
		imipctl(t, "contacts", "add", bob, org)
		uid := unique("sendmail") + "@remote.test"
		msg := request(uid, org, []string{bob}, bob)
		send(t, org, []string{bob}, msg.bytes())
		m := waitMail(t, bob, msg.mid)
		h := oneHeader(t, m)
		if !strings.HasPrefix(h, "needs-action") || !strings.Contains(h, "method=REQUEST") || !strings.Contains(h, "uid="+uid) {
			t.Errorf("%s: %q, want needs-action for REQUEST %s (a new invitation waits for bob's answer)", hdr, h, uid)
		}
		ev := findEvent(events(t, bob), uid)
		if ev == nil {
			t.Fatalf("imipctl events -json %s: no event %s", bob, uid)
		}
		if ev.Organizer != org {
			t.Errorf("organizer %q, want %q", ev.Organizer, org)
		}
		// The queue id imipd logged is Sendmail's, from its Received field.
		rcvd := strings.Join(headerValues(m, "Received"), "\n")
		id := regexp.MustCompile(`by sm\.example\.test \([^)]*\) with E?SMTP id (\w+)`).FindStringSubmatch(rcvd)
		if id == nil {
			t.Fatalf("no Sendmail queue id in Received:\n%s", rcvd)
		}
		waitImipdLog(t, regexp.MustCompile(`queue_id=`+id[1]+`\b.*`+regexp.QuoteMeta(uid)+`|`+regexp.QuoteMeta(uid)+`.*queue_id=`+id[1]+`\b`))
	})

	t.Run("own-and-reply", func(t *testing.T) {
		// alice sends her invitation through Sendmail logged in with AUTH:
		// imipd gets her login as {auth_authen} and records her own copy.
		// Then dave's answer arrives from outside: her copy shows his
		// ACCEPTED.
		alice, bob, dave := "alice@example.test", "bob@example.test", "dave@remote.test"
		uid := unique("sendmail-own") + "@example.test"
		inv := request(uid, alice, []string{bob}, bob, dave)
		if err := submitAs(s.port, alice, alice, []string{bob}, inv.bytes()); err != nil {
			t.Fatalf("Sendmail, AUTH as alice: %v", err)
		}
		waitMail(t, bob, inv.mid)
		if findEvent(events(t, alice), uid) == nil {
			t.Fatalf("alice's own copy of %s was not recorded from her AUTH submission", uid)
		}
		r := reply(uid, alice, dave, "ACCEPTED")
		send(t, dave, []string{alice}, r.bytes())
		m := waitMail(t, alice, r.mid)
		if h := oneHeader(t, m); !strings.HasPrefix(h, "applied") || !strings.Contains(h, "method=REPLY") {
			t.Errorf("%s: %q, want applied for the REPLY", hdr, h)
		}
		waitPartstat(t, alice, uid, dave, "ACCEPTED")
	})

	t.Run("no-login", func(t *testing.T) {
		// The same invitation without AUTH is nobody's own: no copy for
		// alice, though bob still gets it.
		alice, bob := "alice@example.test", "bob@example.test"
		uid := unique("sendmail-nologin") + "@example.test"
		inv := request(uid, alice, []string{bob}, bob)
		send(t, alice, []string{bob}, inv.bytes())
		waitMail(t, bob, inv.mid)
		if findEvent(events(t, alice), uid) != nil {
			t.Fatalf("alice's own copy of %s was recorded from mail without a login", uid)
		}
	})

	t.Run("forged", func(t *testing.T) {
		carol := "carol@example.test"
		forged := unique("sendmail-forged")
		fh := hdr + ": applied; method=REQUEST; uid=" + forged
		mid := unique("sm-plain-forged") + "@remote.test"
		send(t, "x@remote.test", []string{carol}, plainMessage("x@remote.test", carol, mid, fh))
		m := waitMail(t, carol, mid)
		if v := headerValues(m, hdr); len(v) != 0 {
			t.Errorf("plain message: %s delivered: %q, want none (the forged copy removed, nothing added)", hdr, v)
		}
		uid := unique("sm-forged-cal") + "@remote.test"
		cal := request(uid, "x@remote.test", []string{carol}, carol)
		cal.extra = []string{fh}
		send(t, "x@remote.test", []string{carol}, cal.bytes())
		m = waitMail(t, carol, cal.mid)
		if h := oneHeader(t, m); strings.Contains(h, forged) || !strings.Contains(h, "uid="+uid) {
			t.Errorf("calendar message: %s: %q, want imipd's own for %s only", hdr, h, uid)
		}
	})
	t.Run("forged-bare-cr", func(t *testing.T) {
		// A forged copy hidden behind bare CRs inside another field (issue
		// 13, attack 15b). Debian 12's Sendmail (8.17.1.9-2+deb12u2, with
		// the SMTP smuggling fix) refuses any bare CR at the end of DATA:
		// the message is not taken at all. A Sendmail that takes it must
		// deliver one X-IMIP-Processed as python3's email parser reads it,
		// imipd's.
		if _, err := os.Stat("/usr/bin/python3"); err != nil {
			t.Skip("no python3")
		}
		cal, forged := bareCRMessage()
		err := sendSMTP(s.port, "x@remote.test", []string{"carol@example.test"}, cal.bytes())
		if err != nil {
			if !strings.Contains(err.Error(), "Bare carriage return") {
				t.Fatalf("SMTP to Sendmail: %v, want taken or refused for its bare CR", err)
			}
			t.Logf("Sendmail refused it: %v", err)
			return
		}
		checkBareCR(t, cal, forged)
	})

	t.Run("answer", func(t *testing.T) {
		// How answers leave on a Sendmail host (README): imipd's outbox
		// submits to Sendmail's port on loopback without a login. bob
		// accepts alice's invitation with imipctl respond; the REPLY goes
		// through Sendmail and imipd's milter into alice's Maildir and is
		// applied to her copy as incoming mail.
		submitVia(t, fmt.Sprintf("inet:127.0.0.1:%d", s.port))
		m := answerToAlice(t, "sendmail-answer", func(login string, to []string, msg []byte) error {
			return submitAs(s.port, login, login, to, msg)
		})
		if rcvd := strings.Join(headerValues(m, "Received"), "\n"); !strings.Contains(rcvd, "by sm.example.test") {
			t.Errorf("bob's answer did not pass Sendmail; Received:\n%s", rcvd)
		}
	})

	t.Run("imipd-stopped", func(t *testing.T) {
		// contrib sets no F= flag: with imipd stopped (its socket gone)
		// Sendmail delivers at once, untagged, neither deferred nor
		// rejected. imipd is started again after.
		if err := E.stopImipd(); err != nil {
			t.Errorf("imipd on SIGTERM: %v (want exit status 0)", err)
		}
		defer func() {
			if err := E.startImipd(); err != nil {
				t.Errorf("restart imipd: %v", err)
			}
		}()
		uid := unique("sm-stopped") + "@remote.test"
		cal := request(uid, "y@remote.test", []string{"bob@example.test"}, "bob@example.test")
		send(t, "y@remote.test", []string{"bob@example.test"}, cal.bytes())
		if v := headerValues(waitMail(t, "bob@example.test", cal.mid), hdr); len(v) != 0 {
			t.Errorf("calendar message tagged while imipd is stopped: %q", v)
		}
	})
}

// writeSASLDB writes Cyrus SASL's sasldb (a Berkeley DB hash; keys
// "login NUL realm NUL userPassword") with password "secret" for each
// address, with Perl's DB_File (libperl, on the same libdb as libsasl2).
// Each login is stored for Sendmail's realm (its $j) and, split at "@",
// for its own domain, which Cyrus uses for a login with a realm.
func writeSASLDB(t *testing.T, path string, logins []string) {
	t.Helper()
	const script = `use DB_File; use Fcntl;
my $db = shift;
tie(my %h, "DB_File", $db, O_RDWR|O_CREAT, 0600, $DB_HASH) or die "$db: $!";
for my $l (@ARGV) {
	my ($local, $domain) = split /\@/, $l, 2;
	$h{"$l\0sm.example.test\0userPassword"} = "secret";
	$h{"$local\0$domain\0userPassword"} = "secret";
}
untie %h or die "$db: $!";`
	if out, err := runCmd(10*time.Second, "perl", append([]string{"-e", script, path}, logins...)...); err != nil {
		t.Fatalf("sasldb (perl DB_File): %v\n%s", err, out)
	}
}

// contribSendmailLines returns the lines of contrib/sendmail/imipd.mc an
// administrator adds to sendmail.mc.
func contribSendmailLines(t *testing.T) string {
	t.Helper()
	contrib, err := os.ReadFile(filepath.Join(E.repo, "contrib/sendmail/imipd.mc"))
	if err != nil {
		t.Fatal(err)
	}
	block, err := markedBlock(string(contrib), "dnl", contribSendmailBlock)
	if err != nil {
		t.Fatalf("contrib/sendmail/imipd.mc: %v", err)
	}
	return block
}

// TestSendmailREADME: README "Wiring into Sendmail" shows the lines of
// contrib/sendmail/imipd.mc that TestSendmail runs, line for line.
func TestSendmailREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(E.repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	block := contribSendmailLines(t)
	_, sec, ok := strings.Cut(string(readme), "## Wiring into Sendmail\n")
	if !ok {
		t.Fatal(`README: no section "Wiring into Sendmail"`)
	}
	if !strings.Contains(sec, "```m4\n"+block+"```\n") {
		t.Errorf("README \"Wiring into Sendmail\" does not show contrib's lines:\n%s", block)
	}
}

// waitImipdLog polls imipd's log until re matches a line.
func waitImipdLog(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	for {
		b, _ := os.ReadFile(E.imipdLog())
		if m := re.Find(b); m != nil {
			return string(m)
		}
		if time.Now().After(deadline) {
			t.Fatalf("imipd's log has no line matching %s", re)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
