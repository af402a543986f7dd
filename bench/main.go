//go:build bench

// Command bench is imipd's load comparison (issue 5), run by `make bench`
// after the Go benchmarks:
//
//	go run -tags bench ./bench [-quick] [-postfix=auto|yes|no] [-dovecot=auto|yes|no] [-only milter,lmtp,rss,postfix,pg]
//
// Every figure is compared with a baseline measured in the same run:
//
//   - milter: a load generator on go-milter's client (real milter protocol
//     6 over loopback TCP, a new session per message, 16 concurrent
//     sessions and one) drives a do-nothing go-milter server (the baseline:
//     imipd's negotiation, buffered reads and TCP_QUICKACK) and imipd's
//     milter.Milter on a real, synced bbolt store in a temporary directory;
//   - memory: imipd as a child process (`imipd -config FILE`), VmHWM and
//     VmRSS from /proc/PID/status around one 50 MB message without calendar;
//   - LMTP: N deliveries through imipd's LMTP proxy to a private Dovecot
//     LMTP (as root, with Debian's dovecot-lmtpd; -dovecot) against N
//     straight to that Dovecot, and the same against a go-smtp LMTP sink
//     that drops every message (the proxy's own cost);
//   - Postfix (as root, with Debian's postfix installed): smtp-source into a
//     private Postfix delivering to discard, without milter and with imipd
//     as milter over TCP and over a unix socket;
//   - PostgreSQL (with Debian's postgresql installed): REPLYs from 16
//     sessions through imipd child processes on bbolt, on a private
//     PostgreSQL cluster, and two imipds on that one database (pg.go).
//
// Targets are ratios within the run, never absolute times.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"imipd/calstore"
	"imipd/filter"
	"imipd/filter/milter"
	"imipd/itip"
)

var (
	quick      = flag.Bool("quick", false, "fewer messages (a smoke run)")
	postfixOpt = flag.String("postfix", "auto", "through real Postfix: auto (when root and installed), yes, no")
	imipdBin   = flag.String("imipd", "", "imipd binary for the child-process runs (default: built into a temporary directory)")
	mdOut      = flag.String("md", "", "also write the tables as Markdown to this file")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the load comparison (this process: load generator, in-process milter and LMTP proxy) to this file")
	reps       = flag.Int("reps", 5, "milter and LMTP comparisons: runs of each side per kind, in pairs back to back; the ratio is the median of the pairs' ratios")
	only       = flag.String("only", "", "run only these comparisons, comma-separated: milter, lmtp, rss, postfix, pg (default all)")
)

// part tells whether the comparison name runs (-only).
func part(name string) bool {
	return *only == "" || slices.Contains(strings.Split(*only, ","), name)
}

// report collects the tables printed at the end.
type report struct {
	sections []string
	targets  []string
}

func (r *report) table(title string, head []string, rows [][]string) {
	var b strings.Builder
	b.WriteString("### " + title + "\n\n| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	r.sections = append(r.sections, b.String())
	fmt.Println()
	fmt.Println(b.String())
}

func (r *report) target(name string, ok bool, measured string) {
	verdict := "NOT MET"
	if ok {
		verdict = "met"
	}
	line := fmt.Sprintf("| %s | %s | %s |", name, measured, verdict)
	r.targets = append(r.targets, line)
	fmt.Println("target:", line)
}

func main() {
	flag.Parse()
	*reps = max(*reps, 1)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	dir, err := os.MkdirTemp("", "imipd-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fatal(err)
	}
	r := &report{}
	fmt.Printf("imipd load comparison; temporary directory %s\n", dir)

	// imipd's milter on a synced store.
	proc, db, err := newProcessor(filepath.Join(dir, "inproc"), log)
	if err != nil {
		fatal(err)
	}
	m := milter.New(proc, milter.Options{}, log)
	imipdAddr, stopImipd, err := listenTCP(func(ln net.Listener) { _ = m.Serve(ln) })
	if err != nil {
		fatal(err)
	}
	baseAddr, stopBase, err := listenTCP(serveBaseline)
	if err != nil {
		fatal(err)
	}

	// The naive one-Write-per-message milter, on its own synced store.
	_, naiveDB, err := newProcessor(filepath.Join(dir, "naive"), log)
	if err != nil {
		fatal(err)
	}
	naiveAddr, stopNaive, err := listenTCP(serveOneWrite(naiveDB))
	if err != nil {
		fatal(err)
	}

	if part("milter") {
		milterComparison(r, baseAddr, imipdAddr, naiveAddr, db)
	}
	stopImipd()
	stopBase()
	stopNaive()
	naiveDB.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_ = m.Shutdown(ctx)
	cancel()

	if part("lmtp") {
		lmtpComparison(r, dir, log)
	}
	db.Close()

	bin := *imipdBin
	if bin == "" {
		bin = filepath.Join(dir, "imipd")
		if out, err := goBuild(bin, "./cmd/imipd"); err != nil {
			fatal(fmt.Errorf("go build ./cmd/imipd: %v\n%s", err, out))
		}
	}
	if part("rss") {
		rssComparison(r, dir, bin)
	}
	if part("postfix") {
		postfixComparison(r, dir, bin)
	}
	if part("pg") {
		pgComparison(r, dir, bin)
	}

	out := "## Load comparison\n\n" + strings.Join(r.sections, "\n") + "\n### Targets\n\n| target | measured | verdict |\n|---|---|---|\n" +
		strings.Join(r.targets, "\n") + "\n"
	fmt.Println()
	fmt.Println("### Targets")
	fmt.Println(strings.Join(r.targets, "\n"))
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(out), 0o644); err != nil {
			fatal(err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// newProcessor opens a synced store in dir with the organizer (policy
// always), the plain-mail recipient, and the organizer's event.
func newProcessor(dir string, log *slog.Logger) (*filter.Processor, *calstore.DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	db, err := calstore.Open(filepath.Join(dir, "imipd.db"), calstore.Options{})
	if err != nil {
		return nil, nil, err
	}
	if err := seedStore(db); err != nil {
		db.Close()
		return nil, nil, err
	}
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	return &filter.Processor{Store: db, Cfg: cfg, Log: log}, db, nil
}

func seedStore(db *calstore.DB) error {
	return db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: organizer, Policy: string(itip.Always)}); err != nil {
			return err
		}
		if err := tx.PutUser(calstore.User{Address: rcptPlain}); err != nil {
			return err
		}
		return tx.PutEvent(organizer, calstore.Event{UID: eventUID, Data: storedEvent()})
	})
}

// measureSyncRate is the synced one-Write-per-message rate, one writer:
// each Write stores an event the size of the organizer's.
func measureSyncRate(db *calstore.DB) float64 {
	n := 300
	if *quick {
		n = 50
	}
	data := storedEvent()
	start := time.Now()
	for i := range n {
		err := db.Write(context.Background(), func(tx calstore.Tx) error {
			return tx.PutEvent(rcptPlain, calstore.Event{UID: fmt.Sprintf("sync-%d@example.test", i), Data: data})
		})
		if err != nil {
			fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// milterComparison drives the baseline and imipd alternately. For the
// single-session REPLY run it also measures, in the same alternation (so
// all see the disk alike), the synced one-Write rate on imipd's store
// (measureSyncRate, a loop in process) and the naive milter that commits
// one Write per message (serveOneWrite, at naiveAddr).
func milterComparison(r *report, baseAddr, imipdAddr, naiveAddr string, db *calstore.DB) {
	type plan struct {
		k          kind
		n16, n1    int
		plainMail  bool
		replyCheck bool
	}
	scale := func(n int) int {
		if *quick {
			return max(n/10, 4)
		}
		return n
	}
	plans := []plan{
		{k: plainKind(), n16: scale(3000), n1: scale(600), plainMail: true},
		{k: htmlKind(), n16: scale(3000), n1: scale(600), plainMail: true},
		{k: attachmentKind("1 MB attachment", 1<<20), n16: scale(300), n1: scale(60), plainMail: true},
		{k: attachmentKind("20 MB attachment", 20<<20), n16: scale(64), n1: scale(16), plainMail: true},
		{k: replyKind(), n16: scale(2000), n1: scale(400), replyCheck: true},
	}
	var rows [][]string
	for _, p := range plans {
		for _, conc := range []int{16, 1} {
			n := p.n16
			if conc == 1 {
				n = p.n1
			}
			fmt.Printf("milter: %s, %d sessions, %d messages\n", p.k.name, conc, n)
			// Warm both, then baseline and imipd back to back, -reps times,
			// taking turns at going first. The ratio is the median of the
			// pairs' ratios (a pair sees the machine alike, so its drift over
			// the comparison cancels); rates and percentiles are over all
			// runs of a side pooled.
			plain := p.k
			plain.want = "" // the baseline and the naive milter add no header
			driveMilter("tcp", baseAddr, plain, min(n, 20), min(conc, 4))
			driveMilter("tcp", imipdAddr, p.k, min(n, 20), min(conc, 4))
			var bases, imps, naives []loadResult
			var syncRates []float64
			for rep := range *reps {
				if p.replyCheck && conc == 1 {
					syncRates = append(syncRates, measureSyncRate(db))
					naives = append(naives, driveMilter("tcp", naiveAddr, plain, n, conc))
				}
				b, i := pair(rep,
					func() loadResult { return driveMilter("tcp", baseAddr, plain, n, conc) },
					func() loadResult { return driveMilter("tcp", imipdAddr, p.k, n, conc) })
				bases, imps = append(bases, b), append(imps, i)
			}
			base, imp := pooled(bases), pooled(imps)
			ratio := medianRatio(imps, bases)
			add50, add99 := imp.pct(0.5)-base.pct(0.5), imp.pct(0.99)-base.pct(0.99)
			rows = append(rows, []string{p.k.name, fmt.Sprint(conc), fmt.Sprint(n),
				fmt.Sprintf("%.0f", base.rate()), fmt.Sprintf("%.0f", imp.rate()), fmt.Sprintf("%.2f", ratio),
				ms(base.pct(0.5)) + " / " + ms(base.pct(0.99)), ms(imp.pct(0.5)) + " / " + ms(imp.pct(0.99)),
				ms(add50) + " / " + ms(add99),
				fmt.Sprintf("%.0f", imp.allocs-base.allocs),
				fmt.Sprint(imp.errs + base.errs + imp.missing)})
			name := fmt.Sprintf("%s, %d session(s)", p.k.name, conc)
			switch {
			case p.plainMail && conc == 16:
				r.target("plain mail ≥ 0.9× baseline: "+name, ratio >= 0.9, fmt.Sprintf("%.2f×", ratio))
				r.target("plain mail p99 added < 1 ms: "+name, add99 < time.Millisecond, ms(add99)+" ms")
			case p.replyCheck && conc == 16:
				r.target("REPLY ≥ 0.4× baseline, 16 sessions", ratio >= 0.4, fmt.Sprintf("%.2f×", ratio))
				r.target("REPLY p99 < 20 ms, 16 sessions", imp.pct(0.99) < 20*time.Millisecond, ms(imp.pct(0.99))+" ms")
			case p.replyCheck && conc == 1:
				naive, syncRate := pooled(naives), median(syncRates)
				fmt.Printf("    synced store, one Write per message, one writer: %.0f/s; naive one-Write milter: %.0f/s (p50 %s ms)\n",
					syncRate, naive.rate(), ms(naive.pct(0.5)))
				rr := medianRatio(imps, naives)
				r.target("REPLY single session ≥ 0.8× a milter committing one synced Write per message", rr >= 0.8,
					fmt.Sprintf("%.2f× (%.0f/s vs %.0f/s)", rr, imp.rate(), naive.rate()))
				perRep := make([]float64, len(imps))
				for i, r := range imps {
					perRep[i] = r.rate() / syncRates[i]
				}
				rr = median(perRep)
				r.target("REPLY single session ≥ 0.8× the synced one-Write loop (no transport)", rr >= 0.8,
					fmt.Sprintf("%.2f× (%.0f/s vs %.0f/s)", rr, imp.rate(), syncRate))
			}
			if p.replyCheck && imp.sample != "" {
				fmt.Printf("    sample header: %s\n", imp.sample)
			}
		}
	}
	r.table("Milter: do-nothing go-milter baseline vs imipd (loopback TCP, new session per message)",
		[]string{"kind", "sessions", "messages", "baseline msg/s", "imipd msg/s", "ratio", "baseline p50 / p99 ms", "imipd p50 / p99 ms",
			"added p50 / p99 ms", "added allocs/msg", "errors"}, rows)
}

// goBuild builds a package of this module into out.
func goBuild(out, pkg string) ([]byte, error) {
	return runCmd(5*time.Minute, "", "go", "build", "-o", out, pkg)
}

var _ = io.Discard
