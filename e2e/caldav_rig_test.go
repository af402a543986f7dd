//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// davRig is a private imipd with its CalDAV listener, its milter (on free
// loopback ports) and its outbox sent to a smtp-sink of its own, for the
// tests that drive real CalDAV clients. The harness's imipd is rendered
// from contrib/imipd.toml, where [caldav] is off.
type davRig struct {
	t      *testing.T
	dir    string
	conf   string
	base   string // http://127.0.0.1:PORT
	milter string // 127.0.0.1:PORT
	sink   *sinkServer
}

func newDAVRig(t *testing.T) *davRig {
	t.Helper()
	if E.imipdBin == "" {
		t.Skip("cmd/imipd not built")
	}
	for _, bin := range []string{"vdirsyncer", "khal", debianPython} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (.ci/install-e2e installs it)", bin)
		}
	}
	if out, err := exec.Command(debianPython, "-c", "import caldav").CombinedOutput(); err != nil {
		t.Skipf("python3-caldav not installed (.ci/install-e2e installs it): %s", out)
	}
	r := &davRig{t: t, dir: t.TempDir()}
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	davPort, sinkPort, milterPort := ports[0], ports[1], ports[2]
	r.sink = &sinkServer{port: sinkPort, dir: filepath.Join(r.dir, "sink"), log: filepath.Join(r.dir, "sink.log")}
	os.MkdirAll(r.sink.dir, 0o755)
	r.sink.start(t)
	t.Cleanup(r.sink.stop)

	r.conf = filepath.Join(r.dir, "imipd.toml")
	os.WriteFile(r.conf, []byte(fmt.Sprintf(`data_dir = %q
local_domains = ["example.test"]
default_policy = "known"

[milter]
listen = "inet:127.0.0.1:%d"

[http]
listen = ""

[submission]
address = "inet:127.0.0.1:%d"

[caldav]
listen = "127.0.0.1:%d"
calendar_name = "Invitations"
`, filepath.Join(r.dir, "data"), milterPort, sinkPort, davPort)), 0o644)
	startPrivateImipd(t, r.conf, fmt.Sprintf("127.0.0.1:%d", davPort))
	r.base = fmt.Sprintf("http://127.0.0.1:%d", davPort)
	r.milter = fmt.Sprintf("127.0.0.1:%d", milterPort)
	return r
}

// ctl runs imipctl against the rig's imipd.
func (r *davRig) ctl(stdin string, args ...string) []byte {
	r.t.Helper()
	cmd := exec.Command(E.imipctlBin, append([]string{"-config", r.conf}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("imipctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// run runs a client program with the rig's directory as its HOME.
func (r *davRig) run(stdin string, name string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HOME="+r.dir, "LC_ALL=C.UTF-8", "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addUser creates user with an app password and contact as a known sender.
func (r *davRig) addUser(user, contact, pass string) {
	r.t.Helper()
	r.ctl("", "user", "add", user)
	r.ctl("", "contacts", "add", user, contact)
	r.ctl(pass+"\n", "user", "password", user)
}

// vdirsyncer configures vdirsyncer for user's calendar into a local folder
// (vdir/invitations), discovers and syncs it, and returns its config file
// and the folder.
func (r *davRig) vdirsyncer(user, pass string) (vconf, vdir string) {
	r.t.Helper()
	vdir = filepath.Join(r.dir, "vdir")
	os.MkdirAll(vdir, 0o755)
	vconf = filepath.Join(r.dir, "vdirsyncer.conf")
	os.WriteFile(vconf, []byte(fmt.Sprintf(`[general]
status_path = %q

[pair imipd]
a = "imipd_remote"
b = "imipd_local"
collections = ["from a"]

[storage imipd_remote]
type = "caldav"
url = %q
username = %q
password = %q

[storage imipd_local]
type = "filesystem"
path = %q
fileext = ".ics"
`, filepath.Join(r.dir, "vstatus"), r.base+"/", user, pass, vdir)), 0o644)
	r.run(strings.Repeat("y\n", 5), "vdirsyncer", "-c", vconf, "discover")
	r.run("", "vdirsyncer", "-c", vconf, "sync")
	return vconf, vdir
}
