package filter

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-milter"

	"imipd/calstore"
)

// MilterOptions configure the milter adapter. Zero fields take the defaults
// named on each field.
type MilterOptions struct {
	// Header is the outcome header's name (config `header`), default
	// X-IMIP-Processed.
	Header string

	// MaxMessage bounds the bytes of headers and body buffered for one
	// message, default 64 MiB. A larger message is not processed: the rest
	// of its body is read and dropped, forged copies of Header are still
	// removed, no header is added, and the message is accepted.
	MaxMessage int64

	// ReadTimeout bounds each read from the MTA, default 5 minutes;
	// WriteTimeout each write, default 1 minute. go-milter v0.5.0 sets no
	// deadlines of its own.
	ReadTimeout, WriteTimeout time.Duration

	// ProcessTimeout bounds Processor.Process at the end of a message,
	// default 60 s: shorter than Postfix's milter_content_timeout (300 s),
	// so imipd accepts the message (tagged "error") before Postfix gives up
	// on the milter.
	ProcessTimeout time.Duration

	// OutgoingDaemons are {daemon_name} values that mark mail submitted
	// locally (Postfix's non_smtpd_milters: sendmail(1), pickup), default
	// ["pickup"]; an empty non-nil slice means none. Postfix sends
	// $milter_macro_daemon_name, which is $myhostname unless master.cf
	// overrides it for the cleanup service pickup uses.
	OutgoingDaemons []string
}

// Milter defaults.
const (
	DefaultMilterMaxMessage     = 64 << 20
	DefaultMilterReadTimeout    = 5 * time.Minute
	DefaultMilterWriteTimeout   = time.Minute
	DefaultMilterProcessTimeout = 60 * time.Second
)

// Milter macros read (sendmail's names, as Postfix sends them; see postconf(5)
// milter_*_macros for the stage each is sent at).
const (
	macroQueueID    = "i"             // mail, rcpt, data, eoh, eom
	macroAuthAuthen = "{auth_authen}" // mail: SASL login name, empty when not authenticated
	macroDaemonName = "{daemon_name}" // connect: $milter_macro_daemon_name
)

// Milter is the milter adapter (SPEC "Transports") on go-milter. One Milter
// serves any number of listeners and connections, each connection any number
// of messages.
//
// Callback lifecycle (go-milter v0.5.0, session.go): go-milter asks
// NewMilter for a fresh callback object per connection and again after every
// message it answered with a non-continue response (our accept at end of
// body), so per-message state lives in that object, and per-connection
// state ({daemon_name}, sent once at connect) in the connection. Abort keeps
// the object: it and MailFrom reset the message state. go-milter replaces its
// macro map at every macro packet, so each callback picks what it needs from
// the macros of its own stage.
//
// Every callback continues and the end of message accepts: an internal
// failure or a panic is logged, and the message goes on (tagged "error" when
// processing failed). imipd never rejects or tempfails mail.
type Milter struct {
	p   *Processor
	opt MilterOptions
	log *slog.Logger

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*milterConn]struct{}
	wg        sync.WaitGroup // live connections and processing calls
}

// NewMilter returns a milter adapter for p. A nil log discards.
func NewMilter(p *Processor, opt MilterOptions, log *slog.Logger) *Milter {
	if opt.Header == "" {
		opt.Header = "X-IMIP-Processed"
	}
	if opt.MaxMessage <= 0 {
		opt.MaxMessage = DefaultMilterMaxMessage
	}
	if opt.ReadTimeout <= 0 {
		opt.ReadTimeout = DefaultMilterReadTimeout
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultMilterWriteTimeout
	}
	if opt.ProcessTimeout <= 0 {
		opt.ProcessTimeout = DefaultMilterProcessTimeout
	}
	if opt.OutgoingDaemons == nil {
		opt.OutgoingDaemons = []string{"pickup"}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Milter{
		p: p, opt: opt, log: log.With("transport", "milter"),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*milterConn]struct{}{},
	}
}

// Serve accepts milter connections on ln until Shutdown, then returns nil.
// Other errors of ln are returned; temporary ones are retried.
func (m *Milter) Serve(ln net.Listener) error {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return errors.Join(ln.Close())
	}
	m.listeners[ln] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.listeners, ln)
		m.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if m.isClosing() {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				m.log.Warn("milter accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("milter: accept: %w", err)
		}
		delay = 0
		c := m.track(nc)
		if c == nil {
			nc.Close()
			return nil
		}
		go m.serveConn(c)
	}
}

// Shutdown stops accepting, closes connections that are between messages,
// and waits for messages in progress to finish (or ctx: then the remaining
// connections are closed and ctx's error returned; Postfix applies the
// milter's default_action to those messages).
func (m *Milter) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	var errs []error
	for ln := range m.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for c := range m.conns {
		c.shutdown()
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return errors.Join(errs...)
	case <-ctx.Done():
		m.mu.Lock()
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		return ctx.Err()
	}
}

func (m *Milter) isClosing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// track registers a new connection, or returns nil when shutting down.
func (m *Milter) track(nc net.Conn) *milterConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return nil
	}
	c := newMilterConn(nc, m.opt)
	m.conns[c] = struct{}{}
	m.wg.Add(1)
	return c
}

// serveConn runs go-milter's session on one connection. go-milter's Server
// has no per-connection hook (NewMilter takes no argument), so each
// connection gets its own Server over a one-connection listener; Serve
// returns once go-milter closed the connection.
func (m *Milter) serveConn(c *milterConn) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
	}()
	srv := &milter.Server{
		NewMilter: func() milter.Milter { return &milterSession{m: m, c: c} },
		// Protocol version 2 (go-milter answers no other): add and
		// change/delete headers; no HELO and end-of-header events (nothing
		// needed there, a round trip saved).
		Actions:  milter.OptAddHeader | milter.OptChangeHeader,
		Protocol: milter.OptNoHelo | milter.OptNoEOH,
	}
	if err := srv.Serve(&oneConnListener{c: c}); err != nil && !errors.Is(err, net.ErrClosed) {
		m.log.Warn("milter connection", "err", err)
	}
}

// milterConn wraps an MTA connection: a deadline on every read and write,
// TCP_QUICKACK re-armed after every read on TCP (postfix-dovecot-notes.md
// "the 40 ms stall"), buffered reads (go-milter reads a packet's length and
// data with two calls), and the shutdown state.
type milterConn struct {
	net.Conn
	rto, wto time.Duration
	rc       syscall.RawConn // TCP: for TCP_QUICKACK; else nil
	br       *bufio.Reader

	mu        sync.Mutex
	inMessage bool // between MAIL FROM and the end of message (or abort)
	closing   bool // Shutdown: close when between messages

	daemonName string // connect macro; only the session goroutine uses it

	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

func newMilterConn(nc net.Conn, opt MilterOptions) *milterConn {
	c := &milterConn{Conn: nc, rto: opt.ReadTimeout, wto: opt.WriteTimeout, rc: quickAckConn(nc), done: make(chan struct{})}
	c.br = bufio.NewReaderSize(rawReader{c}, 16<<10)
	return c
}

func (c *milterConn) Read(p []byte) (int, error) {
	if c.idleClosing() {
		return 0, io.EOF
	}
	n, err := c.br.Read(p)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() && c.idleClosing() {
		err = io.EOF // cut by Shutdown, not a stall
	}
	return n, err
}

func (c *milterConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.wto)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *milterConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return c.Conn.Close()
}

func (c *milterConn) idleClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing && !c.inMessage
}

func (c *milterConn) setInMessage(v bool) {
	c.mu.Lock()
	c.inMessage = v
	c.mu.Unlock()
}

// shutdown marks the connection to close at the next message boundary and
// wakes a read waiting between messages.
func (c *milterConn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	if !c.inMessage {
		_ = c.Conn.SetReadDeadline(time.Now()) // fails only on a closed conn
	}
}

// rawReader is the connection below the buffer: deadline, read, quick ACK.
type rawReader struct{ c *milterConn }

func (r rawReader) Read(p []byte) (int, error) {
	c := r.c
	c.mu.Lock()
	if c.closing && !c.inMessage {
		c.mu.Unlock()
		return 0, io.EOF
	}
	err := c.Conn.SetReadDeadline(time.Now().Add(c.rto))
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.rc != nil {
		quickAck(c.rc)
	}
	return n, err
}

// oneConnListener hands go-milter's Server one connection, then blocks until
// that connection is closed.
type oneConnListener struct {
	c    *milterConn
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.c, nil
	}
	<-l.c.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// milterMsg is what one message collects.
type milterMsg struct {
	from       string
	rcpts      []string
	authAuthen string
	queueID    string
	messageID  string
	raw        bytes.Buffer // header block, then (after the first body chunk) blank line and body
	inBody     bool
	size       int64
	over       bool // MaxMessage passed: not processed
	forged     int  // copies of the configured header seen
	failed     bool // a callback panicked
}

// milterSession is go-milter's callback object: one message's state.
type milterSession struct {
	m   *Milter
	c   *milterConn
	msg milterMsg
}

var _ milter.Milter = (*milterSession)(nil)

// recover turns a panic in a callback into a log line and a failed message.
func (s *milterSession) recover(stage string) {
	if v := recover(); v != nil {
		s.msg.failed = true
		s.m.log.Error("milter callback panicked", "stage", stage, "queue_id", s.msg.queueID,
			"message_id", s.msg.messageID, "err", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}

func (s *milterSession) macros(mod *milter.Modifier) {
	if mod == nil {
		return
	}
	if v := macro(mod.Macros, macroQueueID); v != "" {
		s.msg.queueID = v
	}
	if v := macro(mod.Macros, macroDaemonName); v != "" {
		s.c.daemonName = v
	}
}

// macro looks a macro up with or without braces ("i" and "{i}" are the same
// macro; Postfix sends the form its configuration names).
func macro(m map[string]string, name string) string {
	if v, ok := m[name]; ok {
		return v
	}
	if strings.HasPrefix(name, "{") {
		return m[strings.Trim(name, "{}")]
	}
	return m["{"+name+"}"]
}

func (s *milterSession) Connect(host, family string, port uint16, addr net.IP, mod *milter.Modifier) (milter.Response, error) {
	defer s.recover("connect")
	s.macros(mod)
	return milter.RespContinue, nil
}

func (s *milterSession) Helo(name string, mod *milter.Modifier) (milter.Response, error) {
	defer s.recover("helo")
	s.macros(mod)
	return milter.RespContinue, nil
}

func (s *milterSession) MailFrom(from string, mod *milter.Modifier) (milter.Response, error) {
	defer s.recover("mail")
	s.msg = milterMsg{from: from}
	s.c.setInMessage(true)
	s.macros(mod)
	if mod != nil {
		s.msg.authAuthen = macro(mod.Macros, macroAuthAuthen)
	}
	return milter.RespContinue, nil
}

func (s *milterSession) RcptTo(rcpt string, mod *milter.Modifier) (milter.Response, error) {
	defer s.recover("rcpt")
	s.macros(mod)
	s.msg.rcpts = append(s.msg.rcpts, rcpt)
	return milter.RespContinue, nil
}

func (s *milterSession) Header(name, value string, mod *milter.Modifier) (milter.Response, error) {
	defer s.recover("header")
	msg := &s.msg
	if strings.EqualFold(name, s.m.opt.Header) {
		msg.forged++
	}
	if msg.messageID == "" && strings.EqualFold(name, "Message-Id") {
		msg.messageID = strings.TrimSpace(value)
	}
	if msg.inBody {
		return milter.RespContinue, nil // not a sequence an MTA sends
	}
	// The MTA gives the value without the space after the colon and with
	// folded lines joined by LF (Postfix) or CRLF.
	value = strings.ReplaceAll(strings.ReplaceAll(value, "\r\n", "\n"), "\n", "\r\n")
	s.add(name, ": ", value, "\r\n")
	return milter.RespContinue, nil
}

func (s *milterSession) Headers(h textproto.MIMEHeader, mod *milter.Modifier) (milter.Response, error) {
	defer s.recover("eoh")
	s.macros(mod)
	return milter.RespContinue, nil
}

func (s *milterSession) BodyChunk(chunk []byte, mod *milter.Modifier) (milter.Response, error) {
	defer s.recover("body")
	if !s.msg.inBody {
		s.msg.inBody = true
		s.add("\r\n")
	}
	s.addBytes(chunk)
	return milter.RespContinue, nil
}

// add appends to the raw message unless that passes MaxMessage; then the
// message is marked over and its buffer dropped. (go-milter v0.5.0 answers
// protocol version 2, which has no SMFIR_SKIP, so the MTA keeps sending the
// body; it is read and dropped.)
func (s *milterSession) add(parts ...string) {
	for _, p := range parts {
		s.addBytes([]byte(p))
	}
}

func (s *milterSession) addBytes(b []byte) {
	msg := &s.msg
	if msg.over {
		return
	}
	msg.size += int64(len(b))
	if msg.size > s.m.opt.MaxMessage {
		msg.over = true
		msg.raw = bytes.Buffer{}
		return
	}
	msg.raw.Write(b)
}

func (s *milterSession) Abort(mod *milter.Modifier) error {
	defer s.recover("abort")
	s.msg = milterMsg{}
	s.c.setInMessage(false)
	return nil
}

// Body is the end of the message: process, remove forged headers, add the
// outcome header, accept.
func (s *milterSession) Body(mod *milter.Modifier) (resp milter.Response, err error) {
	defer s.c.setInMessage(false)
	defer func() {
		if v := recover(); v != nil {
			s.m.log.Error("milter end of message panicked; accepted", "queue_id", s.msg.queueID,
				"message_id", s.msg.messageID, "err", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp, err = milter.RespAccept, nil
		}
	}()
	s.macros(mod)
	msg := &s.msg
	if !msg.inBody {
		s.add("\r\n") // a message without body: the header ends here
	}
	log := s.m.log.With("queue_id", msg.queueID, "message_id", msg.messageID)
	value := ""
	switch {
	case msg.over:
		log.Warn("message over the milter size limit: passed on unprocessed", "max_message", s.m.opt.MaxMessage, "size", msg.size)
	case msg.failed:
		value = "error"
		log.Error("message accepted after a failure in an earlier callback")
	default:
		value = s.m.process(msg, s.c.daemonName, log)
	}
	// SMFIR_CHGHEADER with an empty value deletes the index-th field of that
	// name (milter-protocol.txt, SMFIR_CHGHEADER); from the last, so no
	// deletion shifts the index of one still to come.
	for i := msg.forged; i >= 1; i-- {
		if err := mod.ChangeHeader(i, s.m.opt.Header, ""); err != nil {
			return nil, fmt.Errorf("milter: remove %s #%d: %w", s.m.opt.Header, i, err)
		}
	}
	if msg.forged > 0 {
		log.Info("removed incoming copies of the header", "header", s.m.opt.Header, "count", msg.forged)
	}
	if value != "" {
		if err := mod.AddHeader(s.m.opt.Header, milterFold(len(s.m.opt.Header)+2, value)); err != nil {
			return nil, fmt.Errorf("milter: add %s: %w", s.m.opt.Header, err)
		}
	}
	return milter.RespAccept, nil
}

// process runs Processor.Process under ProcessTimeout and returns the header
// value: HeaderValue of the results (Bcc-safe: one copy for all), "" for mail
// without calendar data, "error" when processing failed. For outgoing mail
// the sender's own result is left out of the header (it is the sender's
// calendar, and the copy goes to the recipients) and only logged.
func (m *Milter) process(msg *milterMsg, daemon string, log *slog.Logger) string {
	ctx, cancel := context.WithTimeout(context.Background(), m.opt.ProcessTimeout)
	defer cancel()
	type result struct {
		rep *Report
		env Envelope
		err error
	}
	done := make(chan result, 1)
	raw := msg.raw.Bytes()
	env := Envelope{MailFrom: msg.from, Rcpts: msg.rcpts, Transport: "milter", QueueID: msg.queueID, Received: m.p.now()}
	authAuthen := msg.authAuthen
	m.wg.Add(1) // a connection is live, so the counter is not zero: no race with Shutdown's Wait
	go func() {
		defer m.wg.Done()
		var r result
		defer func() {
			if v := recover(); v != nil {
				r.err = fmt.Errorf("panic: %v", v)
				log.Error("processing panicked", "err", r.err, "stack", string(debug.Stack()))
			}
			if ctx.Err() != nil && r.err == nil {
				log.Warn("processing finished after the milter deadline; the message was tagged error", "timeout", m.opt.ProcessTimeout)
			}
			done <- r
		}()
		r.env = env
		out, err := m.outgoing(ctx, env.MailFrom, authAuthen, daemon)
		if err != nil {
			r.err = err
			return
		}
		r.env.Outgoing = out
		r.rep, r.err = m.p.Process(ctx, bytes.NewReader(raw), r.env)
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err = fmt.Errorf("processing: %w", ctx.Err())
	}
	if r.err != nil {
		log.Error("processing failed; message accepted", "err", r.err)
		return "error"
	}
	rep := r.rep
	if rep == nil || !rep.Calendar {
		return ""
	}
	if rep.MessageID != "" && msg.messageID == "" {
		log = log.With("message_id", rep.MessageID)
	}
	var shown []Result
	outcomes := make([]string, 0, len(rep.Results))
	for _, res := range rep.Results {
		own := r.env.Outgoing && calstore.Normalize(res.Recipient) == calstore.Normalize(r.env.MailFrom)
		tag := ""
		if own {
			tag = " (sender)"
		} else {
			shown = append(shown, res)
		}
		outcomes = append(outcomes, fmt.Sprintf("%s%s=%s/%s", res.User, tag, res.Outcome, res.Reason))
	}
	value := HeaderValue(shown)
	log.Info("milter message", "outgoing", r.env.Outgoing, "outcomes", outcomes, "header", value)
	return value
}

// outgoing tells whether a message is a local user's own (SPEC "Outgoing mail
// teaches the calendar"): the envelope sender is a local user (an address at
// a local domain, or any address of a stored user) and the message came in
// authenticated (SMTP AUTH on submission) or from a daemon named in
// OutgoingDaemons (local submission through non_smtpd_milters).
func (m *Milter) outgoing(ctx context.Context, from, authAuthen, daemon string) (bool, error) {
	if from == "" {
		return false, nil
	}
	trusted := authAuthen != ""
	for _, d := range m.opt.OutgoingDaemons {
		trusted = trusted || (daemon != "" && d == daemon)
	}
	if !trusted {
		return false, nil
	}
	if m.p.IsLocal(calstore.Normalize(from)) {
		return true, nil
	}
	local := false
	err := m.p.Store.Read(ctx, func(tx calstore.Tx) error {
		_, err := tx.User(from)
		switch {
		case err == nil:
			local = true
		case errors.Is(err, calstore.ErrNotFound):
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sender %s: %w", from, err)
	}
	return local, nil
}

// milterFold folds a long header value between iTIP objects, before the
// space of ", " (unfolding gives the value back unchanged), once a line
// passes 78 characters (RFC 5322 §2.1.1). prefix is the length of "Name: ".
// The MTA gets LF line ends (go-milter converts; Postfix wants them).
func milterFold(prefix int, value string) string {
	var b strings.Builder
	line := prefix
	for i, p := range strings.Split(value, ", ") {
		if i > 0 {
			b.WriteString(",")
			line++
			if line+1+len(p) > 78 {
				b.WriteString("\n")
				line = 0
			}
			b.WriteString(" ")
			line++
		}
		b.WriteString(p)
		line += len(p)
	}
	return b.String()
}
