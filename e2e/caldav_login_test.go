//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startPrivateImipd runs an imipd of the test's own on the config file conf
// (checked with -test first) until the test ends, and waits until addr
// accepts connections. The log is shown when the test fails.
func startPrivateImipd(t *testing.T, conf, addr string) {
	t.Helper()
	if out, err := exec.Command(E.imipdBin, "-config", conf, "-test").CombinedOutput(); err != nil {
		t.Fatalf("imipd -test: %v\n%s", err, out)
	}
	logPath := conf + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command(E.imipdBin, "-config", conf)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait(); logf.Close() }()
	t.Cleanup(func() {
		daemon.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			daemon.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("private imipd log:\n%s", b)
		}
	})
	if err := waitTCP(addr, 10*time.Second); err != nil {
		t.Fatalf("imipd listener %s: %v", addr, err)
	}
}

// TestCalDAVLoginsBehindNginx: contrib/nginx/imipd-caldav.conf in front of
// imipd's CalDAV listener, as documented (issue 13, attack 6). Behind the
// proxy every peer is nginx on 127.0.0.1; nginx's X-Forwarded-For gives
// imipd the client's address ([caldav] trusted_proxies), so ten wrong
// passwords for Bob from one client block that client, not Bob's app on
// another.
func TestCalDAVLoginsBehindNginx(t *testing.T) {
	if E.imipdBin == "" {
		t.Skip("cmd/imipd not built")
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed (.ci/install-e2e installs nginx-light)")
	}
	dir := t.TempDir()
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	davPort, proxyPort, milterPort := ports[0], ports[1], ports[2]

	conf := filepath.Join(dir, "imipd.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`data_dir = %q
local_domains = ["example.test"]

[milter]
listen = "inet:127.0.0.1:%d"

[http]
listen = ""

[caldav]
listen = "127.0.0.1:%d"
# The clients below come from other loopback addresses than nginx.
trusted_proxies = ["127.0.0.1"]
`, filepath.Join(dir, "data"), milterPort, davPort)), 0o644)
	startPrivateImipd(t, conf, fmt.Sprintf("127.0.0.1:%d", davPort))
	const bob, pass = "bob@example.test", "app-password-for-bob"
	for _, args := range [][]string{{"user", "add", bob}, {"user", "password", bob}} {
		cmd := exec.Command(E.imipctlBin, append([]string{"-config", conf}, args...)...)
		cmd.Stdin = strings.NewReader(pass + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("imipctl %v: %v\n%s", args, err, out)
		}
	}

	// contrib's server block, with a test certificate, this test's ports and
	// no IPv6 listener, inside a minimal nginx.conf of its own.
	certPath, keyPath := writeTestCert(t, dir)
	site, err := os.ReadFile("../contrib/nginx/imipd-caldav.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := string(site)
	for _, r := range [][2]string{
		{"listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", proxyPort)},
		{"listen [::]:443 ssl;", ""},
		{"/etc/letsencrypt/live/cal.example.org/fullchain.pem", certPath},
		{"/etc/letsencrypt/live/cal.example.org/privkey.pem", keyPath},
		{"proxy_pass http://127.0.0.1:8443;", fmt.Sprintf("proxy_pass http://127.0.0.1:%d;", davPort)},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("contrib/nginx/imipd-caldav.conf no longer contains %q", r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	os.WriteFile(filepath.Join(dir, "site.conf"), []byte(s), 0o644)
	var tmp strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&tmp, "\t%s_temp_path %s;\n", k, filepath.Join(dir, k))
	}
	nginxConf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(nginxConf, []byte(fmt.Sprintf("daemon off;\nuser root;\npid %s;\nerror_log %s;\nevents {}\nhttp {\n\taccess_log off;\n%s\tinclude %s;\n}\n",
		filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "nginx.err"), tmp.String(), filepath.Join(dir, "site.conf"))), 0o644)
	if out, err := exec.Command(nginx, "-t", "-c", nginxConf, "-p", dir, "-e", filepath.Join(dir, "nginx.err")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	proxy := exec.Command(nginx, "-c", nginxConf, "-p", dir, "-e", filepath.Join(dir, "nginx.err"))
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Process.Signal(os.Interrupt); proxy.Wait() })
	if err := waitTCP(fmt.Sprintf("127.0.0.1:%d", proxyPort), 10*time.Second); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "nginx.err"))
		t.Fatalf("nginx: %v\n%s", err, b)
	}

	// login asks for Bob's calendar through nginx from the loopback
	// address from.
	login := func(from, password string) int {
		t.Helper()
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
		}}
		req, _ := http.NewRequest("PROPFIND", fmt.Sprintf("https://127.0.0.1:%d/dav/calendars/%s/invitations/", proxyPort, bob), nil)
		req.Header.Set("Depth", "0")
		req.SetBasicAuth(bob, password)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const stranger, bobsApp = "127.0.0.2", "127.0.0.3"
	for i := 0; i < 10; i++ {
		if c := login(stranger, "guess"); c != 401 {
			t.Fatalf("wrong password %d from the stranger: %d", i+1, c)
		}
	}
	if c := login(stranger, "guess"); c != 429 {
		t.Errorf("11th wrong password from the stranger: %d, want 429", c)
	}
	if c := login(bobsApp, pass); c != 207 {
		t.Errorf("Bob's app with the right password: %d, want 207 (a stranger locked Bob out)", c)
	}
	if c := login(stranger, "guess"); c != 429 {
		t.Errorf("the stranger after Bob's login: %d, want 429", c)
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files in dir.
func writeTestCert(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cal.example.org"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certPath, keyPath
}
