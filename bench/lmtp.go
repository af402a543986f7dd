//go:build bench

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"imipd/filter"
	"imipd/filter/lmtp"
)

// ---- an LMTP sink: accepts every recipient, reads and drops the message ----

type sinkSession struct{ rcpts []string }

func (s *sinkSession) Reset()                               { s.rcpts = s.rcpts[:0] }
func (s *sinkSession) Logout() error                        { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *sinkSession) Data(io.Reader) error { return errors.New("LMTPData expected") }
func (s *sinkSession) LMTPData(r io.Reader, st smtp.StatusCollector) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	for _, rc := range s.rcpts {
		st.SetStatus(rc, nil)
	}
	return nil
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

func startSink() (string, func()) {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{}, nil }))
	srv.LMTP = true
	srv.Domain = "sink.test"
	srv.ErrorLog = discardLog{}
	srv.MaxMessageBytes = 128 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }
}

// driveLMTP delivers n messages of kind k to addr from conc workers, one
// LMTP connection per message (as Postfix's lmtp client without a
// connection cache).
func driveLMTP(addr string, k kind, n, conc int) loadResult {
	var errs atomic.Int64
	lat, wall := fanOut(n, conc, func() func(int64) time.Duration {
		return func(i int64) time.Duration {
			m := k.gen(i)
			raw := m.raw()
			t0 := time.Now()
			if err := lmtpOne(addr, m.from, m.rcpt, raw); err != nil {
				if errs.Add(1) == 1 {
					fmt.Printf("    lmtp error: %v\n", err)
				}
			}
			return time.Since(t0)
		}
	})
	return loadResult{n: n, wall: wall, lat: lat, errs: int(errs.Load())}
}

func lmtpOne(addr, from, rcpt string, raw []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = 60*time.Second, 60*time.Second
	if err := c.Hello("mx.example.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		return err
	}
	return c.Quit()
}

// lmtpComparison: straight to an LMTP server vs through imipd's LMTP proxy
// to that same server, same run. The server is a real, private Dovecot
// (-dovecot=auto: when root and installed), and a do-nothing go-smtp sink,
// which shows the proxy's own overhead. The issue-5 target is measured
// against Dovecot; without it, against the sink standing in.
func lmtpComparison(r *report, dir string, log *slog.Logger) {
	proc, db, err := newProcessor(filepath.Join(dir, "lmtp"), log)
	if err != nil {
		fatal(err)
	}
	defer db.Close()
	n := 2000
	if *quick {
		n = 100
	}
	withDovecot := wantDovecot()
	if withDovecot {
		dc, err := startDovecot(dir, []string{organizer, rcptPlain})
		if err != nil {
			fatal(fmt.Errorf("dovecot: %w", err))
		}
		rows := lmtpRuns(r, proc, log, "dovecot", dc.addr(), n, "straight to Dovecot's LMTP")
		if h, err := dc.header(organizer, "X-IMIP-Processed"); err != nil || !strings.HasPrefix(h, "applied") {
			fmt.Printf("    dovecot: newest REPLY in %s's INBOX has header %q (%v), want applied...\n", organizer, h, err)
		} else {
			fmt.Printf("    dovecot: newest REPLY in %s's INBOX: X-IMIP-Processed: %s\n", organizer, h)
		}
		dc.stop()
		r.table("LMTP: straight to a private Dovecot's LMTP vs through imipd's LMTP proxy to it (16 connections, one per message)", lmtpHead, rows)
	}
	sink, stopSink := startSink()
	defer stopSink()
	target := ""
	if !withDovecot {
		target = "straight to the LMTP server (go-smtp LMTP sink standing in for Dovecot)"
	}
	rows := lmtpRuns(r, proc, log, "sink", sink, n, target)
	r.table("LMTP: straight to a do-nothing go-smtp LMTP sink vs through imipd's LMTP proxy to it (the proxy's own cost; 16 connections, one per message)", lmtpHead, rows)
}

var lmtpHead = []string{"kind", "messages", "straight msg/s", "via imipd msg/s", "ratio", "straight p50 / p99 ms", "via imipd p50 / p99 ms",
	"added p50 / p99 ms", "errors"}

// lmtpRuns compares straight deliveries to addr with deliveries through a
// proxy forwarding to addr, per kind: warm-up, then -reps pairs of a
// straight and a proxied run back to back (as milterComparison: the ratio
// is the median of the pairs' ratios, rates and percentiles are pooled). A
// target is recorded when target is not empty.
func lmtpRuns(r *report, proc *filter.Processor, log *slog.Logger, name, addr string, n int, target string) [][]string {
	px := lmtp.NewProxy(proc, lmtp.Options{Forward: "inet:" + addr, Domain: "imipd.test"}, log)
	pxAddr, stopPx, err := listenTCP(func(ln net.Listener) { _ = px.Serve(ln) })
	if err != nil {
		fatal(err)
	}
	defer func() {
		stopPx()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = px.Shutdown(ctx)
	}()
	var rows [][]string
	for _, k := range []kind{plainKind(), replyKind()} {
		fmt.Printf("lmtp (%s): %s, 16 connections, %d messages\n", name, k.name, n)
		driveLMTP(addr, k, 20, 4)
		driveLMTP(pxAddr, k, 20, 4)
		var directs, proxieds []loadResult
		for rep := range *reps {
			d, p := pair(rep, func() loadResult { return driveLMTP(addr, k, n, 16) }, func() loadResult { return driveLMTP(pxAddr, k, n, 16) })
			directs, proxieds = append(directs, d), append(proxieds, p)
		}
		direct, proxied := pooled(directs), pooled(proxieds)
		ratio := medianRatio(proxieds, directs)
		rows = append(rows, []string{k.name, fmt.Sprint(n), fmt.Sprintf("%.0f", direct.rate()), fmt.Sprintf("%.0f", proxied.rate()),
			fmt.Sprintf("%.2f", ratio), ms(direct.pct(0.5)) + " / " + ms(direct.pct(0.99)), ms(proxied.pct(0.5)) + " / " + ms(proxied.pct(0.99)),
			ms(proxied.pct(0.5)-direct.pct(0.5)) + " / " + ms(proxied.pct(0.99)-direct.pct(0.99)), fmt.Sprint(direct.errs + proxied.errs)})
		if target != "" {
			r.target("LMTP proxy ≥ 0.8× "+target+" ("+k.name+", 16 connections)", ratio >= 0.8, fmt.Sprintf("%.2f×", ratio))
		}
	}
	return rows
}
