//go:build bench

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"imipd/calstore"
)

// runCmd runs a command (in dir when not "") with its output captured.
func runCmd(timeout time.Duration, dir, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

func freePort() int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// child is imipd running as a child process on its own data directory.
type child struct {
	cmd    *exec.Cmd
	done   chan error
	milter string // Postfix's form: inet:HOST:PORT or unix:/PATH
}

// startChild seeds a store in dir and starts `imipd -config FILE` with the
// milter on milterAddr.
func startChild(bin, dir, milterAddr string) (*child, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	db, err := calstore.Open(filepath.Join(dir, "imipd.db"), calstore.Options{})
	if err != nil {
		return nil, err
	}
	err = seedStore(db)
	db.Close()
	if err != nil {
		return nil, err
	}
	return startChildConf(bin, dir, milterAddr, "")
}

// startChildConf starts `imipd -config FILE` on data directory dir with
// the milter on milterAddr and extra appended to the configuration (a
// [store] section); the store is seeded already.
func startChildConf(bin, dir, milterAddr, extra string) (*child, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`data_dir = %q
local_domains = ["example.test"]
[milter]
listen = %q
[http]
listen = "127.0.0.1:%d"
[submission]
address = ""
`, dir, milterAddr, freePort()) + extra
	cf := filepath.Join(dir, "imipd.toml")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	lf, err := os.Create(filepath.Join(dir, "imipd.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", cf)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan error, 1), milter: milterAddr}
	go func() { c.done <- cmd.Wait(); lf.Close() }()
	network, addr, _ := strings.Cut(milterAddr, ":")
	if network == "inet" {
		network = "tcp"
	}
	if err := waitListen(network, addr, 15*time.Second); err != nil {
		c.stop()
		b, _ := os.ReadFile(filepath.Join(dir, "imipd.log"))
		return nil, fmt.Errorf("%v\n%s", err, b)
	}
	return c, nil
}

func (c *child) netAddr() (string, string) {
	network, addr, _ := strings.Cut(c.milter, ":")
	if network == "inet" {
		network = "tcp"
	}
	return network, addr
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// memKB reads VmRSS and VmHWM (kB) of pid.
func memKB(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// rssComparison: imipd's RSS around one 50 MB message without calendar
// parts (multipart: the MIME walk reads all of it), and one 50 MB
// single-part message.
func rssComparison(r *report, dir, bin string) {
	c, err := startChild(bin, filepath.Join(dir, "rss"), fmt.Sprintf("inet:127.0.0.1:%d", freePort()))
	if err != nil {
		fatal(fmt.Errorf("imipd child: %w", err))
	}
	defer c.stop()
	network, addr := c.netAddr()
	// Warm up: the code paths of both kinds, a REPLY, a 1 MB message.
	driveMilter(network, addr, plainKind(), 50, 4)
	driveMilter(network, addr, replyKind(), 20, 4)
	driveMilter(network, addr, attachmentKind("1 MB", 1<<20), 8, 4)
	time.Sleep(300 * time.Millisecond)
	pid := c.cmd.Process.Pid
	var rows [][]string
	for _, k := range []kind{attachmentKind("50 MB multipart, attachment, no calendar", 50<<20), plainLarge(50 << 20)} {
		rss0, hwm0 := memKB(pid)
		res := driveMilter(network, addr, k, 1, 1)
		time.Sleep(100 * time.Millisecond)
		rss1, hwm1 := memKB(pid)
		growth := max(hwm1-hwm0, hwm1-rss0)
		rows = append(rows, []string{k.name, fmt.Sprint(rss0 / 1024), fmt.Sprint(hwm0 / 1024), fmt.Sprint(hwm1 / 1024), fmt.Sprint(rss1 / 1024),
			fmt.Sprintf("%.1f", float64(growth)/1024), ms(res.wall), fmt.Sprint(res.errs)})
		r.target("50 MB without calendar: RSS growth < 16 MB ("+k.name+")", growth < 16*1024 && res.errs == 0,
			fmt.Sprintf("%.1f MB", float64(growth)/1024))
	}
	r.table("Memory: imipd child process, one 50 MB message (MB; growth = peak after − max(peak, RSS) before)",
		[]string{"message", "RSS before", "peak before", "peak after", "RSS after", "growth", "ms", "errors"}, rows)
}

// plainLarge is a single-part text message of size bytes.
func plainLarge(size int) kind {
	line := strings.Repeat("All work and no play makes Jack a dull boy. ", 2)[:76] + "\r\n"
	body := []byte(strings.Repeat(line, size/len(line)))
	k := plainKind()
	gen := k.gen
	return kind{name: "50 MB single-part text", gen: func(i int64) *message {
		m := gen(i)
		m.body = body
		return m
	}}
}
