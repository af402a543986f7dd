// Package milter is imipd's milter adapter (docs/rules.md "Transports"):
// Postfix or Sendmail hands it each message over the milter protocol, it
// streams the message into filter.Processor.Process with the envelope and
// the MTA's macros, removes forged copies of the outcome header and adds
// the report's header value. See Milter.
package milter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	gomilter "github.com/d--j/go-milter"

	"imipd/filter"
	"imipd/filter/conn"
	"imipd/itip/imip"
)

// Options configure the milter adapter. Zero fields take the defaults
// named on each field.
type Options struct {
	// maxMessage bounds what processing may hold of one message, default
	// 64 MiB. The message itself is not held: it streams into
	// filter.Processor.Process while the MTA sends it (see Milter), and the MIME
	// parser keeps only the header block and calendar parts, under
	// filter.Config.MIME. maxMessage lowers those caps (header block, one calendar
	// part, all calendar data) when it is below them; a message that passes
	// such a lowered cap is not processed: forged copies of the outcome
	// header (Processor.HeaderName) are still removed, no header is added,
	// and the message is accepted. At the default it is above every
	// default cap and changes nothing.
	maxMessage int64

	// ReadTimeout bounds each packet from the MTA, the wait for it
	// included (a command, a macro list, a header field, a body chunk),
	// default 5 minutes, at least Postfix's smtpd_timeout (300 s): with the
	// no-reply options the MTA sends MAIL and RCPT as its SMTP client sends
	// them. Reads inside a packet do not extend it: a client that drips one
	// byte at a time is cut when the packet is not complete in time.
	// WriteTimeout bounds each answer, default 1 minute. go-milter's own
	// timeouts are not used (milterConn).
	ReadTimeout, WriteTimeout time.Duration

	// TempFailOnError makes a failure inside imipd (store locked or full,
	// processing timeout, panic) answer 451 (tempfail: the MTA retries)
	// instead of accepting the message tagged "error" (config on_error).
	TempFailOnError bool

	// MaxConnections caps concurrent connections, default 512, and
	// MaxConnectionsPerPeer those from one address (default
	// MaxConnections; a unix socket's are one peer). At a cap the oldest
	// idle connection (no message in progress) is closed to make room;
	// with none idle the new one is closed at once (Postfix then applies
	// the milter's default_action, accept in contrib). See conn.Table.
	// go-milter allocates a packet's announced length (imipd refuses more
	// than 1 MiB) before reading it, so this also bounds memory.
	MaxConnections, MaxConnectionsPerPeer int

	// FirstReadTimeout bounds the wait for a new connection's first packet
	// (the option negotiation, which an MTA sends as soon as it connects),
	// default 10 s; it replaces ReadTimeout for that packet when shorter.
	FirstReadTimeout time.Duration

	// processTimeout bounds each wait for filter.Processor.Process, default 60 s:
	// every hand-over of a body chunk to the running Process and the wait
	// for its result at the end of the message. Shorter than Postfix's
	// milter_content_timeout (300 s, per packet), so imipd accepts the
	// message (tagged "error") before Postfix gives up on the milter.
	processTimeout time.Duration
}

// Milter defaults.
const (
	defaultMaxMessage     = 64 << 20
	defaultReadTimeout    = 5 * time.Minute
	defaultWriteTimeout   = time.Minute
	defaultProcessTimeout = 60 * time.Second
)

// Milter macros read (sendmail's names, as Postfix sends them; see postconf(5)
// milter_*_macros for the stage each is sent at).
const (
	macroQueueID    = "i"             // mail, rcpt, data, eoh, eom
	macroAuthAuthen = "{auth_authen}" // mail: SASL login name, empty when not authenticated
	macroDaemonName = "{daemon_name}" // connect: $milter_macro_daemon_name
)

// Milter is the milter adapter (docs/rules.md "Transports") on go-milter
// (github.com/d--j/go-milter). One Milter serves any number of listeners and
// connections, each connection any number of messages.
//
// Protocol: imipd speaks milter protocol version 6 (and down to 2 with an
// MTA that offers no more; see negotiateMilter). With version 6 it asks for
// no reply to any event before the end of the message (SMFIP_NR_CONN, _MAIL,
// _RCPT, _HDR, _EOH, _BODY), for no HELO, DATA, end-of-header and
// unknown-command events, and, where the MTA lets it choose its macros, for
// them at MAIL and no connect event: the MTA sends a whole message without
// waiting, and waits once, for the end-of-message answer. Postfix (milter_protocol = 6, its default) then
// pays one round trip per message instead of one per header field and body
// chunk (BENCHMARKS.md). imipd decides nothing before the end of the message
// anyway: it never rejects at MAIL or RCPT.
//
// Callback lifecycle (go-milter v0.10.1, server.go): one milterSession per
// MTA connection, created after the option negotiation; NewConnection, then
// per message MailFrom, RcptTo..., Header..., Headers (end of header, only
// from an MTA that sends it anyway), BodyChunk..., EndOfMessage; Abort
// between messages or instead of the end (go-milter synthesises one when
// the MTA starts a new message without it); Cleanup when the connection
// ends. go-milter keeps macros per stage; MailFrom reads {daemon_name},
// {auth_authen} and the queue ID (requested at MAIL, or from the connect
// stage of an MTA that sends its own lists).
//
// Streaming: the message is never buffered whole. Header fields are
// collected in a per-connection buffer that is reused; at the end of the
// header, when the top-level Content-Type and Content-Disposition rule out
// calendar data (imip.MayContainCalendar), the body is not looked at and
// only the header block is processed at the end of the message. Otherwise
// the message is kept while it is at most 64 KiB (headerFlush; nearly all
// calendar mail) and processed from that buffer at its end. A larger one
// streams: filter.Processor.Process starts in a goroutine reading a bodyPipe, and
// what was kept and every later body chunk are written into it as they
// arrive, without copies. While the parse skips a part that cannot be
// calendar data (an attachment), the session goroutine drops the chunks
// itself up to the next line that starts with '-' (bodyPipe.SkipToDash):
// no hand-over per chunk. Once Process has returned (after the close
// delimiter of a multipart body without calendar part) later chunks are
// dropped at once. At the end of the message the result is awaited
// (processTimeout).
//
// Every callback continues and the end of message accepts: an internal
// failure or a panic is logged, and the message goes on (tagged "error" when
// processing failed; on_error = tempfail answers 451 instead).
type Milter struct {
	p   *filter.Processor
	opt Options
	log *slog.Logger

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     *conn.Table    // of *milterConn
	wg        sync.WaitGroup // live connections and processing calls
}

// New returns a milter adapter for p. A nil log discards.
func New(p *filter.Processor, opt Options, log *slog.Logger) *Milter {
	if opt.maxMessage <= 0 {
		opt.maxMessage = defaultMaxMessage
	}
	if opt.ReadTimeout <= 0 {
		opt.ReadTimeout = defaultReadTimeout
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = defaultWriteTimeout
	}
	if opt.processTimeout <= 0 {
		opt.processTimeout = defaultProcessTimeout
	}
	if opt.FirstReadTimeout <= 0 {
		opt.FirstReadTimeout = conn.DefaultFirstReadTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("transport", "milter")
	return &Milter{
		p: p, opt: opt, log: log,
		listeners: map[net.Listener]struct{}{},
		conns:     conn.NewTable("milter", opt.MaxConnections, opt.MaxConnectionsPerPeer, log),
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
			if m.isClosing() {
				return nil
			}
			continue // over a cap, none idle
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
	m.conns.Each(func(c conn.Evictable) { c.(*milterConn).shutdown() })
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
		m.conns.Each(func(c conn.Evictable) { c.(*milterConn).Close() })
		return ctx.Err()
	}
}

func (m *Milter) isClosing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closing
}

// track registers a new connection, or returns nil when shutting down or
// over a cap with no idle connection to make room (conn.Table).
func (m *Milter) track(nc net.Conn) *milterConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return nil
	}
	c := newMilterConn(nc, m.opt)
	if !m.conns.Add(c, nc.RemoteAddr()) {
		c.release()
		return nil
	}
	m.wg.Add(1)
	return c
}

// SetLibraryLog routes go-milter's own warnings (a broken MTA
// connection, a malformed packet) to log at level Warn; by default the
// library writes them with package log. It sets a package variable of
// go-milter: call it once, before serving.
func SetLibraryLog(log *slog.Logger) {
	gomilter.LogWarning = func(format string, v ...any) {
		log.Warn("go-milter: "+fmt.Sprintf(format, v...), "transport", "milter")
	}
}

// milterActions are the modifications imipd makes: add its header, delete
// forged copies of it.
const milterActions = gomilter.OptAddHeader | gomilter.OptChangeHeader

// milterProtocol is what imipd asks the MTA for (see Milter): no HELO, DATA,
// end-of-header or unknown-command events, and no reply to any event before
// the end of the message.
const milterProtocol = gomilter.OptNoHelo | gomilter.OptNoData | gomilter.OptNoEOH | gomilter.OptNoUnknown |
	gomilter.OptNoConnReply | gomilter.OptNoMailReply | gomilter.OptNoRcptReply |
	gomilter.OptNoHeaderReply | gomilter.OptNoEOHReply | gomilter.OptNoBodyReply

// milterMacros are the macros imipd asks for (SMFIF_SETSYMLIST), where the
// MTA lets a milter choose: all it needs at MAIL ({daemon_name} too, so the
// connect event is not needed at all), and the queue ID again at the end
// of the message, for an MTA that assigns it late. Postfix and Sendmail
// 8.17 both send all three at MAIL. Sendmail's own list for MAIL lacks
// {daemon_name}, and a requested list replaces it (asked without
// {auth_authen}, Sendmail sends none: e2e TestSendmail fails). For the end
// of the message Sendmail 8.17 sends its own list ({msg_id}) instead, so
// the queue ID from MAIL is the one kept.
var milterMacros = []struct {
	stage gomilter.MacroStage
	names []gomilter.MacroName
}{
	{gomilter.StageMail, []gomilter.MacroName{macroQueueID, macroAuthAuthen, macroDaemonName}},
	{gomilter.StageEOM, []gomilter.MacroName{macroQueueID}},
}

// negotiateMilter answers the MTA's option negotiation (a
// gomilter.NegotiationCallbackFunc): the highest protocol version both speak
// (2 to 6); imipd's two actions (refused when the MTA does not offer them:
// imipd could not tag mail); of milterProtocol what the MTA offers (a
// version 2 MTA gets replies to every event); and when the MTA lets the
// milter choose its macros (SMFIF_SETSYMLIST: Postfix, sendmail 8.14),
// milterMacros and no connect event. The body chunk size is the MTA's.
func negotiateMilter(mtaVersion, milterVersion uint32, mtaActions, _ gomilter.OptAction, mtaProtocol, _ gomilter.OptProtocol, offered gomilter.DataSize) (uint32, gomilter.OptAction, gomilter.OptProtocol, gomilter.DataSize, error) {
	if mtaVersion < 2 {
		return 0, 0, 0, 0, fmt.Errorf("milter: MTA speaks protocol version %d, imipd needs 2 or later", mtaVersion)
	}
	if mtaActions&milterActions != milterActions {
		return 0, 0, 0, 0, fmt.Errorf("milter: MTA does not allow adding and changing header fields (offered actions %v)", mtaActions)
	}
	actions, protocol := milterActions, milterProtocol
	if mtaActions&gomilter.OptSetMacros != 0 {
		actions |= gomilter.OptSetMacros
		protocol |= gomilter.OptNoConnect
	}
	return min(mtaVersion, milterVersion), actions, protocol & mtaProtocol, offered, nil
}

// ServerOptions are the go-milter server options of every imipd
// milter connection (bench/ gives them to its do-nothing baseline too, so
// both negotiate alike): negotiateMilter, milterMacros, and go-milter's own
// timeouts off (milterConn applies ReadTimeout and WriteTimeout).
func ServerOptions() []gomilter.Option {
	opts := []gomilter.Option{
		gomilter.WithNegotiationCallback(negotiateMilter),
		gomilter.WithReadTimeout(0),
		gomilter.WithWriteTimeout(0),
	}
	for _, m := range milterMacros {
		opts = append(opts, gomilter.WithMacroRequest(m.stage, m.names))
	}
	return opts
}

// serveConn runs go-milter's session on one connection. go-milter's Server
// has no per-connection hook (the milter factory gets no connection), so
// each connection gets its own Server over a one-connection listener;
// Serve returns once the connection is closed.
func (m *Milter) serveConn(c *milterConn) {
	defer m.wg.Done()
	defer m.conns.Remove(c)
	srv := gomilter.NewServer(append(ServerOptions(),
		gomilter.WithMilter(func() gomilter.Milter { return newMilterSession(m, c) }))...)
	if err := srv.Serve(&oneConnListener{c: c}); err != nil && !errors.Is(err, net.ErrClosed) {
		m.log.Warn("milter connection", "err", err)
	}
	c.abortStream()
}

// milterMsg is what one message collects.
type milterMsg struct {
	from       string
	rcpts      []string
	authAuthen string // {auth_authen} at MAIL: the SASL login, "" when not authenticated
	daemonName string // {daemon_name}: the MTA service (Options.Own)
	queueID    string
	messageID  string
	inBody     bool
	size       int64         // bytes of header block and body seen
	st         *milterStream // the running Process, from the first body chunk
	forged     int           // copies of the configured header seen
	hidden     []hiddenField // fields carrying a copy behind a bare CR, to rewrite without it
	failed     bool          // a callback panicked
	// The top-level Content-Type and Content-Disposition: when they rule
	// out calendar data (imip.MayContainCalendar), the body is not read.
	contentType, contentDisp string
	ctSeen, cdSeen           bool
	plain                    bool // decided at the end of the header: no calendar possible
}

// hiddenField is a header field that carries a copy of imipd's header
// behind a bare CR (filter.HiddenFields): at the end of the message it is
// rewritten to value, the index-th field of its name.
type hiddenField struct {
	name, value string
	index       int
}

// headerFlush is the size of the collected header block at which Process
// starts before the end of the header (Postfix's header_size_limit is
// 100 KiB by default; imip's own cap is filter.Config.MIME.MaxHeaderBytes).
const headerFlush = 64 << 10

// milterSession is go-milter's callback object: one connection, its
// messages one after the other (see Milter for the lifecycle).
type milterSession struct {
	gomilter.NoOpMilter // Helo, Data, Unknown: not negotiated; continue if sent

	m    *Milter
	c    *milterConn
	msg  milterMsg
	hbuf []byte // header block being collected; reused for every message
	// names are the header field names of the message so far (for the
	// index of a hiddenField); reused for every message.
	names []string
	bufs  *sessionBufs // where hbuf and names came from, returned at Cleanup
}

// newMilterSession starts a connection's session with pooled buffers.
func newMilterSession(m *Milter, c *milterConn) *milterSession {
	b := bufsPool.Get().(*sessionBufs)
	return &milterSession{m: m, c: c, hbuf: b.hbuf[:0], names: b.names[:0], bufs: b}
}

var _ gomilter.Milter = (*milterSession)(nil)

// recover turns a panic in a callback into a log line and a failed message.
func (s *milterSession) recover(stage string) func() {
	return conn.Recover(func(p *conn.Panic) {
		s.msg.failed = true
		s.m.log.Error("milter callback panicked", "stage", stage, "queue_id", s.msg.queueID,
			"message_id", s.msg.messageID, "panic", p)
	})
}

// queueID picks up the queue ID ("i"), which Postfix and Sendmail send from
// the MAIL stage on (milterMacros).
func (s *milterSession) queueID(mod gomilter.Modifier) {
	if v := mod.Get(macroQueueID); v != "" {
		s.msg.queueID = v
	}
}

func (s *milterSession) NewConnection(gomilter.Modifier) error {
	s.reset()
	s.msg = milterMsg{}
	return nil
}

func (s *milterSession) MailFrom(from, _ string, mod gomilter.Modifier) (*gomilter.Response, error) {
	defer s.recover("mail")()
	s.reset()
	s.msg = milterMsg{from: from, authAuthen: mod.Get(macroAuthAuthen), daemonName: mod.Get(macroDaemonName)}
	s.c.setInMessage(true)
	s.queueID(mod)
	return gomilter.RespContinue, nil
}

func (s *milterSession) RcptTo(rcpt, _ string, mod gomilter.Modifier) (*gomilter.Response, error) {
	defer s.recover("rcpt")()
	s.queueID(mod)
	s.msg.rcpts = append(s.msg.rcpts, rcpt)
	return gomilter.RespContinue, nil
}

func (s *milterSession) Header(name, value string, mod gomilter.Modifier) (*gomilter.Response, error) {
	defer s.recover("header")()
	msg := &s.msg
	if filter.IsHeaderName(name, s.m.p.HeaderName()) {
		msg.forged++
	} else if strings.IndexByte(value, '\r') >= 0 {
		if clean, n := filter.HiddenFields(value, s.m.p.HeaderName()); n > 0 {
			index := 1
			for _, prev := range s.names {
				if filter.IsHeaderName(prev, name) {
					index++
				}
			}
			msg.hidden = append(msg.hidden, hiddenField{name: name, value: clean, index: index})
		}
	}
	s.names = append(s.names, name)
	if msg.messageID == "" && strings.EqualFold(name, "Message-Id") {
		msg.messageID = strings.TrimSpace(value)
	}
	if msg.inBody {
		return gomilter.RespContinue, nil // not a sequence an MTA sends
	}
	switch {
	case !msg.ctSeen && strings.EqualFold(name, "Content-Type"):
		msg.contentType, msg.ctSeen = unfoldValue(value), true
	case !msg.cdSeen && strings.EqualFold(name, "Content-Disposition"):
		msg.contentDisp, msg.cdSeen = unfoldValue(value), true
	}
	// The MTA gives the value without the space after the colon and with
	// folded lines joined by LF (Postfix) or CRLF.
	n := len(s.hbuf)
	s.hbuf = append(s.hbuf, name...)
	s.hbuf = append(s.hbuf, ": "...)
	s.hbuf = appendCRLF(s.hbuf, value)
	s.hbuf = append(s.hbuf, "\r\n"...)
	msg.size += int64(len(s.hbuf) - n)
	if msg.st != nil || len(s.hbuf) >= headerFlush {
		s.stream().write(s.hbuf)
		s.hbuf = s.hbuf[:0]
	}
	return gomilter.RespContinue, nil
}

// unfolder joins a folded header value into one line.
var unfolder = strings.NewReplacer("\r\n", "", "\n", "", "\r", "")

// unfoldValue joins a folded header value into one line.
func unfoldValue(v string) string { return unfolder.Replace(v) }

// appendCRLF appends v with every line end (LF or CRLF) as CRLF.
func appendCRLF(b []byte, v string) []byte {
	for {
		i := strings.IndexByte(v, '\n')
		if i < 0 {
			return append(b, v...)
		}
		b = append(b, strings.TrimSuffix(v[:i], "\r")...)
		b = append(b, "\r\n"...)
		v = v[i+1:]
	}
}

func (s *milterSession) Headers(mod gomilter.Modifier) (*gomilter.Response, error) {
	defer s.recover("eoh")()
	s.queueID(mod)
	s.endHeader()
	return gomilter.RespContinue, nil
}

func (s *milterSession) BodyChunk(chunk []byte, _ gomilter.Modifier) (*gomilter.Response, error) {
	defer s.recover("body")()
	s.endHeader() // an MTA that sends no end-of-header event
	s.msg.size += int64(len(chunk))
	if s.msg.plain {
		return gomilter.RespContinue, nil // no calendar possible: not read
	}
	if s.msg.st == nil && len(s.hbuf)+len(chunk) <= headerFlush {
		s.hbuf = append(s.hbuf, chunk...) // small so far: kept (see endHeader)
		return gomilter.RespContinue, nil
	}
	st := s.stream()
	st.write(s.hbuf)
	s.hbuf = s.hbuf[:0]
	st.write(chunk)
	return gomilter.RespContinue, nil
}

// endHeader writes the rest of the header block and the blank line that
// ends it, once.
func (s *milterSession) endHeader() {
	if s.msg.inBody {
		return
	}
	s.msg.inBody = true
	s.hbuf = append(s.hbuf, "\r\n"...)
	s.msg.size += 2
	if s.msg.st == nil && !imip.MayContainCalendar(s.msg.contentType, s.msg.contentDisp) {
		// Plain mail (the common case): no Process goroutine, no pipe, the
		// body is not looked at; the header block alone is processed at the
		// end of the message (outgoing mail still teaches contacts).
		s.msg.plain = true
		return
	}
	if s.msg.st != nil { // a header block over headerFlush: already streaming
		s.stream().write(s.hbuf)
		s.hbuf = s.hbuf[:0]
	}
	// Otherwise the header block stays in hbuf, and so do body chunks while
	// the whole stays within headerFlush: most calendar mail (and small
	// multipart mail) ends before that and is processed from one buffer at
	// the end of the message, without a pipe; a larger one starts
	// streaming when it passes headerFlush.
}

// stream returns the message's running Process, starting it first.
func (s *milterSession) stream() *milterStream {
	if s.msg.st == nil {
		s.msg.st = s.m.startStream(&s.msg, nil, nil)
		s.c.setStream(s.msg.st)
	}
	return s.msg.st
}

// reset abandons the message in progress, if any: its Process is cut.
func (s *milterSession) reset() {
	if s.msg.st != nil {
		s.msg.st.abort()
		s.c.setStream(nil)
	}
	s.hbuf = s.hbuf[:0]
	clear(s.names)
	s.names = s.names[:0]
}

func (s *milterSession) Abort(gomilter.Modifier) error {
	defer s.recover("abort")()
	s.reset()
	s.msg = milterMsg{}
	s.c.setInMessage(false)
	return nil
}

// Cleanup ends the connection's message in progress, if any, and returns
// the connection's read buffer (go-milter reads no more after Cleanup).
func (s *milterSession) Cleanup(gomilter.Modifier) {
	s.reset()
	s.c.setInMessage(false)
	s.c.release()
	if b := s.bufs; b != nil && cap(s.hbuf) <= 4*headerFlush && cap(s.names) <= 1024 {
		b.hbuf, b.names = s.hbuf[:0], s.names[:0] // reset cleared names
		bufsPool.Put(b)
	}
	s.hbuf, s.names, s.bufs = nil, nil, nil
}

// sessionBufs are a session's message buffers (milterSession.hbuf and
// names), pooled: a session per connection, a connection per message with
// Postfix. Nothing keeps a reference once the session ends: Process reads a
// copy or reads through the pipe, whose writes return once read.
type sessionBufs struct {
	hbuf  []byte
	names []string
}

var bufsPool = sync.Pool{New: func() any {
	return &sessionBufs{hbuf: make([]byte, 0, 8<<10), names: make([]string, 0, 64)}
}}

// EndOfMessage processes, removes forged headers, adds the outcome header
// and accepts.
func (s *milterSession) EndOfMessage(mod gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer s.c.setInMessage(false)
	defer s.reset()
	defer conn.Recover(func(p *conn.Panic) {
		s.m.log.Error("milter end of message panicked; accepted", "queue_id", s.msg.queueID,
			"message_id", s.msg.messageID, "panic", p)
		resp, err = gomilter.RespAccept, nil
	})()
	s.queueID(mod)
	msg := &s.msg
	log := s.m.log // the message's log; With(...) only where something is logged (the plain path logs nothing)
	if msg.failed || !msg.plain || msg.forged > 0 || len(msg.hidden) > 0 {
		log = log.With("queue_id", msg.queueID, "message_id", msg.messageID)
	}
	value := ""
	if msg.failed {
		value = "error"
		log.Error("message accepted after a failure in an earlier callback")
	} else {
		s.endHeader() // a message without body: the header ends here
		switch {
		case msg.plain:
			// The header ruled out calendar data: nothing more to parse.
			value = s.m.processNow(msg, &filter.Parsed{Err: imip.ErrNoCalendar})
		case msg.st == nil && imip.IsMultipart(msg.contentType):
			// Small multipart mail: parsed here (microseconds, no I/O).
			// Without calendar data Process only counts it (or learns
			// contacts from a local user's own); else it runs on its own
			// goroutine from the parse.
			pm := s.m.p.Parse(bytes.NewReader(s.hbuf), s.m.opt.maxMessage)
			if errors.Is(pm.Err, imip.ErrNoCalendar) {
				value = s.m.processNow(msg, pm)
				break
			}
			msg.st = s.m.startStream(msg, nil, pm)
			s.c.setStream(msg.st)
			value = s.m.result(msg, log)
		case msg.st == nil:
			// Small: the whole message is in hbuf. Process gets a copy, so
			// the next message cannot change it under a Process that
			// outlived processTimeout.
			msg.st = s.m.startStream(msg, bytes.NewReader(bytes.Clone(s.hbuf)), nil)
			s.c.setStream(msg.st)
			fallthrough
		default:
			value = s.m.result(msg, log)
		}
	}
	// SMFIR_CHGHEADER with an empty value deletes the index-th field of that
	// name (milter-protocol.txt, SMFIR_CHGHEADER); from the last, so no
	// deletion shifts the index of one still to come.
	for i := msg.forged; i >= 1; i-- {
		if err := mod.ChangeHeader(i, s.m.p.HeaderName(), ""); err != nil {
			return nil, fmt.Errorf("milter: remove %s #%d: %w", s.m.p.HeaderName(), i, err)
		}
	}
	if msg.forged > 0 {
		log.Info("removed incoming copies of the header", "header", s.m.p.HeaderName(), "count", msg.forged)
	}
	// A copy hidden behind a bare CR inside another field: that field is
	// rewritten without it (SMFIR_CHGHEADER with the new value).
	for _, h := range msg.hidden {
		if err := mod.ChangeHeader(h.index, h.name, h.value); err != nil {
			return nil, fmt.Errorf("milter: rewrite %s #%d: %w", h.name, h.index, err)
		}
		log.Info("removed a copy of the header hidden behind a bare CR", "header", s.m.p.HeaderName(), "field", h.name, "index", h.index)
	}
	if value == "error" && s.m.opt.TempFailOnError {
		log.Warn("processing failed; message temporarily refused (on_error = tempfail)")
		return gomilter.RespTempFail, nil
	}
	if value != "" {
		// Folded with LF, as Postfix wants it.
		if err := mod.AddHeader(s.m.p.HeaderName(), filter.FoldValue(len(s.m.p.HeaderName())+2, value, "\n")); err != nil {
			return nil, fmt.Errorf("milter: add %s: %w", s.m.p.HeaderName(), err)
		}
	}
	return gomilter.RespAccept, nil
}

// processNow processes a message without calendar data that the milter
// parsed itself, synchronously: mail whose header rules it out (plain), or
// small multipart mail. Process counts it, and learns contacts from a local
// user's own mail (cheap: no MIME walk); for anyone else's it reads
// nothing. It returns "" (no tag) unless processing failed.
func (m *Milter) processNow(msg *milterMsg, pm *filter.Parsed) string {
	ctx, cancel := context.WithTimeout(context.Background(), m.opt.processTimeout)
	defer cancel()
	rep, err := m.p.Process(ctx, m.delivery(msg, nil, pm))
	if err != nil {
		m.log.Error("processing failed; message accepted", "queue_id", msg.queueID, "message_id", msg.messageID, "err", err)
		return "error"
	}
	return rep.Header()
}

// delivery is what the milter hands Process for msg: the envelope and
// macros, and the message as src or pm.
func (m *Milter) delivery(msg *milterMsg, src io.Reader, pm *filter.Parsed) filter.Delivery {
	return filter.Delivery{Transport: "milter", MailFrom: msg.from, Rcpts: msg.rcpts, QueueID: msg.queueID, Received: m.p.Time(),
		Login: msg.authAuthen, Daemon: msg.daemonName, Message: src, Parsed: pm, MaxMessage: m.opt.maxMessage}
}

// result ends the message's stream, waits for Process (processTimeout) and
// returns the header value: the report's Header (Bcc-safe: one copy for
// all), "" for mail without calendar data or over a cap lowered by
// maxMessage, "error" when processing failed. For outgoing mail the
// sender's own result is left out of the header (it is the sender's
// calendar, and the copy goes to the recipients) and only logged.
func (m *Milter) result(msg *milterMsg, log *slog.Logger) string {
	rep, err := msg.st.finish()
	if err != nil {
		log.Error("processing failed; message accepted", "err", err)
		return "error"
	}
	if rep == nil || !rep.Calendar {
		return ""
	}
	if rep.MessageID != "" && msg.messageID == "" {
		log = log.With("message_id", rep.MessageID)
	}
	if rep.OverMax != "" {
		log.Warn("message over the milter size limit: passed on unprocessed", "max_message", m.opt.maxMessage,
			"reason", rep.OverMax, "size", msg.size)
		return ""
	}
	outcomes := make([]string, 0, len(rep.Results))
	for _, res := range rep.Results {
		tag := ""
		if res.Own {
			tag = " (sender)"
		}
		outcomes = append(outcomes, fmt.Sprintf("%s%s=%s/%s", res.User, tag, res.Outcome, res.Reason))
	}
	value := rep.Header()
	log.Info("milter message", "outgoing", rep.Outgoing, "outcomes", outcomes, "header", value)
	return value
}
