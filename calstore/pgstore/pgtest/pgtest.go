// Package pgtest runs a private PostgreSQL cluster for tests: Debian's
// server binaries, a data directory in the temporary directory, loopback
// only on a free port, trust authentication, stopped when the test binary
// ends. Tests get a new empty database each (NewDatabase).
//
// Without the server binaries the tests that need one skip with a loud
// message, unless IMIPD_REQUIRE_POSTGRES is set (CI sets it: .ci/run
// installs postgresql), when they fail instead.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireEnv names the environment variable that turns a missing server
// into a test failure.
const RequireEnv = "IMIPD_REQUIRE_POSTGRES"

// ErrNoServer means no PostgreSQL server binaries were found.
var ErrNoServer = errors.New("pgtest: no PostgreSQL server binaries (apt-get install postgresql; or set PG_BINDIR)")

// Cluster is a running private cluster.
type Cluster struct {
	dir  string // data directory, also the socket directory
	bin  string // the server's bin directory
	port int
	root bool // commands run as the postgres user (we are root)
	// durable: fsync on (StartDurable)
	durable bool
	seq     atomic.Int64
}

// BinDir returns the directory of initdb and pg_ctl: $PG_BINDIR, or the
// newest /usr/lib/postgresql/N/bin.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[j]))))
		return vi < vj
	})
	if len(dirs) == 0 {
		return "", ErrNoServer
	}
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

// Start creates and starts a cluster with fsync off (tests: a crash of
// the machine loses the cluster anyway). The server refuses to run as
// root, so as root the directory is given to the postgres user and the
// commands run through runuser.
func Start() (*Cluster, error) { return start(false) }

// StartDurable is Start with fsync on, as in production: for benchmarks
// that compare commits with bbolt's synced ones.
func StartDurable() (*Cluster, error) { return start(true) }

func start(durable bool) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "imipd-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, root: os.Geteuid() == 0, durable: durable}
	if c.root {
		pu, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(pu.Uid)
		gid, _ := strconv.Atoi(pu.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	for try := 0; ; try++ {
		c.port, err = freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		out, err := c.start()
		if err == nil {
			return c, nil
		}
		if try == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
		}
	}
}

// run runs one of the server's programs, as the postgres user when root.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.root {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the connection string of database name.
func (c *Cluster) DSN(name string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", c.port, name)
}

// NewDatabase creates a new empty database and returns its DSN.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d", c.seq.Add(1))
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return c.DSN(name), nil
}

// Stop stops the server at once and removes its directory.
func (c *Cluster) Stop() error {
	out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-w", "-m", "immediate", "stop")
	if err != nil {
		err = fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

// StopServer stops the server (fast shutdown: connections are cut), and
// keeps its data for StartServer.
func (c *Cluster) StopServer() error {
	if out, err := c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-w", "-m", "fast", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// StartServer starts a server StopServer stopped, on the same port.
func (c *Cluster) StartServer() error {
	if out, err := c.start(); err != nil {
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s", err, out)
	}
	return nil
}

// start runs pg_ctl start on c.port.
func (c *Cluster) start() ([]byte, error) {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=200", c.port, c.dir)
	if !c.durable {
		opts += " -c fsync=off"
	}
	return c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-w", "-t", "60", "-l", filepath.Join(c.dir, "server.log"), "-o", opts, "start")
}

var (
	shared     *Cluster
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns the test binary's cluster, started on first use, and
// stopped by Main. Without server binaries it skips the test, loudly, or
// fails it when IMIPD_REQUIRE_POSTGRES is set.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		start := time.Now()
		shared, sharedErr = Start()
		if sharedErr == nil {
			fmt.Fprintf(os.Stderr, "pgtest: private PostgreSQL cluster on 127.0.0.1:%d started in %v\n", shared.port, time.Since(start).Round(time.Millisecond))
		}
	})
	switch {
	case errors.Is(sharedErr, ErrNoServer) && os.Getenv(RequireEnv) == "":
		fmt.Fprintf(os.Stderr, "\n*** pgtest: SKIPPING PostgreSQL test %s: %v ***\n\n", t.Name(), sharedErr)
		t.Skipf("SKIPPED: %v (set %s=1 to make this a failure)", sharedErr, RequireEnv)
	case sharedErr != nil:
		t.Fatalf("PostgreSQL test cluster: %v", sharedErr)
	}
	return shared
}

// NewDSN returns the DSN of a new empty database on the shared cluster.
func NewDSN(t testing.TB) string {
	t.Helper()
	c := Shared(t)
	dsn, err := c.NewDatabase(context.Background())
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	return dsn
}

// Main runs the tests (m.Run) and stops the shared cluster if one was
// started; use it in TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}

// CPU returns the processor time the server has used since it started
// (user and system): the postmaster's own and that of its children,
// running (backends, WAL writer, checkpointer) and ended (counted into the
// postmaster's when it reaped them), read from /proc. Benchmarks divide
// the difference over a run by its deliveries: the server's CPU per
// delivery, which shares the machine with imipd.
func (c *Cluster) CPU() (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgtest: server CPU: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("pgtest: server CPU: postmaster.pid: %w", err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("pgtest: server CPU: %w", err)
	}
	var total time.Duration
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, own, reaped, err := ProcCPU(pid)
		if err != nil {
			continue // ended meanwhile
		}
		switch {
		case pid == pm:
			total += own + reaped
		case ppid == pm:
			total += own
		}
	}
	return total, nil
}

// ProcCPU reads /proc/PID/stat: the parent's PID, the processor time the
// process used (user and system), and that of its children it waited for.
func ProcCPU(pid int) (ppid int, own, reaped time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var v [5]int64 // ppid, utime, stime, cutime, cstime
	for k, idx := range []int{1, 11, 12, 13, 14} {
		if v[k], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	// Times are in clock ticks, USER_HZ: 100 a second on Linux.
	const tick = 10 * time.Millisecond
	return int(v[0]), time.Duration(v[1]+v[2]) * tick, time.Duration(v[3]+v[4]) * tick, nil
}
