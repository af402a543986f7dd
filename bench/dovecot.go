//go:build bench

package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"imipd/e2e/privmta"
)

var dovecotOpt = flag.String("dovecot", "auto", "LMTP against a real, private Dovecot: auto (when root and installed), yes, no")

// benchDovecot is a private Dovecot (Debian's dovecot-core and
// dovecot-lmtpd) with only LMTP, on a loopback port, delivering to Maildirs
// under its own directory; set up as e2e/harness_test.go does (own
// base_dir, state_dir and instance name, passwd-file userdb keyed by the
// full address, Debian's "mail" user as the mail uid).
type benchDovecot struct {
	dir, conf string
	port      int
	mail      string // Maildir homes: mail/DOMAIN/LOCAL
}

// wantDovecot says whether the run uses a real Dovecot (-dovecot=auto: when
// root and installed).
func wantDovecot() bool {
	switch *dovecotOpt {
	case "no":
		return false
	case "yes":
		return true
	}
	if os.Geteuid() != 0 {
		fmt.Println("dovecot: not root; skipped")
		return false
	}
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/lib/dovecot/lmtp", "/usr/bin/doveadm"} {
		if _, err := os.Stat(p); err != nil {
			fmt.Printf("dovecot: %s missing; skipped\n", p)
			return false
		}
	}
	return true
}

// startDovecot starts a private Dovecot in root/dovecot with a mailbox for
// every address in users.
func startDovecot(root string, users []string) (*benchDovecot, error) {
	d := &benchDovecot{dir: filepath.Join(root, "dovecot"), mail: filepath.Join(root, "dovecot-mail"), port: freePort()}
	for _, sub := range []string{"run", "state"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	u, err := user.Lookup("mail")
	if err != nil {
		return nil, fmt.Errorf("user mail: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var pw strings.Builder
	for _, a := range users {
		local, domain, _ := strings.Cut(a, "@")
		home := filepath.Join(d.mail, domain, local)
		if err := os.MkdirAll(filepath.Dir(home), 0o755); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chown(home, uid, gid); err != nil {
			return nil, err
		}
		fmt.Fprintf(&pw, "%s:{PLAIN}secret:%d:%d::%s::\n", a, uid, gid, home)
	}
	usersFile := filepath.Join(d.dir, "users")
	if err := os.WriteFile(usersFile, []byte(pw.String()), 0o644); err != nil {
		return nil, err
	}
	conf := "# private Dovecot for imipd's load comparison: LMTP only\n" +
		privmta.DovecotBase(fmt.Sprintf("imipd-bench-%d", os.Getpid()), d.dir, usersFile, uid, gid) +
		fmt.Sprintf(`protocols = lmtp
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %d
  }
}
`, d.port)
	d.conf = filepath.Join(d.dir, "dovecot.conf")
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if out, err := runCmd(10*time.Second, "", "doveconf", "-c", d.conf, "-n"); err != nil {
		return nil, fmt.Errorf("doveconf -n rejects the config: %v\n%s", err, out)
	}
	if err := runDaemon(filepath.Join(d.dir, "start.log"), "dovecot", "-c", d.conf); err != nil {
		return nil, err
	}
	if err := waitListen("tcp", d.addr(), 15*time.Second); err != nil {
		d.stop()
		b, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
		return nil, fmt.Errorf("%v\n%s", err, b)
	}
	return d, nil
}

func (d *benchDovecot) addr() string { return fmt.Sprintf("127.0.0.1:%d", d.port) }

// stop stops this instance (doveadm stop on its own config) and waits for
// its master process to exit.
func (d *benchDovecot) stop() {
	if out, err := runCmd(20*time.Second, "", "doveadm", "-c", d.conf, "stop"); err != nil {
		fmt.Printf("dovecot: doveadm stop: %v\n%s", err, out)
		return
	}
	pidFile := filepath.Join(d.dir, "run", "master.pid")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// header returns the values of the named field in the newest message of
// addr's Maildir INBOX (new/), "" when there is none; a sample to check that
// the header reached the mailbox.
func (d *benchDovecot) header(addr, name string) (string, error) {
	local, domain, _ := strings.Cut(addr, "@")
	dir := filepath.Join(d.mail, domain, local, "Maildir", "new")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var newest string
	var at time.Time
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && (newest == "" || fi.ModTime().After(at)) {
			newest, at = e.Name(), fi.ModTime()
		}
	}
	if newest == "" {
		return "", fmt.Errorf("no message in %s", dir)
	}
	f, err := os.Open(filepath.Join(dir, newest))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	prefix := []byte(strings.ToLower(name) + ":")
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			break
		}
		if bytes.HasPrefix(bytes.ToLower(line), prefix) {
			return strings.TrimSpace(string(line[len(prefix):])), nil
		}
	}
	return "", sc.Err()
}
