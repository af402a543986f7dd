// Package lmtp is imipd's LMTP proxy (RFC 2033): an MTA delivers to it,
// it has each message processed once (filter.Processor) and forwards to the
// real LMTP server a copy per distinct header value (docs/rules.md
// "Transports").
package lmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"imipd/filter"
	"imipd/filter/conn"
)

// Options configures the LMTP proxy (docs/rules.md "Transports").
type Options struct {
	Forward     string        // downstream LMTP server: "unix:/PATH" or "inet:HOST:PORT"
	Domain      string        // our greeting and LHLO name, default the host name
	maxMessage  int64         // largest message accepted, default 64 MiB
	ReadTimeout time.Duration // upstream: per command line, and per 4 KiB while DATA flows; default 5m
	// MaxConnections caps concurrent upstream connections, default 512,
	// and MaxConnectionsPerPeer those from one address (default
	// MaxConnections); at a cap the oldest idle one (no transaction) is
	// closed to make room, else the new one is closed at once (conn.Table).
	MaxConnections, MaxConnectionsPerPeer int
	// FirstReadTimeout bounds the wait for a new connection's first
	// command (LHLO, which an MTA sends at once), default 10 s.
	FirstReadTimeout time.Duration
	// TempFailOnError answers 451 for every recipient when processing fails
	// (store locked or full, timeout, panic) instead of forwarding the
	// message untagged (config on_error = "tempfail").
	TempFailOnError bool
	WriteTimeout    time.Duration // upstream: per reply; default 1m
	processTimeout  time.Duration // filter.Processor.Process per message; default 60s
	// PoolSize is how many idle downstream connections are kept for the
	// next transactions (default 32; negative: none, each
	// upstream session keeps its own as long as it lasts).
	PoolSize int
	// PoolIdle closes a downstream connection idle in the pool this long
	// (default 30 s).
	PoolIdle time.Duration
}

const (
	lmtpMaxRecipients = 1000     // per transaction (Postfix sends 50 by default)
	lmtpMaxLine       = 64 << 10 // command and message lines; Postfix folds at 998
	lmtpSpoolMemory   = 1 << 20  // a larger message is spooled to a temporary file
	lmtpDialTimeout   = 30 * time.Second
	lmtpQuitTimeout   = 2 * time.Second
)

// Replies the proxy makes itself (RFC 3463 enhanced codes). Every other
// reply is the downstream server's, passed on.
var (
	// The downstream server is unreachable or dropped the connection: the
	// recipient's fate is unknown, so the upstream tries again later.
	errDownstream = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: "Downstream LMTP server unavailable, try again later"}
	// A panic in the session: nothing was acknowledged.
	errInternal = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Internal error, try again later"}
	// Shutting down: no new transaction.
	errShutdown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down, try again later"}
	// The upstream stalled or vanished while sending the message.
	errUpstreamRead = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout or error reading the message, closing connection"}
	// A message line longer than lmtpMaxLine (RFC 5322 §2.1.1 allows 998).
	errLineTooLong = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message line too long"}
	// The message could not be stored for forwarding (temporary file).
	errSpool = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local error storing the message, try again later"}
)

// Proxy is the LMTP transport: an MTA (Postfix) delivers to it over LMTP
// (RFC 2033); it processes each message once for all recipients, and forwards
// to the real LMTP server (Dovecot) a copy per distinct header value, each
// carrying the outcomes of its own recipients only.
//
// Lifecycle of a session (one upstream connection):
//   - MAIL: a downstream connection is taken from the pool (or opened) and
//     MAIL is relayed; a downstream failure is 451 4.4.0. A pooled
//     connection found lost (before any recipient was accepted on it) is
//     replaced once by a new one.
//   - RCPT: relayed; the downstream's reply is returned as is, so an unknown
//     user is refused at RCPT time with the downstream's words.
//   - DATA: the message is read completely (at most maxMessage, else 552
//     for all), processed (filter.Processor.Process, transport "lmtp"), and
//     forwarded: one downstream transaction per distinct header value (all
//     recipients of plain mail share one). Each accepted recipient gets one
//     reply, in RCPT order (RFC 2033 §4.2): the downstream's own reply for
//     it, or 451 4.4.0 when the downstream failed or vanished before
//     answering. Nothing gets 2xx that the downstream did not accept.
//   - The transaction over (DATA answered, RSET, or the upstream gone), the
//     downstream connection goes back to the pool in a known state (all
//     replies read; RSET at its next use if a transaction may be open on
//     it). One that failed, or answered 421, is closed, never reused.
//   - A store failure in processing forwards the message untagged (forged
//     headers still removed) and logs; mail is never lost to imipd.
//   - A panic in the session is logged and gives 451 4.3.0 to every
//     recipient not answered yet.
//
// Duplicate RCPT of the same address is sent downstream once per copy and
// every duplicate gets that one reply.
type Proxy struct {
	p   *filter.Processor
	opt Options
	log *slog.Logger
	srv *smtp.Server
	// pool holds idle downstream connections between transactions.
	pool *pool

	mu      sync.Mutex
	closing bool
	conns   *conn.Table // of *lmtpConn
}

// NewProxy returns a proxy processing with p and forwarding to
// opt.Forward. Zero options take their defaults.
func NewProxy(p *filter.Processor, opt Options, log *slog.Logger) *Proxy {
	if opt.Domain == "" {
		opt.Domain, _ = os.Hostname()
		if opt.Domain == "" {
			opt.Domain = "imipd"
		}
	}
	if opt.maxMessage <= 0 {
		opt.maxMessage = 64 << 20
	}
	if opt.FirstReadTimeout <= 0 {
		opt.FirstReadTimeout = conn.DefaultFirstReadTimeout
	}
	if opt.ReadTimeout <= 0 {
		opt.ReadTimeout = 5 * time.Minute
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = time.Minute
	}
	if opt.processTimeout <= 0 {
		opt.processTimeout = 60 * time.Second
	}
	switch {
	case opt.PoolSize == 0:
		opt.PoolSize = defaultPoolSize
	case opt.PoolSize < 0:
		opt.PoolSize = 0
	}
	if opt.PoolIdle <= 0 {
		opt.PoolIdle = defaultPoolIdle
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("transport", "lmtp")
	l := &Proxy{p: p, opt: opt, log: log, conns: conn.NewTable("LMTP", opt.MaxConnections, opt.MaxConnectionsPerPeer, log),
		pool: newPool(opt.Forward, opt.Domain, opt.PoolSize, opt.PoolIdle, p.Time)}
	srv := smtp.NewServer(smtp.BackendFunc(l.newSession))
	srv.LMTP = true
	srv.Domain = opt.Domain
	srv.MaxMessageBytes = opt.maxMessage
	srv.MaxRecipients = lmtpMaxRecipients
	srv.MaxLineLength = lmtpMaxLine
	srv.ReadTimeout = opt.ReadTimeout
	srv.WriteTimeout = opt.WriteTimeout
	srv.ErrorLog = smtpLogger{log}
	l.srv = srv
	return l
}

// Serve accepts upstream connections on ln until Shutdown, after which it
// returns nil.
func (l *Proxy) Serve(ln net.Listener) error {
	l.mu.Lock()
	closing := l.closing
	l.mu.Unlock()
	if closing {
		ln.Close()
		return nil
	}
	return l.srv.Serve(&lmtpListener{Listener: ln, l: l})
}

// Shutdown stops accepting, closes idle connections at once, lets every
// transaction in progress finish (its connection is closed after the
// replies), and returns when all connections are gone. When ctx ends first,
// the remaining connections are cut (their recipients were not acknowledged,
// so the upstream delivers again) and ctx's error is returned.
func (l *Proxy) Shutdown(ctx context.Context) error {
	// Idle downstream connections end now; the ones in use when their
	// transaction ends.
	l.pool.close()
	l.mu.Lock()
	l.closing = true
	l.conns.Each(func(e conn.Evictable) {
		if c := e.(*lmtpConn); !c.txn {
			c.Conn.Close()
		}
	})
	l.mu.Unlock()
	err := l.srv.Shutdown(ctx)
	if ctx.Err() != nil {
		// go-smtp's Close after Shutdown does nothing: cut them here.
		l.mu.Lock()
		l.conns.Each(func(e conn.Evictable) {
			c := e.(*lmtpConn)
			c.Conn.Close()
			if c.sess != nil {
				c.sess.abort()
			}
		})
		l.mu.Unlock()
		return ctx.Err()
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

// lmtpListener tracks accepted connections for Shutdown.
type lmtpListener struct {
	net.Listener
	l *Proxy
}

func (ln *lmtpListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &lmtpConn{Conn: c, l: ln.l, firstBy: time.Now().Add(ln.l.opt.FirstReadTimeout)}
		ln.l.mu.Lock()
		closing := ln.l.closing
		ln.l.mu.Unlock()
		if closing || !ln.l.conns.Add(lc, c.RemoteAddr()) {
			c.Close()
			continue
		}
		return lc, nil
	}
}

// lmtpConn is an upstream connection; txn (under Proxy.mu) is set while
// a transaction is in progress, so Shutdown waits for it.
type lmtpConn struct {
	net.Conn
	l    *Proxy
	txn  bool         // under l.mu
	sess *lmtpSession // under l.mu
	once sync.Once
	// ended is set when a read from the upstream failed or hit its end: a
	// message whose reader ended cleanly after that was cut short (a BDAT
	// chunk shorter than announced; go-smtp reads a chunk through an
	// io.LimitReader, whose early end of file io.Copy does not report).
	ended atomic.Bool
	// busy mirrors txn, and evicted is set by EvictIdle: the conn.Table
	// reads them without l.mu (see EvictIdle).
	busy, evicted atomic.Bool
	// firstBy is when the first command must have arrived
	// (FirstReadTimeout); started is set by the first byte read.
	firstBy time.Time
	started atomic.Bool
}

// SetReadDeadline is go-smtp's deadline for the next command line, no
// later than firstBy until the client said anything.
func (c *lmtpConn) SetReadDeadline(t time.Time) error {
	if !c.started.Load() && (t.IsZero() || t.After(c.firstBy)) {
		t = c.firstBy
	}
	return c.Conn.SetReadDeadline(t)
}

// EvictIdle closes the connection unless a transaction is in progress
// (conn.Table). It runs under the table's lock, so it does not take l.mu:
// begin sets busy before it looks at evicted, evictIdle sets evicted
// before it looks at busy, so one of them backs off.
func (c *lmtpConn) EvictIdle() bool {
	if c.busy.Load() {
		return false
	}
	c.evicted.Store(true)
	if c.busy.Load() {
		c.evicted.Store(false)
		return false
	}
	_ = c.Conn.Close() // fails only when closed already
	return true
}

// Read closes the connection when a read times out. go-smtp reads command
// lines with bufio.Reader.ReadLine, which hands back a partial line with a
// nil error when the deadline passes mid-line: the timeout would be lost and
// a client dripping one byte at a time never cut (slowloris).
func (c *lmtpConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.ended.Store(true)
	}
	if n > 0 && !c.started.Load() {
		c.started.Store(true)
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		c.Conn.Close()
	}
	return n, err
}

func (c *lmtpConn) Close() error {
	c.once.Do(func() { c.l.conns.Remove(c) })
	return c.Conn.Close()
}

// closeRead stops reading from the upstream while the replies still go out.
func (c *lmtpConn) closeRead() {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok && cr.CloseRead() == nil {
		return
	}
	c.Conn.Close()
}

// begin marks a transaction started; false while shutting down.
func (c *lmtpConn) begin() bool {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.l.closing {
		return false
	}
	c.txn = true
	c.busy.Store(true)
	if c.evicted.Load() {
		c.txn = false
		c.busy.Store(false)
		return false
	}
	return true
}

// end marks the transaction over; while shutting down the connection is
// closed (the replies are already written).
func (c *lmtpConn) end() {
	c.l.mu.Lock()
	c.txn = false
	c.busy.Store(false)
	closing := c.l.closing
	c.l.mu.Unlock()
	if closing {
		c.Conn.Close()
	}
}

func (l *Proxy) newSession(c *smtp.Conn) (smtp.Session, error) {
	s := &lmtpSession{l: l, remote: c.Conn().RemoteAddr()}
	if lc, ok := c.Conn().(*lmtpConn); ok {
		s.conn = lc
		l.mu.Lock()
		lc.sess = s
		l.mu.Unlock()
	}
	return s, nil
}

// lmtpSession is one upstream connection's state. go-smtp calls Mail, Rcpt
// and Reset on the connection's goroutine and LMTPData on another (while the
// connection goroutine waits, or, with BDAT, while it still reads chunks);
// op serialises them. Logout may also come from Shutdown's forced close, so
// what it reads is under mu.
//
// The downstream connection is taken from the pool at MAIL and given back
// when the transaction ends (Reset, which go-smtp calls after DATA and on
// RSET), so upstream sessions share a few downstream connections.
type lmtpSession struct {
	l       *Proxy
	remote  net.Addr
	logOnce sync.Once
	log_    *slog.Logger
	conn    *lmtpConn // nil when not served through Serve

	op       sync.Mutex
	inTxn    bool // MAIL accepted
	from     string
	mailOpts smtp.MailOptions
	rcpts    []string // accepted, in RCPT order (go-smtp's list)
	txnOpen  bool     // the downstream has our MAIL and every accepted RCPT

	mu     sync.Mutex
	down   *downstream // written under mu by op holders only
	closed bool
}

// log is the session's logger (made on first use: most sessions log nothing).
func (s *lmtpSession) log() *slog.Logger {
	s.logOnce.Do(func() { s.log_ = s.l.log.With("remote", s.remote.String()) })
	return s.log_
}

var errNestedMail = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command"}

func (s *lmtpSession) Mail(from string, opts *smtp.MailOptions) error {
	s.op.Lock()
	defer s.op.Unlock()
	if s.inTxn {
		return errNestedMail
	}
	if s.conn != nil && !s.conn.begin() {
		return errShutdown
	}
	s.from, s.rcpts = from, nil
	s.mailOpts = smtp.MailOptions{}
	if opts != nil {
		s.mailOpts.Size = opts.Size
	}
	if err := s.openTxn(); err != nil {
		if s.conn != nil {
			s.conn.end()
		}
		return err
	}
	s.inTxn = true
	return nil
}

// gone says whether err means the downstream connection is lost: an I/O
// error, or a 421 reply (RFC 5321 §3.8: the server closes the channel).
func gone(err error) bool {
	var se *smtp.SMTPError
	return !errors.As(err, &se) || se.Code == 421
}

// openTxn starts a downstream transaction with our MAIL, on the session's
// connection or one from the pool (RSET first when a transaction may be
// open on it). A connection that carried an earlier transaction and turns
// out lost is replaced once by a new one: nothing was accepted on it.
func (s *lmtpSession) openTxn() error {
	s.txnOpen = false
	fresh := false
	for {
		if s.down == nil {
			if err := s.acquire(fresh); err != nil {
				s.log().Warn("downstream LMTP connect failed", "forward", s.l.opt.Forward, "err", err)
				return errDownstream
			}
		}
		d := s.down
		var err error
		if d.dirty {
			err = d.c.Reset()
			if err != nil && !gone(err) {
				err = fmt.Errorf("RSET: %w", err) // not a state to reuse: treat as lost
			}
		}
		if err == nil {
			d.dirty = false
			err = d.c.Mail(s.from, &s.mailOpts)
		}
		if err == nil {
			s.txnOpen, d.dirty = true, true
			return nil
		}
		if !gone(err) {
			d.dirty = true
			return err.(*smtp.SMTPError)
		}
		used := d.used
		s.drop()
		if !used || fresh {
			s.log().Warn("downstream LMTP failed at MAIL", "err", err)
			return errDownstream
		}
		fresh = true
	}
}

// acquire sets s.down: a connection from the pool, or a new one when fresh.
func (s *lmtpSession) acquire(fresh bool) error {
	var d *downstream
	var err error
	if fresh {
		d, err = s.l.pool.dial()
	} else {
		d, err = s.l.pool.get()
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.down = d
	}
	s.mu.Unlock()
	if closed {
		s.l.pool.put(d)
		return errors.New("session closed")
	}
	return nil
}

func (s *lmtpSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.op.Lock()
	defer s.op.Unlock()
	if !s.txnOpen || s.down == nil {
		return errDownstream
	}
	for retried := false; ; retried = true {
		err := s.down.c.Rcpt(to, nil)
		if err == nil {
			s.rcpts = append(s.rcpts, to)
			return nil
		}
		if !gone(err) {
			return err
		}
		used := s.down.used
		s.drop()
		if retried || !used || len(s.rcpts) > 0 {
			s.log().Warn("downstream LMTP failed at RCPT", "err", err)
			return errDownstream
		}
		// A pooled connection lost before any recipient was accepted on
		// it: the transaction again on a new one.
		s.log().Info("pooled downstream LMTP connection lost, retrying on a new one", "err", err)
		if err := s.openTxn(); err != nil {
			return err
		}
	}
}

func (s *lmtpSession) Data(r io.Reader) error {
	// Not called: go-smtp uses LMTPData in LMTP mode.
	return errInternal
}

// Reset ends the transaction; the downstream connection goes back to the
// pool (a transaction left open on it is reset at its next MAIL). With
// pooling off the session keeps it.
func (s *lmtpSession) Reset() {
	s.op.Lock()
	s.inTxn, s.txnOpen = false, false
	s.from, s.rcpts = "", nil
	var d *downstream
	s.mu.Lock()
	if s.down != nil {
		s.down.used = true
		if s.l.pool.size > 0 {
			d, s.down = s.down, nil
		}
	}
	s.mu.Unlock()
	s.op.Unlock()
	if d != nil {
		s.l.pool.put(d)
	}
	if s.conn != nil {
		s.conn.end()
	}
}

func (s *lmtpSession) Logout() error {
	if s.op.TryLock() {
		// Nothing in flight: the downstream is in a known state.
		s.txnOpen = false
		s.mu.Lock()
		s.closed = true
		d := s.down
		s.down = nil
		s.mu.Unlock()
		s.op.Unlock()
		if d != nil {
			s.l.pool.put(d)
		}
		return nil
	}
	// Forced close while in use: the user's next read fails and drops it.
	s.abort()
	return nil
}

// abort cuts the downstream connection (Shutdown's forced close).
func (s *lmtpSession) abort() {
	s.mu.Lock()
	s.closed = true
	d := s.down
	s.mu.Unlock()
	if d != nil {
		d.conn.Close()
	}
}

// drop closes a broken downstream connection (or one in an unknown state).
func (s *lmtpSession) drop() {
	s.mu.Lock()
	d := s.down
	s.down = nil
	s.mu.Unlock()
	s.txnOpen = false
	if d != nil {
		d.c.Close()
	}
}

// LMTPData reads the message, processes it and forwards the copies. Every
// accepted recipient gets its status set here; the returned error (a 451)
// only covers a recipient that somehow got none, so no path can give 2xx
// without the downstream's 2xx.
func (s *lmtpSession) LMTPData(r io.Reader, status smtp.StatusCollector) (err error) {
	s.op.Lock()
	defer s.op.Unlock()
	defer func() { s.txnOpen = false }()
	defer conn.Recover(func(pn *conn.Panic) {
		s.log().Error("panic in LMTP session", "panic", pn)
		s.drop()
		err = errInternal // go-smtp gives it to every recipient not answered yet
	})()
	rcpts := s.rcpts

	sp := newSpool()
	defer sp.Close()
	in := r
	if s.conn != nil {
		in = &deadlineReader{r: r, c: s.conn, d: s.l.opt.ReadTimeout}
	}
	buf := copyBufs.Get().(*[]byte)
	_, cerr := io.CopyBuffer(sp, in, *buf)
	copyBufs.Put(buf)
	if err := cerr; err != nil {
		switch {
		case errors.Is(err, smtp.ErrDataTooLarge):
			s.log().Info("message refused: over the size limit", "max", s.l.opt.maxMessage, "from", s.from)
			return smtp.ErrDataTooLarge
		case errors.Is(err, smtp.ErrTooLongLine):
			s.log().Info("message refused: line too long", "from", s.from)
			return errLineTooLong
		case errors.Is(err, smtp.ErrDataReset):
			return err // BDAT aborted by RSET or a closed connection
		case errors.Is(err, errSpoolWrite):
			s.log().Error("cannot spool message", "err", err)
			return errSpool
		}
		s.log().Info("upstream stopped sending the message", "err", err)
		if s.conn != nil {
			s.conn.closeRead()
		}
		return errUpstreamRead
	}
	if s.conn != nil && s.conn.ended.Load() {
		// The upstream's connection ended before the message did: a BDAT
		// chunk cut short. A failed transaction: nothing is processed or
		// forwarded (the client, without a reply, sends it again).
		s.log().Info("upstream closed the connection inside the message; nothing delivered", "from", s.from, "bytes", sp.n)
		return errUpstreamRead
	}

	values := s.process(sp, rcpts)
	if values == nil {
		for _, rc := range rcpts {
			status.SetStatus(rc, errProcessing)
		}
		return errProcessing
	}
	statuses := s.deliver(sp, rcpts, values)
	for _, rc := range rcpts {
		st := statuses[rc]
		if st == nil {
			st = errDownstream
		}
		status.SetStatus(rc, st)
	}
	return errDownstream
}

// process runs the processing call and returns each recipient's header
// value ("" for none). A store failure or panic leaves every copy untagged,
// or, with TempFailOnError, returns nil: nothing is forwarded, every
// recipient gets 451.
func (s *lmtpSession) process(sp *spool, rcpts []string) map[string]string {
	ctx, cancel := context.WithTimeout(context.Background(), s.l.opt.processTimeout)
	defer cancel()
	d := filter.Delivery{MailFrom: s.from, Rcpts: rcpts, Transport: "lmtp", Received: s.l.p.Time(), Message: sp.Reader()}
	rep, err := safeProcess(ctx, s.l.p, d)
	if err != nil {
		if s.l.opt.TempFailOnError {
			s.log().Error("processing failed, message temporarily refused (on_error = tempfail)", "from", s.from, "err", err)
			return nil
		}
		s.log().Error("processing failed, message forwarded untagged", "from", s.from, "err", err)
		return map[string]string{}
	}
	values := make(map[string]string, len(rcpts))
	for _, rc := range rcpts {
		values[rc] = rep.HeaderFor(rc)
	}
	return values
}

// safeProcess is p.Process with a panic in it returned as an error, for
// the error policy to apply.
func safeProcess(ctx context.Context, p *filter.Processor, d filter.Delivery) (rep *filter.Report, err error) {
	defer conn.Recover(func(pn *conn.Panic) { err = fmt.Errorf("processing: %w\n%s", pn, pn.Stack) })()
	return p.Process(ctx, d)
}

// deliver forwards one copy per distinct header value and returns each
// recipient's downstream status (a 250 status is an *smtp.SMTPError with
// code 250, which go-smtp writes as it is).
func (s *lmtpSession) deliver(sp *spool, rcpts []string, values map[string]string) map[string]error {
	type group struct {
		value string
		rcpts []string
	}
	var groups []*group
	byValue := map[string]*group{}
	seen := map[string]bool{}
	for _, rc := range rcpts {
		if seen[rc] {
			continue
		}
		seen[rc] = true
		v := values[rc]
		g := byValue[v]
		if g == nil {
			g = &group{value: v}
			byValue[v] = g
			groups = append(groups, g)
		}
		g.rcpts = append(g.rcpts, rc)
	}
	statuses := map[string]error{}
	reuse := len(groups) == 1 && s.txnOpen && len(seen) == len(rcpts)
	for _, g := range groups {
		if reuse {
			s.data(sp, g.rcpts, g.value, statuses)
			continue
		}
		if err := s.openTxn(); err != nil {
			for _, rc := range g.rcpts {
				statuses[rc] = err
			}
			continue
		}
		var ok []string
		for _, rc := range g.rcpts {
			if s.down == nil {
				statuses[rc] = errDownstream
				continue
			}
			err := s.down.c.Rcpt(rc, nil)
			switch {
			case err == nil:
				ok = append(ok, rc)
			case !gone(err):
				statuses[rc] = relayed(err.(*smtp.SMTPError))
			default:
				s.log().Warn("downstream LMTP failed at RCPT", "err", err)
				s.drop()
				statuses[rc] = errDownstream
			}
		}
		if len(ok) > 0 && s.down != nil {
			s.data(sp, ok, g.value, statuses)
		}
	}
	s.txnOpen = false
	if len(groups) > 1 || values[rcpts[0]] != "" {
		s.log().Info("delivered", "from", s.from, "copies", len(groups), "statuses", statusSummary(rcpts, statuses))
	}
	return statuses
}

// data sends one copy to the open downstream transaction whose recipients
// are rcpts, and records their statuses.
func (s *lmtpSession) data(sp *spool, rcpts []string, value string, statuses map[string]error) {
	fail := func(err error) {
		for _, rc := range rcpts {
			if statuses[rc] == nil {
				statuses[rc] = err
			}
		}
	}
	d := s.down
	if d == nil {
		fail(errDownstream)
		return
	}
	w, err := d.c.Data()
	if err != nil {
		if !gone(err) {
			fail(relayed(err.(*smtp.SMTPError)))
			return
		}
		s.log().Warn("downstream LMTP failed at DATA", "err", err)
		s.drop()
		fail(errDownstream)
		return
	}
	if err := filter.WriteTagged(w, sp.Reader(), s.l.p.HeaderName(), value); err != nil {
		s.log().Warn("downstream LMTP failed while sending the message", "err", err)
		s.drop()
		fail(errDownstream)
		return
	}
	resp, err := w.CloseWithLMTPResponse()
	for _, rc := range rcpts {
		if r, ok := resp[rc]; ok {
			statuses[rc] = okStatus(r.StatusText)
		}
	}
	closing := false
	var perRcpt smtp.LMTPDataError
	if errors.As(err, &perRcpt) {
		for rc, se := range perRcpt {
			statuses[rc] = relayed(se)
			closing = closing || se.Code == 421
		}
	}
	switch _, only := err.(smtp.LMTPDataError); {
	case err != nil && !only:
		// The connection failed before every reply came: the rest get 451.
		s.log().Warn("downstream LMTP failed after the message", "err", err)
		s.drop()
	case closing:
		s.drop() // the server closes the connection after a 421
	default:
		d.dirty = false // the transaction is complete
	}
	fail(errDownstream)
}

// okStatus turns the downstream's 250 text ("2.0.0 <rcpt> Saved") into the
// reply passed upstream; go-smtp prefixes "<rcpt> " itself.
func okStatus(text string) error {
	ec, msg := smtp.EnhancedCodeNotSet, text
	if code, rest, ok := strings.Cut(text, " "); ok {
		if c, ok := parseEnhanced(code); ok {
			ec, msg = c, rest
		}
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: ec, Message: stripRcpt(msg)}
}

// parseEnhanced parses an RFC 3463 code "a.b.c" (digits only).
func parseEnhanced(s string) (smtp.EnhancedCode, bool) {
	var ec smtp.EnhancedCode
	for i := range ec {
		var part string
		var more bool
		part, s, more = strings.Cut(s, ".")
		if part == "" || len(part) > 3 || more != (i < 2) {
			return ec, false
		}
		for _, r := range part {
			if r < '0' || r > '9' {
				return ec, false
			}
			ec[i] = ec[i]*10 + int(r-'0')
		}
	}
	return ec, true
}

// relayed is a downstream error passed on for one recipient in the DATA
// replies.
func relayed(se *smtp.SMTPError) error {
	return &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode, Message: stripRcpt(se.Message)}
}

func stripRcpt(msg string) string {
	if strings.HasPrefix(msg, "<") {
		if i := strings.Index(msg, "> "); i > 0 && !strings.Contains(msg[:i], " ") {
			return msg[i+2:]
		}
	}
	return msg
}

func statusSummary(rcpts []string, st map[string]error) []string {
	out := make([]string, 0, len(rcpts))
	for _, rc := range rcpts {
		code := 0
		var se *smtp.SMTPError
		if errors.As(st[rc], &se) {
			code = se.Code
		}
		out = append(out, fmt.Sprintf("%s=%d", rc, code))
	}
	return out
}

// copyBufs are LMTPData's buffers for spooling (32 KiB each, reused).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// deadlineReader renews the upstream read deadline while a message keeps
// coming, so it may take longer than ReadTimeout in all (go-smtp sets the
// deadline only when reading a command line). It renews only after
// minProgress bytes arrived since the last renewal: a client dripping a byte
// at a time is cut after ReadTimeout (slowloris).
type deadlineReader struct {
	r    io.Reader
	c    net.Conn
	d    time.Duration
	got  int
	init bool
}

const minProgress = 4 << 10

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.d > 0 && (!d.init || d.got >= minProgress) {
		d.c.SetReadDeadline(time.Now().Add(d.d))
		d.init, d.got = true, 0
	}
	n, err := d.r.Read(p)
	d.got += n
	return n, err
}

var errSpoolWrite = errors.New("spool")

// errProcessing answers a message imipd could not process when on_error is
// tempfail: the MTA keeps it queued and retries.
var errProcessing = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Calendar processing temporarily unavailable, try again later"}

// spool holds one message: in memory up to lmtpSpoolMemory, then in a
// temporary file (removed on Close). When no file can be made it keeps
// going in memory (the size is capped by maxMessage).
type spool struct {
	buf bytes.Buffer
	f   *os.File
	n   int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && s.buf.Len()+len(p) > lmtpSpoolMemory {
		if f, err := os.CreateTemp("", "imipd-lmtp-*"); err == nil {
			os.Remove(f.Name()) // unlinked: gone with the descriptor
			if _, err := f.Write(s.buf.Bytes()); err != nil {
				f.Close()
				return 0, fmt.Errorf("%w: %v", errSpoolWrite, err)
			}
			s.f = f
			s.buf = bytes.Buffer{}
		}
	}
	var n int
	var err error
	if s.f != nil {
		n, err = s.f.Write(p)
		if err != nil {
			err = fmt.Errorf("%w: %v", errSpoolWrite, err)
		}
	} else {
		n, err = s.buf.Write(p)
	}
	s.n += int64(n)
	return n, err
}

// Reader reads the whole message from the start; each call is independent.
func (s *spool) Reader() io.Reader {
	if s.f != nil {
		return io.NewSectionReader(s.f, 0, s.n)
	}
	return bytes.NewReader(s.buf.Bytes())
}

// Close removes the temporary file, if any; the spool is not used again
// (its memory is, by the next message's newSpool).
func (s *spool) Close() {
	if s.f != nil {
		s.f.Close()
	}
	if s.buf.Cap() <= lmtpSpoolKeep {
		s.buf.Reset()
		s.f, s.n = nil, 0
		spools.Put(s)
	}
}

// spools are spools whose memory is kept for the next message.
var spools = sync.Pool{New: func() any { return new(spool) }}

// lmtpSpoolKeep: a spool's memory up to this is kept for reuse.
const lmtpSpoolKeep = 256 << 10

func newSpool() *spool { return spools.Get().(*spool) }

// smtpLogger sends go-smtp's internal messages to slog.
type smtpLogger struct{ log *slog.Logger }

func (l smtpLogger) Printf(format string, v ...any) {
	l.log.Warn("lmtp server", "msg", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l smtpLogger) Println(v ...any) {
	l.log.Warn("lmtp server", "msg", strings.TrimSpace(fmt.Sprintln(v...)))
}
