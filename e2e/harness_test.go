//go:build e2e

// Package e2e runs imipd between a real Postfix and a real Dovecot (Debian's
// packages, installed by .ci/install-e2e), configured from the files in
// contrib/, on loopback ports inside a private directory. Run it with
// `make e2e` (as root: Postfix and Dovecot drop privileges to their users).
//
// Nothing on the machine is touched besides the private directory: no system
// service is started or stopped, no DNS is used. Set IMIPD_E2E_KEEP=1 to keep
// the directory (its path is logged).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"imipd/calstore/pgstore/pgtest"
	"imipd/e2e/privmta"
)

// Users known to Postfix. dave@example.test is accepted by Postfix but
// unknown to Dovecot's userdb: the per-recipient failure of the LMTP case.
var (
	mailboxes   = []string{"alice@example.test", "bob@example.test", "carol@example.test"}
	postfixOnly = "dave@example.test"
	// nonPeerRcpt is delivered by the LMTP-shape Postfix through a
	// transport bound to 127.0.0.2, which is not one of imipd's LMTP
	// peers (TestLMTPNonPeer).
	nonPeerRcpt = "erin@example.test"
)

// env is the running setup shared by all tests.
type env struct {
	root, repo string
	imipdBin   string // "" when cmd/imipd does not build yet
	imipctlBin string
	buildErr   string

	mailUID, mailGID int

	dovecotConf string
	dovecotLMTP int

	mx *postfix // shape A: milter on smtpd and non_smtpd
	lp *postfix // shape B: LMTP proxy

	imipdConf  string
	milterSock string // contrib's unix socket, inside root
	// imipdSubmit is contrib's answer path: the mx instance's "imipd"
	// service (master.cf.snippet), a unix socket in its public/ directory;
	// the shared imipd config's [submission] address.
	imipdSubmit string
	// sinkPort is where mail for sinkDomain goes from the mx instance
	// (transport_maps): a test starts smtp-sink there (TestAnswerPath).
	sinkPort           int
	lmtpPort, httpPort int

	mu        sync.Mutex
	usersOnce sync.Once
	imipd     *exec.Cmd
	done      chan error // the imipd process's exit
}

type postfix struct {
	name                 string
	dir                  string // config_directory (absolute)
	smtpPort, submission int
	// noLoginCheck, when set, is a second submission port: contrib's
	// service without Postfix's sender-login check (reject_sender_login_mismatch),
	// so a test can show that imipd holds on its own.
	noLoginCheck int
	maillog      string
}

var E *env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("e2e: must run as root (Postfix and Dovecot drop privileges); skipping")
		return 0
	}
	for _, p := range []string{"/usr/sbin/postfix", "/usr/sbin/dovecot", "/usr/lib/dovecot/lmtp"} {
		if _, err := os.Stat(p); err != nil {
			fmt.Printf("e2e: %s missing: run .ci/install-e2e as root first\n", p)
			return 1
		}
	}
	e, err := setup()
	if e != nil {
		defer e.teardown()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e setup: %v\n", err)
		if e != nil {
			e.dumpLogs(os.Stderr)
		}
		return 1
	}
	E = e
	// pgtest.Main stops the private PostgreSQL cluster of multi_test.go,
	// if a test started it.
	code := pgtest.Main(m)
	if code != 0 {
		e.dumpLogs(os.Stderr)
	}
	return code
}

func setup() (*env, error) {
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(file))
	root, err := os.MkdirTemp("", "imipd-e2e-")
	if err != nil {
		return nil, err
	}
	// Postfix and Dovecot drop privileges: every directory on the way must
	// be searchable by their users.
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	e := &env{root: root, repo: repo}
	fmt.Printf("e2e: private directory %s\n", root)

	// Binaries.
	bin := filepath.Join(root, "bin")
	if out, err := goBuild(repo, bin, "./cmd/imipctl"); err != nil {
		return e, fmt.Errorf("go build ./cmd/imipctl: %v\n%s", err, out)
	}
	e.imipctlBin = filepath.Join(bin, "imipctl")
	if out, err := goBuild(repo, bin, "./cmd/imipd"); err != nil {
		e.buildErr = strings.TrimSpace(string(out))
		fmt.Printf("e2e: cmd/imipd does not build; imipd cases will be skipped:\n%s\n", e.buildErr)
	} else {
		e.imipdBin = filepath.Join(bin, "imipd")
	}

	// The user mail is stored as: Debian's "mail" (uid 8); Dovecot is told
	// first_valid_uid = that uid. No system user is created.
	u, err := user.Lookup("mail")
	if err != nil {
		return e, fmt.Errorf("user mail: %v", err)
	}
	e.mailUID, _ = strconv.Atoi(u.Uid)
	e.mailGID, _ = strconv.Atoi(u.Gid)

	ports, err := freePorts(10)
	if err != nil {
		return e, err
	}
	e.dovecotLMTP = ports[0]
	e.lmtpPort, e.httpPort = ports[2], ports[3]
	// contrib's milter listener is a unix socket (mode 0660, group
	// postfix): here inside the private directory, searchable by Postfix.
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		return e, err
	}
	e.milterSock = filepath.Join(root, "run", "milter.sock")
	e.mx = &postfix{name: "mx", smtpPort: ports[4], submission: ports[5], noLoginCheck: ports[8]}
	e.lp = &postfix{name: "lp", smtpPort: ports[6], submission: ports[7]}
	e.sinkPort = ports[9]
	e.imipdSubmit = "unix:" + filepath.Join(root, e.mx.name, "queue", "public", "imipd")

	if err := e.writeImipdConfig(e.imipdSubmit); err != nil {
		return e, fmt.Errorf("imipd config: %v", err)
	}
	// Postfix first: Dovecot puts its SASL socket into Postfix's queue.
	for _, p := range []*postfix{e.mx, e.lp} {
		if err := e.startPostfix(p); err != nil {
			return e, fmt.Errorf("postfix %s: %v", p.name, err)
		}
	}
	if err := e.startDovecot(); err != nil {
		return e, fmt.Errorf("dovecot: %v", err)
	}
	return e, nil
}

func goBuild(repo, outDir, pkg string) ([]byte, error) {
	cmd := exec.Command("go", "build", "-o", outDir+"/", pkg)
	cmd.Dir = repo
	return cmd.CombinedOutput()
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// teardown stops what setup started, by pid file or control command; never
// a system service.
func (e *env) teardown() {
	e.stopImipd()
	for _, p := range []*postfix{e.mx, e.lp} {
		if p != nil && p.dir != "" {
			if out, err := runCmd(10*time.Second, "postfix", "-c", p.dir, "stop"); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: postfix %s stop: %v\n%s", p.name, err, out)
			}
		}
	}
	if e.dovecotConf != "" {
		if out, err := runCmd(10*time.Second, "doveadm", "-c", e.dovecotConf, "stop"); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: doveadm stop: %v\n%s", err, out)
		}
	}
	if os.Getenv("IMIPD_E2E_KEEP") != "" {
		fmt.Printf("e2e: kept %s\n", e.root)
		return
	}
	// Give the daemons a moment to exit before their files go.
	deadline := time.Now().Add(5 * time.Second)
	for _, pidf := range []string{
		filepath.Join(e.root, "mx/queue/pid/master.pid"),
		filepath.Join(e.root, "lp/queue/pid/master.pid"),
		filepath.Join(e.root, "dovecot/run/master.pid"),
	} {
		for time.Now().Before(deadline) && pidAlive(pidf) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	os.RemoveAll(e.root)
}

func pidAlive(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// runCmd runs a command with its output captured and stdin closed (Postfix
// and Dovecot keep a caller's stdout open when they daemonize: output goes
// to a file, never a pipe, for those).
func runCmd(timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = nil
	return cmd.CombinedOutput()
}

// runDaemon starts a program that daemonizes, with stdin from /dev/null and
// stdout/stderr appended to logFile, and waits for the foreground part.
func runDaemon(logFile string, name string, args ...string) error {
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, lf, lf
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(logFile)
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return nil
}

// ---- Dovecot ----

func (e *env) startDovecot() error {
	d := filepath.Join(e.root, "dovecot")
	for _, sub := range []string{"", "run", "state"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	mail := filepath.Join(e.root, "mail")
	if err := os.MkdirAll(mail, 0o755); err != nil {
		return err
	}
	var users strings.Builder
	for _, a := range mailboxes {
		local, domain, _ := strings.Cut(a, "@")
		home := filepath.Join(mail, domain, local)
		if err := os.MkdirAll(filepath.Dir(home), 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		if err := os.Chown(home, e.mailUID, e.mailGID); err != nil {
			return err
		}
		fmt.Fprintf(&users, "%s:{PLAIN}secret:%d:%d::%s::\n", a, e.mailUID, e.mailGID, home)
	}
	usersFile := filepath.Join(d, "users")
	if err := os.WriteFile(usersFile, []byte(users.String()), 0o644); err != nil {
		return err
	}

	// contrib/dovecot/imipd.conf, included as an administrator would, with
	// the example port replaced by the test's.
	contrib, err := os.ReadFile(filepath.Join(e.repo, "contrib/dovecot/imipd.conf"))
	if err != nil {
		return err
	}
	inc := strings.Replace(string(contrib), "port = 24\n", fmt.Sprintf("port = %d\n", e.dovecotLMTP), 1)
	if inc == string(contrib) {
		return errors.New("contrib/dovecot/imipd.conf: no \"port = 24\" line to substitute")
	}
	incFile := filepath.Join(d, "imipd.conf")
	if err := os.WriteFile(incFile, []byte(inc), 0o644); err != nil {
		return err
	}
	conf := "# private Dovecot for imipd's e2e tests\n" +
		privmta.DovecotBase(fmt.Sprintf("imipd-e2e-%d", os.Getpid()), d, usersFile, e.mailUID, e.mailGID) +
		fmt.Sprintf(`protocols =
disable_plaintext_auth = no
auth_mechanisms = plain
# SASL for the submission services (smtpd_sasl_path=private/auth)
service auth {
  unix_listener %[2]s/mx/queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
  unix_listener %[2]s/lp/queue/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
# imipd's Dovecot snippet, as an administrator includes it:
!include %[1]s
`, incFile, e.root)
	e.dovecotConf = filepath.Join(d, "dovecot.conf")
	if err := os.WriteFile(e.dovecotConf, []byte(conf), 0o644); err != nil {
		return err
	}
	if out, err := runCmd(10*time.Second, "doveconf", "-c", e.dovecotConf, "-n"); err != nil {
		e.dovecotConf = ""
		return fmt.Errorf("doveconf -n rejects the config: %v\n%s", err, out)
	}
	if err := runDaemon(filepath.Join(d, "start.log"), "dovecot", "-c", e.dovecotConf); err != nil {
		e.dovecotConf = ""
		return err
	}
	return waitTCP(fmt.Sprintf("127.0.0.1:%d", e.dovecotLMTP), 10*time.Second)
}

func waitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- Postfix ----

// snippetBlock returns the lines between "# begin NAME" and "# end NAME".
func snippetBlock(text, name string) (string, error) {
	return markedBlock(text, "#", name)
}

// markedBlock returns the lines between "COMMENT begin NAME" and "COMMENT
// end NAME" (COMMENT: the file's comment mark, "#" or m4's "dnl").
func markedBlock(text, comment, name string) (string, error) {
	begin, end := comment+" begin "+name+"\n", comment+" end "+name+"\n"
	i := strings.Index(text, begin)
	j := strings.Index(text, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %q ... %q block", strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	return text[i+len(begin) : j], nil
}

func (e *env) startPostfix(p *postfix) error {
	// config_directory, queue_directory and data_directory side by side:
	// postfix-script warns about every file under config_directory not
	// owned by root, so the queue must not live inside it.
	inst := filepath.Join(e.root, p.name)
	dir := filepath.Join(inst, "etc")
	for _, d := range []string{dir, filepath.Join(inst, "queue")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	data := filepath.Join(inst, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		return err
	}
	p.maillog = filepath.Join(inst, "maillog")

	snippet, err := os.ReadFile(filepath.Join(e.repo, "contrib/postfix/main.cf.snippet"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(snippet), contribMilterSock) {
		return fmt.Errorf("contrib/postfix/main.cf.snippet: no %s", contribMilterSock)
	}
	text := strings.ReplaceAll(string(snippet), contribMilterSock, "unix:"+e.milterSock)
	text = strings.ReplaceAll(text, "inet:127.0.0.1:2424", fmt.Sprintf("inet:127.0.0.1:%d", e.lmtpPort))
	common, err := snippetBlock(text, "common")
	if err != nil {
		return fmt.Errorf("contrib/postfix/main.cf.snippet: %v", err)
	}
	var shape string
	switch p.name {
	case "mx":
		if shape, err = snippetBlock(text, "milter"); err != nil {
			return fmt.Errorf("contrib/postfix/main.cf.snippet: %v", err)
		}
		shape += fmt.Sprintf("virtual_transport = lmtp:inet:127.0.0.1:%d\n", e.dovecotLMTP)
	case "lp":
		b, err := snippetBlock(text, "lmtp")
		if err != nil {
			return fmt.Errorf("contrib/postfix/main.cf.snippet: %v", err)
		}
		n := 0
		for _, l := range strings.Split(b, "\n") {
			if s, ok := strings.CutPrefix(l, "#lmtp "); ok {
				shape += s + "\n"
				n++
			}
		}
		if n == 0 {
			return errors.New("contrib/postfix/main.cf.snippet: no \"#lmtp \" lines in the lmtp block")
		}
	}
	names := make([]string, 0, len(mailboxes)+2)
	for _, a := range append(append([]string{}, mailboxes...), postfixOnly, nonPeerRcpt) {
		names = append(names, a+"=ok")
	}
	transports := "remote.test=discard:"
	if p.name == "mx" {
		transports += fmt.Sprintf(", %s=smtp:[127.0.0.1]:%d", sinkDomain, e.sinkPort)
	}
	if p.name == "lp" {
		transports += fmt.Sprintf(", %s=nonpeer:inet:127.0.0.1:%d", nonPeerRcpt, e.lmtpPort)
	}
	main := fmt.Sprintf("# private Postfix instance %q for imipd's e2e tests\n", p.name) +
		privmta.PostfixBase(p.name, dir, inst, p.maillog, e.root) + fmt.Sprintf(`lmtp_host_lookup = native
disable_dns_lookups = yes
local_transport = error:local delivery is disabled
default_transport = error:outside mail is disabled
relay_transport = error:outside mail is disabled
# outside recipients of local users' invitations are dropped quietly
transport_maps = inline:{ %[5]s }
virtual_mailbox_domains = example.test
virtual_mailbox_maps = inline:{ %[1]s }
# as Debian's main.cf: bob+anything@ is bob's (Dovecot's default too, and
# imipd's recipient_delimiter)
recipient_delimiter = +
# short retries: a deferred message in these tests is a failure to see
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s

# ---- contrib/postfix/main.cf.snippet (common) ----
%[2]s
# ---- contrib/postfix/main.cf.snippet (%[3]s) ----
%[4]s`, strings.Join(names, ", "), common,
		map[string]string{"mx": "milter", "lp": "lmtp"}[p.name], shape, transports)
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0o644); err != nil {
		return err
	}

	msnip, err := os.ReadFile(filepath.Join(e.repo, "contrib/postfix/master.cf.snippet"))
	if err != nil {
		return err
	}
	// The submission service as contrib has it, on the test's port; no TLS
	// certificate here, so TLS is offered-not-required (the only change).
	// contrib's "imipd" service is used as it is: its socket lands in this
	// instance's queue directory (imipdSubmit).
	sub := string(msnip)
	if !strings.Contains(sub, "\nimipd     unix") {
		return errors.New("contrib/postfix/master.cf.snippet: no \"imipd unix\" service")
	}
	if !strings.Contains(sub, "\nsubmission inet") {
		return errors.New("contrib/postfix/master.cf.snippet: no \"submission inet\" service")
	}
	sub = strings.Replace(sub, "\nsubmission inet", fmt.Sprintf("\n127.0.0.1:%d inet", p.submission), 1)
	sub = strings.Replace(sub, "smtpd_tls_security_level=encrypt", "smtpd_tls_security_level=none", 1)
	sub = strings.Replace(sub, "smtpd_tls_auth_only=yes", "smtpd_tls_auth_only=no", 1)
	if p.noLoginCheck != 0 {
		svc, err := masterService(sub, fmt.Sprintf("127.0.0.1:%d", p.submission))
		if err != nil {
			return fmt.Errorf("contrib/postfix/master.cf.snippet: %v", err)
		}
		const check = "-o smtpd_sender_restrictions=reject_sender_login_mismatch"
		if !strings.Contains(svc, check) {
			return fmt.Errorf("contrib/postfix/master.cf.snippet: the submission service has no %q", check)
		}
		svc = strings.Replace(svc, fmt.Sprintf("127.0.0.1:%d", p.submission), fmt.Sprintf("127.0.0.1:%d", p.noLoginCheck), 1)
		svc = strings.Replace(svc, check, "-o smtpd_sender_restrictions=", 1)
		sub += "# the submission service without the sender-login check (e2e only)\n" + svc
	}
	// Services the snippet defines replace the base's of the same name.
	defined := map[string]bool{}
	for _, l := range strings.Split(sub, "\n") {
		if f := strings.Fields(l); len(f) >= 8 && !strings.HasPrefix(l, "#") && l[0] != ' ' && l[0] != '\t' {
			defined[f[0]+"/"+f[1]] = true
		}
	}
	var base strings.Builder
	for _, l := range strings.Split(fmt.Sprintf(privmta.MasterCF, p.smtpPort), "\n") {
		if f := strings.Fields(l); len(f) >= 8 && defined[f[0]+"/"+f[1]] {
			continue
		}
		base.WriteString(l + "\n")
	}
	master := base.String() + "\n# ---- contrib/postfix/master.cf.snippet ----\n" + sub
	if p.name == "lp" {
		// An LMTP client from an address that is not imipd's peer.
		master += "# e2e only: LMTP from 127.0.0.2 (TestLMTPNonPeer)\n" +
			"nonpeer   unix  -       -       n       -       -       lmtp\n  -o lmtp_bind_address=127.0.0.2\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(master), 0o644); err != nil {
		return err
	}

	// postconf must accept the rendered files without warnings.
	out, err := runCmd(10*time.Second, "postconf", "-c", dir, "-n")
	if err != nil || bytes.Contains(out, []byte("postconf: warning")) {
		return fmt.Errorf("postconf -c %s -n: %v\n%s", dir, err, out)
	}
	out, err = runCmd(10*time.Second, "postconf", "-c", dir, "-M")
	if err != nil || bytes.Contains(out, []byte("postconf: warning")) {
		return fmt.Errorf("postconf -c %s -M: %v\n%s", dir, err, out)
	}
	// check creates the queue directories with the right owners.
	if out, err := runCmd(30*time.Second, "postfix", "-c", dir, "check"); err != nil {
		return fmt.Errorf("postfix check: %v\n%s", err, out)
	}
	if err := runDaemon(filepath.Join(inst, "start.log"), "postfix", "-c", dir, "start"); err != nil {
		return err
	}
	p.dir = dir
	return waitTCP(fmt.Sprintf("127.0.0.1:%d", p.smtpPort), 15*time.Second)
}

// masterService returns the master.cf entry whose first field is name,
// with its "-o" continuation lines.
func masterService(text, name string) (string, error) {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, name+" "):
			in = true
		case in && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")):
		default:
			in = false
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("no %q service", name)
	}
	return b.String(), nil
}

// ---- imipd ----

// contribMilterSock is the milter address contrib ships (imipd.toml and
// main.cf.snippet agree on it); the tests put the socket in their own
// directory.
const contribMilterSock = "unix:/run/imipd/milter.sock"

// sinkDomain is routed by the mx instance to smtp-sink on sinkPort.
const sinkDomain = "sink.test"

// inetAddr is an imipd address for a loopback TCP port.
func inetAddr(port int) string { return fmt.Sprintf("inet:127.0.0.1:%d", port) }

// writeImipdConfig renders contrib/imipd.toml with the test's addresses:
// every key of the example stays, the values that point at this machine
// are replaced. submission is the outbox's [submission] address.
func (e *env) writeImipdConfig(submission string) error {
	b, err := os.ReadFile(filepath.Join(e.repo, "contrib/imipd.toml"))
	if err != nil {
		return err
	}
	set := map[string]string{
		"data_dir":                     fmt.Sprintf("%q", filepath.Join(e.root, "imipd")),
		"local_domains":                `["example.test"]`,
		"trusted_authserv_ids":         `["mx.example.test"]`,
		"milter.listen":                fmt.Sprintf(`"unix:%s"`, e.milterSock),
		"lmtp.listen":                  fmt.Sprintf(`"inet:127.0.0.1:%d"`, e.lmtpPort),
		"lmtp.forward":                 fmt.Sprintf(`"inet:127.0.0.1:%d"`, e.dovecotLMTP),
		"http.listen":                  fmt.Sprintf(`"127.0.0.1:%d"`, e.httpPort),
		"http.push_user":               `"dovecot"`,
		"http.push_password":           `"push-secret"`,
		"submission.address":           fmt.Sprintf("%q", submission),
		"http.push_resolve":            `"recipientOnly"`,
		"default_policy":               `"known"`,
		"require_authenticated_sender": "false",
	}
	used := map[string]bool{}
	keyRE := regexp.MustCompile(`^([a-z_]+)(\s*=\s*)(.*)$`)
	var out strings.Builder
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") && strings.HasSuffix(trim, "]") {
			section = strings.Trim(trim, "[]") + "."
		}
		if m := keyRE.FindStringSubmatch(line); m != nil {
			k := section + m[1]
			if section == "" {
				k = m[1]
			}
			if v, ok := set[k]; ok {
				line = m[1] + m[2] + v
				used[k] = true
			}
		}
		out.WriteString(line + "\n")
	}
	for k := range set {
		if !used[k] {
			return fmt.Errorf("contrib/imipd.toml has no key %s", k)
		}
	}
	e.imipdConf = filepath.Join(e.root, "imipd.toml")
	return os.WriteFile(e.imipdConf, []byte(out.String()), 0o644)
}

func (e *env) imipdLog() string { return filepath.Join(e.root, "imipd.log") }

// needImipd skips a test until cmd/imipd builds, and starts imipd if it is
// not running.
func needImipd(t *testing.T) {
	t.Helper()
	if E.imipdBin == "" {
		t.Skip("cmd/imipd not built yet")
	}
	if err := E.startImipd(); err != nil {
		t.Fatalf("start imipd: %v", err)
	}
	// The mailbox owners as stored users (imipctl contacts needs them; a
	// delivery would create them too). An existing user is not an error here.
	E.usersOnce.Do(func() {
		for _, a := range mailboxes {
			out, err := exec.Command(E.imipctlBin, "-config", E.imipdConf, "user", "add", a).CombinedOutput()
			if err != nil && !bytes.Contains(bytes.ToLower(out), []byte("exist")) {
				t.Fatalf("imipctl user add %s: %v\n%s", a, err, out)
			}
		}
	})
}

func (e *env) startImipd() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.imipd != nil {
		select {
		case err := <-e.done:
			e.imipd = nil
			return fmt.Errorf("imipd exited: %v", err)
		default:
			return nil
		}
	}
	if out, err := runCmd(10*time.Second, e.imipdBin, "-config", e.imipdConf, "-test"); err != nil {
		return fmt.Errorf("imipd -config %s -test: %v\n%s", e.imipdConf, err, out)
	}
	lf, err := os.OpenFile(e.imipdLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(e.imipdBin, "-config", e.imipdConf)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); lf.Close() }()
	e.imipd, e.done = cmd, done
	// Ready when every listener answers and imipctl reaches the daemon.
	if err := waitListening(done, e.imipdLog(), 15*time.Second,
		"unix:"+e.milterSock,
		fmt.Sprintf("127.0.0.1:%d", e.lmtpPort),
		fmt.Sprintf("127.0.0.1:%d", e.httpPort)); err != nil {
		if errors.Is(err, errExitedAtStart) {
			e.imipd = nil
		}
		return err
	}
	return nil
}

// errExitedAtStart: the process ended before it listened (it is reaped).
var errExitedAtStart = errors.New("imipd exited at start")

// waitListening waits until every addr ("" skipped; "unix:PATH" a unix
// socket, else HOST:PORT) accepts a connection, or the process (done)
// exits, or the deadline passes.
func waitListening(done <-chan error, logFile string, within time.Duration, addrs ...string) error {
	deadline := time.Now().Add(within)
	for _, addr := range addrs {
		if addr == "" {
			continue
		}
		for {
			select {
			case err := <-done:
				b, _ := os.ReadFile(logFile)
				return fmt.Errorf("%w: %v\n%s", errExitedAtStart, err, b)
			default:
			}
			network, a := "tcp", addr
			if p, ok := strings.CutPrefix(addr, "unix:"); ok {
				network, a = "unix", p
			}
			c, err := net.DialTimeout(network, a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("imipd does not listen on %s", addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// stopImipd sends SIGTERM and waits; it returns the exit error (nil: 0).
func (e *env) stopImipd() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.imipd == nil {
		return nil
	}
	cmd := e.imipd
	e.imipd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.done:
		return err
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-e.done
		return errors.New("imipd did not exit within 20s of SIGTERM (killed)")
	}
}

// submitVia runs imipd with [submission] address = addr until the test
// ends; then imipd is stopped, the shared configuration (imipdSubmit) is
// written back and imipd started again.
func submitVia(t *testing.T, addr string) {
	t.Helper()
	if err := E.stopImipd(); err != nil {
		t.Fatalf("stop imipd: %v", err)
	}
	t.Cleanup(func() {
		E.stopImipd()
		if err := E.writeImipdConfig(E.imipdSubmit); err != nil {
			t.Errorf("restore imipd config: %v", err)
		}
		if err := E.startImipd(); err != nil {
			t.Errorf("restart imipd: %v", err)
		}
	})
	if err := E.writeImipdConfig(addr); err != nil {
		t.Fatal(err)
	}
	needImipd(t)
}

// imipctl runs imipctl against the running daemon's config.
func imipctl(t *testing.T, args ...string) []byte {
	t.Helper()
	full := append([]string{"-config", E.imipdConf}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, E.imipctlBin, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("imipctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// ---- logs ----

func (e *env) dumpLogs(w *os.File) {
	files := []string{
		filepath.Join(e.root, "dovecot/dovecot.log"),
		filepath.Join(e.root, "dovecot/start.log"),
		filepath.Join(e.root, "mx/maillog"),
		filepath.Join(e.root, "mx/start.log"),
		filepath.Join(e.root, "lp/maillog"),
		filepath.Join(e.root, "lp/start.log"),
		e.imipdLog(),
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		const max = 40000
		if len(b) > max {
			b = append([]byte("...\n"), b[len(b)-max:]...)
		}
		fmt.Fprintf(w, "==== %s ====\n%s\n", f, b)
	}
}
