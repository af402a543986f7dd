//go:build bench

package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gomilter "github.com/d--j/go-milter"
	"golang.org/x/sys/unix"

	"imipd/calstore"
	"imipd/filter/milter"
)

// ---- the baseline: a go-milter server that does nothing ----

// serveBaseline serves a do-nothing go-milter server on ln, negotiating
// what imipd's milter negotiates (milter.ServerOptions: protocol 6,
// no replies before the end of the message, its macros at MAIL), with the same connection
// treatment (buffered reads, TCP_QUICKACK re-armed after every read), so
// the comparison isolates imipd's work.
func serveBaseline(ln net.Listener) {
	srv := gomilter.NewServer(append(milter.ServerOptions(),
		gomilter.WithMilter(func() gomilter.Milter { return gomilter.NoOpMilter{} }))...)
	_ = srv.Serve(quickAckListener{ln})
}

// serveOneWrite serves the naive calendar milter of issue 5 on ln: the
// do-nothing milter plus one synced Write per message at its end, which
// overwrites one event the size of the organizer's in db (as a REPLY
// changes the organizer's event). Its single-session rate is the synced
// one-Update-per-message rate as an MTA sees it: the same transport and one
// commit, without parsing, rules or group commit.
func serveOneWrite(db *calstore.DB) func(ln net.Listener) {
	return func(ln net.Listener) {
		m := oneWriteMilter{db: db, data: storedEvent()}
		srv := gomilter.NewServer(append(milter.ServerOptions(),
			gomilter.WithMilter(func() gomilter.Milter { return m }))...)
		_ = srv.Serve(quickAckListener{ln})
	}
}

type oneWriteMilter struct {
	gomilter.NoOpMilter
	db   *calstore.DB
	data []byte
}

func (m oneWriteMilter) EndOfMessage(gomilter.Modifier) (*gomilter.Response, error) {
	err := m.db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutEvent(rcptPlain, calstore.Event{UID: "one-write@example.test", Data: m.data})
	})
	if err != nil {
		return nil, err
	}
	return gomilter.RespAccept, nil
}

type quickAckListener struct{ net.Listener }

func (l quickAckListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	qc := &quickAckConn{Conn: c}
	if tc, ok := c.(*net.TCPConn); ok {
		qc.rc, _ = tc.SyscallConn()
	}
	qc.br = bufio.NewReaderSize(rawConn{qc}, 16<<10)
	return qc, nil
}

type quickAckConn struct {
	net.Conn
	rc syscall.RawConn
	br *bufio.Reader
}

func (c *quickAckConn) Read(p []byte) (int, error) { return c.br.Read(p) }

type rawConn struct{ c *quickAckConn }

func (r rawConn) Read(p []byte) (int, error) {
	n, err := r.c.Conn.Read(p)
	if n > 0 && r.c.rc != nil {
		_ = r.c.rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
		})
	}
	return n, err
}

// ---- the load generator ----

// loadResult is one run of one kind against one milter.
type loadResult struct {
	n       int
	wall    time.Duration
	lat     []time.Duration // per message, sorted
	allocs  float64         // mallocs per message in this process (client + in-process server)
	errs    int
	missing int // messages without the expected header
	sample  string
}

func (r loadResult) rate() float64 { return float64(r.n) / r.wall.Seconds() }

// fanOut runs the n deliveries of one load from conc workers, as every
// driver does: each worker gets its own deliver from newWorker (its own
// client, say) and calls it with the index of each delivery it takes;
// deliver returns that delivery's latency. fanOut returns the latencies,
// sorted, and the wall time.
func fanOut(n, conc int, newWorker func() func(i int64) time.Duration) ([]time.Duration, time.Duration) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deliver := newWorker()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				lat[i] = deliver(i)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	slices.Sort(lat)
	return lat, wall
}

func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p * float64(len(r.lat)-1))
	return r.lat[i]
}

// pair runs a and b back to back, b first on odd reps (the sides take
// turns at going first), and returns their results.
func pair(rep int, a, b func() loadResult) (ra, rb loadResult) {
	if rep%2 == 1 {
		rb = b()
		return a(), rb
	}
	ra = a()
	return ra, b()
}

// pooled is the runs of one side taken as one: the rate over their total
// wall time, the percentiles over every message.
func pooled(rs []loadResult) loadResult {
	var p loadResult
	var allocs float64
	for _, r := range rs {
		p.n += r.n
		p.wall += r.wall
		p.lat = append(p.lat, r.lat...)
		allocs += r.allocs * float64(r.n)
		p.errs += r.errs
		p.missing += r.missing
		if r.sample != "" {
			p.sample = r.sample
		}
	}
	if p.n > 0 {
		p.allocs = allocs / float64(p.n)
	}
	slices.Sort(p.lat)
	return p
}

// medianRatio is the median over the pairs of a[i].rate() / b[i].rate().
func medianRatio(a, b []loadResult) float64 {
	r := make([]float64, min(len(a), len(b)))
	for i := range r {
		r[i] = a[i].rate() / b[i].rate()
	}
	return median(r)
}

// median of v (0 when empty); v is left as it is.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// driveMilter sends n messages of kind k to the milter at network/addr
// from conc concurrent workers, a new milter session per message, as
// Postfix does (connect, helo, mail, rcpt, header fields, body chunks of at
// most 64 KiB, end of message).
func driveMilter(network, addr string, k kind, n, conc int) loadResult {
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var errs, missing atomic.Int64
	var sample atomic.Value
	lat, wall := fanOut(n, conc, func() func(int64) time.Duration {
		c := gomilter.NewClient(network, addr,
			gomilter.WithDialer(&net.Dialer{Timeout: 10 * time.Second}),
			gomilter.WithReadTimeout(120*time.Second),
			gomilter.WithWriteTimeout(120*time.Second),
			gomilter.WithoutDefaultMacros(),
			gomilter.WithMacroRequest(gomilter.StageConnect, []gomilter.MacroName{"j", gomilter.MacroDaemonName}),
			gomilter.WithMacroRequest(gomilter.StageMail, []gomilter.MacroName{gomilter.MacroQueueId}),
			gomilter.WithMacroRequest(gomilter.StageRcpt, []gomilter.MacroName{gomilter.MacroQueueId, gomilter.MacroRcptAddr}),
			gomilter.WithMacroRequest(gomilter.StageEOM, []gomilter.MacroName{gomilter.MacroQueueId}),
		)
		return func(i int64) time.Duration {
			m := k.gen(i)
			t0 := time.Now()
			hdr, err := milterMessage(c, m)
			d := time.Since(t0)
			if err != nil {
				if errs.Add(1) == 1 {
					fmt.Printf("    error: %v\n", err)
				}
				return d
			}
			if hdr != "" {
				sample.Store(hdr)
			}
			if k.want != "" && !strings.HasPrefix(hdr, k.want) {
				if missing.Add(1) <= 3 {
					fmt.Printf("    %s: header %q, want %s...\n", k.name, hdr, k.want)
				}
			}
			return d
		}
	})
	runtime.ReadMemStats(&ms1)
	r := loadResult{n: n, wall: wall, lat: lat, errs: int(errs.Load()), missing: int(missing.Load()),
		allocs: float64(ms1.Mallocs-ms0.Mallocs) / float64(n)}
	if s, ok := sample.Load().(string); ok {
		r.sample = s
	}
	return r
}

// milterMessage runs one session with one message, offering protocol 6
// with every option as Postfix does; it returns the value of the header the
// milter added ("" when none).
func milterMessage(c *gomilter.Client, m *message) (string, error) {
	macros := gomilter.NewMacroBag()
	macros.Set("j", "mx.example.test")
	macros.Set(gomilter.MacroDaemonName, "mx.example.test")
	macros.Set(gomilter.MacroQueueId, "4ABCDEF")
	macros.Set(gomilter.MacroRcptAddr, m.rcpt)
	s, err := c.Session(macros)
	if err != nil {
		return "", err
	}
	defer s.Close()
	cont := func(act *gomilter.Action, err error) error {
		if err != nil {
			return err
		}
		if act.Type != gomilter.ActionContinue {
			return fmt.Errorf("action %v, want continue", act)
		}
		return nil
	}
	if err := cont(s.Conn("client.remote.test", gomilter.FamilyInet, 40000, "192.0.2.7")); err != nil {
		return "", err
	}
	if err := cont(s.Helo("client.remote.test")); err != nil {
		return "", err
	}
	if err := cont(s.Mail(m.from, "")); err != nil {
		return "", err
	}
	if err := cont(s.Rcpt(m.rcpt, "")); err != nil {
		return "", err
	}
	if err := cont(s.DataStart()); err != nil {
		return "", err
	}
	for _, f := range m.fields {
		if err := cont(s.HeaderField(f[0], f[1], nil)); err != nil {
			return "", err
		}
	}
	if err := cont(s.HeaderEnd()); err != nil {
		return "", err
	}
	for b := m.body; len(b) > 0; {
		n := min(len(b), int(gomilter.DataSize64K))
		if err := cont(s.BodyChunk(b[:n])); err != nil {
			return "", err
		}
		b = b[n:]
	}
	mods, act, err := s.End()
	if err != nil {
		return "", fmt.Errorf("end: %w", err)
	}
	if act.Type != gomilter.ActionAccept {
		return "", fmt.Errorf("end: action %v", act)
	}
	for _, mod := range mods {
		if mod.Type == gomilter.ActionAddHeader {
			return mod.HeaderValue, nil
		}
	}
	return "", nil
}

// listenTCP opens a loopback listener and serves it with serve.
func listenTCP(serve func(net.Listener)) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go serve(ln)
	return ln.Addr().String(), func() { ln.Close() }, nil
}

// waitListen waits until something accepts on addr.
func waitListen(network, addr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %s: %v", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
