//go:build bench

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"imipd/calstore"
	"imipd/calstore/pgstore"
	"imipd/calstore/pgstore/pgtest"
	"imipd/itip"
)

// pgComparison is issue 17's load comparison: REPLYs from 16 concurrent
// milter sessions through imipd child processes, (a) on bbolt, one imipd;
// (b) on PostgreSQL (a private cluster with fsync on, on this machine),
// one imipd; (c) two imipds on that one database, 8 sessions each, the
// same total. Two shapes: replies to 16 organizers' meetings, and all to
// one meeting (a big meeting's replies, one user's lock). Per shape the
// three runs take turns at going first, -reps times; the ratios are
// medians over the repetitions. Each run also reads the processor time
// of every imipd and of the server (pgtest.Cluster.CPU) and of this
// process (the load generator): how the machine's cores were shared.
func pgComparison(r *report, dir, bin string) {
	if _, err := pgtest.BinDir(); err != nil {
		fmt.Printf("pg: %v; skipped\n", err)
		return
	}
	cluster, err := pgtest.StartDurable()
	if err != nil {
		fatal(fmt.Errorf("pg: %w", err))
	}
	defer cluster.Stop()
	n := 1600
	if *quick {
		n = 160
	}
	type side struct {
		name     string
		children []*child
		res      []pgRun
	}
	var rows, cpuRows [][]string
	for _, shape := range []struct {
		name string
		orgs int
	}{{"16 organizers", 16}, {"one meeting", 1}} {
		base := filepath.Join(dir, fmt.Sprintf("pg-%d", shape.orgs))
		if err := os.MkdirAll(filepath.Join(base, "bbolt"), 0o755); err != nil {
			fatal(err)
		}
		db, err := calstore.Open(filepath.Join(base, "bbolt", "imipd.db"), calstore.Options{})
		if err != nil {
			fatal(err)
		}
		err = seedOrganizers(db, shape.orgs)
		db.Close()
		if err != nil {
			fatal(err)
		}
		ctx := context.Background()
		dsn, err := cluster.NewDatabase(ctx)
		if err != nil {
			fatal(fmt.Errorf("pg: %w", err))
		}
		ps, err := pgstore.Open(ctx, dsn)
		if err != nil {
			fatal(fmt.Errorf("pg: %w", err))
		}
		err = seedOrganizers(ps, shape.orgs)
		ps.Close()
		if err != nil {
			fatal(err)
		}
		pgConf := fmt.Sprintf("[store]\ndriver = \"postgres\"\ndsn = %q\n", dsn)
		start := func(name, extra string) *child {
			c, err := startChildConf(bin, filepath.Join(base, name), fmt.Sprintf("inet:127.0.0.1:%d", freePort()), extra)
			if err != nil {
				fatal(fmt.Errorf("imipd child %s: %w", name, err))
			}
			return c
		}
		bb, pa, pb := start("bbolt", ""), start("pg-a", pgConf), start("pg-b", pgConf)
		sides := []*side{{name: "bbolt", children: []*child{bb}}, {name: "pg1", children: []*child{pa}}, {name: "pg2", children: []*child{pa, pb}}}
		var seq atomic.Int64
		k := kind{name: "iMIP REPLY", want: string(itip.Applied), gen: func(int64) *message {
			i := seq.Add(1)
			o := int(i % int64(shape.orgs))
			org, uid := organizerOf(o, shape.orgs)
			return replyMessageTo(org, uid, i)
		}}
		for _, c := range []*child{bb, pa, pb} {
			network, addr := c.netAddr()
			driveMilter(network, addr, k, max(n/10, 20), 4) // warm-up
		}
		for rep := range *reps {
			for j := range sides {
				s := sides[(j+rep)%len(sides)] // each goes first in turn
				s.res = append(s.res, runPG(cluster, s.children, k, n, 16))
			}
		}
		for _, c := range []*child{bb, pa, pb} {
			c.stop()
		}
		ratio := func(a, b *side) float64 {
			v := make([]float64, len(a.res))
			for i := range v {
				v[i] = a.res[i].rate() / b.res[i].rate()
			}
			return median(v)
		}
		r1, r2 := ratio(sides[1], sides[0]), ratio(sides[2], sides[1])
		rate := func(s *side) string {
			v := make([]float64, len(s.res))
			for i, x := range s.res {
				v[i] = x.rate()
			}
			errs := 0
			for _, x := range s.res {
				errs += x.errs + x.missing
			}
			out := fmt.Sprintf("%.0f", median(v))
			if errs > 0 {
				out += fmt.Sprintf(" (%d errors)", errs)
			}
			return out
		}
		rows = append(rows, []string{shape.name, rate(sides[0]), rate(sides[1]), fmt.Sprintf("%.2f", r1), rate(sides[2]), fmt.Sprintf("%.2f", r2)})
		for _, s := range sides {
			c := medianCPU(s.res)
			imipds := make([]string, len(c.imipd))
			for i, d := range c.imipd {
				imipds[i] = fmt.Sprintf("%.0f", d)
			}
			server := "–"
			if s.name != "bbolt" {
				server = fmt.Sprintf("%.0f", c.server)
			}
			cpuRows = append(cpuRows, []string{shape.name, map[string]string{"bbolt": "bbolt, one imipd", "pg1": "PostgreSQL, one imipd", "pg2": "PostgreSQL, two imipds"}[s.name],
				fmt.Sprint(imipds), server, fmt.Sprintf("%.0f", c.load), fmt.Sprintf("%.0f", c.total())})
		}
		switch shape.orgs {
		case 16:
			r.target("REPLY at 16 sessions, 16 organizers: PostgreSQL ≥ 0.5× bbolt (imipd child processes)", r1 >= 0.5, fmt.Sprintf("%.2f×", r1))
		case 1:
			r.target("REPLY at 16 sessions, one meeting: PostgreSQL ≥ 0.25× bbolt (imipd child processes)", r1 >= 0.25, fmt.Sprintf("%.2f×", r1))
		}
	}
	r.table(fmt.Sprintf("PostgreSQL: REPLY at 16 milter sessions through imipd child processes, msg/s (%d messages a run, medians of %d)", n, *reps),
		[]string{"replies to", "bbolt, one imipd", "PostgreSQL, one imipd", "PG/bbolt", "PostgreSQL, two imipds (8 sessions each)", "two/one"}, rows)
	r.table("PostgreSQL: processor time per message, µs (medians; the two cores are shared by all)",
		[]string{"replies to", "store", "imipd (each)", "PostgreSQL server", "load generator", "total"}, cpuRows)
}

// organizerOf is the organizer and meeting UID of organizer o of orgs
// (one: the bench's organizer and event).
func organizerOf(o, orgs int) (string, string) {
	if orgs == 1 {
		return organizer, eventUID
	}
	return fmt.Sprintf("org%02d@example.test", o), fmt.Sprintf("allhands-%02d@example.test", o)
}

// seedOrganizers stores orgs organizers (policy always) with a meeting
// each.
func seedOrganizers(s calstore.Store, orgs int) error {
	return s.Write(context.Background(), func(tx calstore.Tx) error {
		for o := range orgs {
			org, uid := organizerOf(o, orgs)
			if err := tx.PutUser(calstore.User{Address: org, Policy: string(itip.Always)}); err != nil {
				return err
			}
			if err := tx.PutEvent(org, calstore.Event{UID: uid, Data: storedEventOf(org, uid)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// pgRun is one run of pgComparison: the load result over all children,
// and processor time per message, µs.
type pgRun struct {
	loadResult
	cpu pgCPU
}

type pgCPU struct {
	imipd        []float64 // per child
	server, load float64
}

func (c pgCPU) total() float64 {
	t := c.server + c.load
	for _, d := range c.imipd {
		t += d
	}
	return t
}

// runPG sends n messages of kind k split evenly over children, conc
// sessions in all, at once, and reads the processor time around it.
func runPG(cluster *pgtest.Cluster, children []*child, k kind, n, conc int) pgRun {
	self := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	proc := func(c *child) time.Duration {
		_, own, _, err := pgtest.ProcCPU(c.cmd.Process.Pid)
		if err != nil {
			fatal(err)
		}
		return own
	}
	server := func() time.Duration {
		d, err := cluster.CPU()
		if err != nil {
			fatal(err)
		}
		return d
	}
	kids0 := make([]time.Duration, len(children))
	for i, c := range children {
		kids0[i] = proc(c)
	}
	srv0, self0 := server(), self()
	results := make([]loadResult, len(children))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range children {
		network, addr := c.netAddr()
		wg.Go(func() { results[i] = driveMilter(network, addr, k, n/len(children), conc/len(children)) })
	}
	wg.Wait()
	wall := time.Since(start)
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	run := pgRun{loadResult: pooled(results)}
	run.wall = wall
	run.cpu.server = per(server() - srv0)
	run.cpu.load = per(self() - self0)
	for i, c := range children {
		run.cpu.imipd = append(run.cpu.imipd, per(proc(c)-kids0[i]))
	}
	return run
}

// medianCPU is the median of each figure over runs.
func medianCPU(runs []pgRun) pgCPU {
	pick := func(f func(pgRun) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		return median(v)
	}
	c := pgCPU{server: pick(func(r pgRun) float64 { return r.cpu.server }), load: pick(func(r pgRun) float64 { return r.cpu.load })}
	for i := range runs[0].cpu.imipd {
		c.imipd = append(c.imipd, pick(func(r pgRun) float64 { return r.cpu.imipd[i] }))
	}
	return c
}
