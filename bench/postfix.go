//go:build bench

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"imipd/e2e/privmta"
)

type benchPostfix struct {
	etc, inst string
	port      int
	started   bool
}

func startPostfix(root string) (*benchPostfix, error) {
	inst := filepath.Join(root, "postfix")
	p := &benchPostfix{etc: filepath.Join(inst, "etc"), inst: inst, port: freePort()}
	for _, d := range []string{p.etc, filepath.Join(inst, "queue")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(inst, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	pu, err := user.Lookup("postfix")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	if err := os.Chown(data, uid, gid); err != nil {
		return nil, err
	}
	main := "# private Postfix for imipd's load comparison: everything is discarded\n" +
		privmta.PostfixBase("bench", p.etc, inst, inst+"/maillog", root) + `relay_domains = example.test
local_transport = discard:
default_transport = discard:
relay_transport = discard:
milter_default_action = accept
smtpd_milters =
non_smtpd_milters =
`
	if err := os.WriteFile(filepath.Join(p.etc, "main.cf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(p.etc, "master.cf"), []byte(fmt.Sprintf(privmta.MasterCF, p.port)), 0o644); err != nil {
		return nil, err
	}
	if out, err := runCmd(30*time.Second, "", "postfix", "-c", p.etc, "check"); err != nil {
		return nil, fmt.Errorf("postfix check: %v\n%s", err, out)
	}
	if err := runDaemon(filepath.Join(inst, "start.log"), "postfix", "-c", p.etc, "start"); err != nil {
		return nil, err
	}
	p.started = true
	return p, waitListen("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), 15*time.Second)
}

// setMilter points smtpd_milters at addr ("" for none) and reloads.
func (p *benchPostfix) setMilter(addr string) error {
	if out, err := runCmd(10*time.Second, "", "postconf", "-c", p.etc, "-e", "smtpd_milters="+addr); err != nil {
		return fmt.Errorf("postconf: %v\n%s", err, out)
	}
	if err := runDaemon(filepath.Join(p.inst, "start.log"), "postfix", "-c", p.etc, "reload"); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond) // old smtpd and cleanup processes finish and exit
	return nil
}

func (p *benchPostfix) stop() {
	if p.started {
		_, _ = runCmd(20*time.Second, "", "postfix", "-c", p.etc, "stop")
	}
}

// runDaemon starts a program that daemonizes, stdin /dev/null and output
// to logFile (Postfix keeps a caller's stdout open).
func runDaemon(logFile, name string, args ...string) error {
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(logFile)
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	return nil
}

// smtpSource runs smtp-source and returns accepted messages per second
// from its wall time.
func (p *benchPostfix) smtpSource(sessions, n int, from, to, file string) (float64, error) {
	start := time.Now()
	out, err := runCmd(10*time.Minute, "", "smtp-source", "-s", fmt.Sprint(sessions), "-m", fmt.Sprint(n),
		"-f", from, "-t", to, "-F", file, fmt.Sprintf("127.0.0.1:%d", p.port))
	d := time.Since(start)
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		return 0, fmt.Errorf("smtp-source: %v\n%s", err, out)
	}
	return float64(n) / d.Seconds(), nil
}

// messageFile writes m for smtp-source -F (LF lines; it sends CRLF).
func messageFile(path string, m *message) (string, error) {
	return path, os.WriteFile(path, bytes.ReplaceAll(m.raw(), []byte("\r\n"), []byte("\n")), 0o644)
}

func postfixComparison(r *report, dir, bin string) {
	switch *postfixOpt {
	case "no":
		return
	case "auto":
		if os.Geteuid() != 0 {
			fmt.Println("postfix: not root; skipped")
			return
		}
		for _, p := range []string{"/usr/sbin/postfix", "/usr/sbin/smtp-source"} {
			if _, err := os.Stat(p); err != nil {
				fmt.Printf("postfix: %s missing; skipped\n", p)
				return
			}
		}
	}
	p, err := startPostfix(dir)
	if p != nil {
		defer p.stop()
	}
	if err != nil {
		fatal(fmt.Errorf("postfix: %w", err))
	}
	n := 1000
	if *quick {
		n = 60
	}
	plainF, err := messageFile(filepath.Join(dir, "plain.eml"), plainKind().gen(0))
	if err != nil {
		fatal(err)
	}
	rm := replyMessage(0)
	replyF, err := messageFile(filepath.Join(dir, "reply.eml"), rm)
	if err != nil {
		fatal(err)
	}
	type mode struct {
		name  string
		start func() (addr string, stop func(), err error)
	}
	modes := []mode{
		{"no milter", func() (string, func(), error) { return "", func() {}, nil }},
		{"do-nothing go-milter, TCP", func() (string, func(), error) {
			a, stop, err := listenTCP(serveBaseline)
			return "inet:" + a, stop, err
		}},
		{"imipd, TCP", func() (string, func(), error) {
			c, err := startChild(bin, filepath.Join(dir, "pf-tcp"), fmt.Sprintf("inet:127.0.0.1:%d", freePort()))
			if err != nil {
				return "", nil, err
			}
			return c.milter, c.stop, nil
		}},
		{"imipd, unix socket", func() (string, func(), error) {
			d := filepath.Join(dir, "pf-unix")
			sock := filepath.Join(d, "milter.sock")
			c, err := startChild(bin, d, "unix:"+sock)
			if err != nil {
				return "", nil, err
			}
			// Postfix's cleanup runs as postfix: let it connect (imipd makes
			// the socket 0660 for the MTA's group; here root owns it).
			if err := os.Chmod(sock, 0o666); err != nil {
				c.stop()
				return "", nil, err
			}
			return c.milter, c.stop, nil
		}},
	}
	// Every milter runs for the whole comparison; Postfix is pointed at
	// each in turn for every load and repetition, so drift of the machine
	// over the run hits all modes alike (the better of two runs counts).
	addrs := make([]string, len(modes))
	for i, md := range modes {
		addr, stop, err := md.start()
		if err != nil {
			fatal(fmt.Errorf("postfix mode %s: %w", md.name, err))
		}
		defer stop()
		addrs[i] = addr
	}
	loads := []struct{ name, from, to, file string }{
		{"plain", "carol@remote.test", rcptPlain, plainF},
		{"iMIP REPLY", rm.from, organizer, replyF},
	}
	results := map[string]map[string]float64{}
	for _, md := range modes {
		results[md.name] = map[string]float64{}
	}
	var cols []string
	for _, k := range loads {
		for _, s := range []int{4, 16} {
			col := fmt.Sprintf("%s, %d sessions", k.name, s)
			cols = append(cols, col)
			for range 2 {
				for i, md := range modes {
					if err := p.setMilter(addrs[i]); err != nil {
						fatal(err)
					}
					fmt.Printf("postfix: %s, %s, %d messages\n", md.name, col, n)
					if _, err := p.smtpSource(s, 20, k.from, k.to, k.file); err != nil {
						fmt.Println("   ", err)
					}
					rate, err := p.smtpSource(s, n, k.from, k.to, k.file)
					if err != nil {
						fmt.Println("   ", err)
					}
					results[md.name][col] = max(results[md.name][col], rate)
				}
			}
		}
	}
	var rows [][]string
	for _, c := range cols {
		base := results["no milter"][c]
		row := []string{c}
		for _, md := range modes {
			v := results[md.name][c]
			if md.name == "no milter" {
				row = append(row, fmt.Sprintf("%.0f", v))
				continue
			}
			row = append(row, fmt.Sprintf("%.0f (%.2f×)", v, v/base))
		}
		rows = append(rows, row)
		for _, md := range modes[2:] {
			ratio := results[md.name][c] / base
			r.target(fmt.Sprintf("Postfix with imipd ≥ 0.8× no milter (%s, %s)", md.name, c), ratio >= 0.8, fmt.Sprintf("%.2f×", ratio))
		}
	}
	head := []string{"smtp-source load"}
	for _, md := range modes {
		head = append(head, md.name+" msg/s")
	}
	r.table(fmt.Sprintf("Through real Postfix: smtp-source, %d messages per run, delivery to discard:", n), head, rows)
	_ = net.IPv4len
}
