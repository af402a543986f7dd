package milter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// maxMilterPacket bounds one packet from the MTA (length prefix excluded):
// the largest body chunk a milter can negotiate (SMFIP_MDS_1M: 1 MiB - 1
// data bytes) plus its command byte. go-milter v0.10.1 allocates a packet's
// announced length (up to 512 MiB) before reading it; milterConn refuses a
// larger announcement before go-milter sees it.
const maxMilterPacket = 1 << 20

// errMilterPacketSize ends a connection whose MTA announced a packet over
// maxMilterPacket.
var errMilterPacketSize = errors.New("milter packet over 1 MiB")

// milterConn wraps an MTA connection for go-milter. It knows the milter
// framing (a 4-byte big-endian length, then that many bytes) on both sides:
//
//   - Reads are buffered (go-milter reads a packet's length and its data
//     with two calls) and cut at packet boundaries. At each boundary the
//     next packet's length is checked (maxMilterPacket) and a fresh read
//     deadline is armed: every packet must arrive within ReadTimeout of
//     the moment imipd starts waiting for it (the first packet of a
//     connection within FirstReadTimeout). Reads inside a packet do not
//     extend the deadline, so a byte now and then cannot hold the
//     connection (slowloris); a long gap between packets is legitimate
//     (with the no-reply options the MTA sends MAIL, RCPT and DATA as its
//     SMTP client sends them) and bounded by the same ReadTimeout.
//   - TCP_QUICKACK is re-armed after every read on TCP
//     (postfix-dovecot-notes.md "the 40 ms stall").
//   - Writes are collected until a packet that ends the answer (anything
//     but a message modification: accept, continue, tempfail, the
//     negotiation), then written with one system call and WriteTimeout.
//     go-milter writes a packet's header and data separately, and an
//     end-of-message answer is several packets (header changes, then
//     accept): one segment instead of up to six.
//   - go-milter's own deadlines are ignored (SetReadDeadline and
//     SetWriteDeadline are no-ops; its 1 s negotiation deadline included):
//     the rules above replace them.
//   - Shutdown: between messages the connection reads EOF at the next
//     packet boundary (and a read waiting there is woken).
type milterConn struct {
	net.Conn
	rto, wto time.Duration
	fto      time.Duration   // FirstReadTimeout
	rc       syscall.RawConn // TCP: for TCP_QUICKACK; else nil
	br       *bufio.Reader

	left int  // bytes of the current inbound packet still to hand out (length prefix included); 0 at a boundary
	seen bool // a packet was read (session goroutine only)

	wbuf  []byte // outbound bytes not yet written
	wscan int    // wbuf[:wscan] is whole packets already classified

	mu        sync.Mutex
	armed     bool // the read deadline of the packet being read is set
	started   bool // the packet being read is not the connection's first
	inMessage bool // between MAIL FROM and the end of message (or abort)
	closing   bool // Shutdown: close when between messages

	cur *milterStream // the message's running Process (under mu), cut when the connection ends

	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

// readerPool holds the connections' read buffers: Postfix opens a milter
// connection per SMTP session, so most live for one message.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

func newMilterConn(nc net.Conn, opt Options) *milterConn {
	c := &milterConn{Conn: nc, rto: opt.ReadTimeout, wto: opt.WriteTimeout, fto: opt.FirstReadTimeout, rc: quickAckConn(nc), done: make(chan struct{})}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(rawReader{c})
	return c
}

// release returns the read buffer to the pool. Only the session goroutine
// reads, and it calls release last (milterSession.Cleanup): no read
// follows. A connection that ends before the negotiation leaves its buffer
// to the garbage collector.
func (c *milterConn) release() {
	br := c.br
	c.br = nil
	if br != nil {
		br.Reset(nil)
		readerPool.Put(br)
	}
}

func (c *milterConn) Read(p []byte) (int, error) {
	if c.br == nil {
		return 0, net.ErrClosed // released
	}
	if c.left == 0 {
		if c.idleClosing() {
			return 0, io.EOF
		}
		c.mu.Lock()
		c.armed = false // a new packet: a new deadline at the next read from the socket
		c.started = c.seen
		c.mu.Unlock()
		hdr, err := c.br.Peek(4)
		if err != nil {
			var ne net.Error
			if (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed)) && c.idleClosing() {
				return 0, io.EOF // cut by Shutdown or closed to make room (evictIdle), not a stall
			}
			if len(hdr) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr)
		if n > maxMilterPacket {
			return 0, fmt.Errorf("%w: %d bytes announced", errMilterPacketSize, n)
		}
		if err := c.checkPacket(int(n)); err != nil {
			return 0, err
		}
		c.left = 4 + int(n)
		c.seen = true
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= n
	return n, err
}

// errMilterPacket ends a connection whose MTA sent a packet go-milter
// v0.10.1 cannot take without a panic.
var errMilterPacket = errors.New("malformed milter packet")

// maxMilterAddrPacket bounds the packets that carry a host name or an
// address (connect, MAIL, RCPT): RFC 5321 paths are at most 256 octets, ESMTP
// parameters a few more.
const maxMilterAddrPacket = 8 << 10

// checkPacket refuses, before go-milter reads it, a packet of n bytes that
// would make go-milter v0.10.1 panic in its session goroutine (which has no
// recover, so the panic would end imipd): an empty packet (no command
// byte: wire.ReadPacket indexes data[0]), and a connect, MAIL or RCPT
// packet whose first string has no NUL terminator, or a connect packet
// without the protocol family after it (session.go slices past the end).
func (c *milterConn) checkPacket(n int) error {
	if n == 0 {
		return fmt.Errorf("%w: no command byte", errMilterPacket)
	}
	head, err := c.br.Peek(5)
	if err != nil {
		return nil // short: go-milter's own read fails with the same error
	}
	code := head[4]
	if code != 'C' && code != 'M' && code != 'R' {
		return nil
	}
	if n > maxMilterAddrPacket {
		return fmt.Errorf("%w: %c packet of %d bytes", errMilterPacket, code, n)
	}
	pkt, err := c.br.Peek(4 + n)
	if err != nil {
		return nil
	}
	data := pkt[5:]
	i := bytes.IndexByte(data, 0)
	if i < 0 || (code == 'C' && i+1 >= len(data)) {
		return fmt.Errorf("%w: %c packet without its strings", errMilterPacket, code)
	}
	return nil
}

// SetReadDeadline and SetWriteDeadline ignore go-milter's deadlines (see
// milterConn).
func (c *milterConn) SetReadDeadline(time.Time) error  { return nil }
func (c *milterConn) SetWriteDeadline(time.Time) error { return nil }
func (c *milterConn) SetDeadline(time.Time) error      { return nil }

// Write collects p and writes what is collected once it ends with a packet
// that ends an answer (see milterConn).
func (c *milterConn) Write(p []byte) (int, error) {
	c.wbuf = append(c.wbuf, p...)
	flush := false
	for {
		rest := c.wbuf[c.wscan:]
		if len(rest) < 5 {
			break
		}
		n := int(binary.BigEndian.Uint32(rest))
		if len(rest) < 4+n {
			break
		}
		if n == 0 { // not a packet go-milter writes; pass it on as it is
			c.wscan += 4
			flush = true
			continue
		}
		c.wscan += 4 + n
		flush = !isModification(rest[4])
	}
	if !flush {
		return len(p), nil
	}
	err := c.Conn.SetWriteDeadline(time.Now().Add(c.wto))
	if err == nil {
		_, err = c.Conn.Write(c.wbuf)
	}
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil // a large answer: do not keep its buffer for the connection's life
	} else {
		c.wbuf = c.wbuf[:0]
	}
	c.wscan = 0
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// isModification tells the SMFIR_ codes that go before the final answer of
// an end of message (milter-protocol.txt): add/delete recipient, replace
// body, add/change/insert header, change sender, quarantine, add recipient
// with arguments.
func isModification(code byte) bool {
	switch code {
	case '+', '-', 'b', 'h', 'm', 'i', 'e', 'q', '2':
		return true
	}
	return false
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

func (c *milterConn) setStream(st *milterStream) {
	c.mu.Lock()
	c.cur = st
	c.mu.Unlock()
}

// abortStream cuts the Process of a message the connection ended in the
// middle of (no abort, no end of message will come).
func (c *milterConn) abortStream() {
	c.mu.Lock()
	st := c.cur
	c.cur = nil
	c.mu.Unlock()
	if st != nil {
		st.abort()
	}
}

// evictIdle closes the connection unless a message is in progress
// (conn.Table). A connection between messages (or before its first) reads
// end of file; go-milter ends the session.
func (c *milterConn) EvictIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inMessage {
		return false
	}
	c.closing = true
	c.closeOnce.Do(func() { close(c.done) })
	_ = c.Conn.Close() // fails only when closed already
	return true
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
	if c.closing && !c.inMessage && c.left == 0 {
		c.mu.Unlock()
		return 0, io.EOF
	}
	if !c.armed {
		d := c.rto
		if !c.started && c.fto > 0 && c.fto < d {
			d = c.fto
		}
		// Fails only on a closed connection, whose read then reports it
		// (net.Pipe refuses deadlines once the peer closed, before EOF).
		c.armed = c.Conn.SetReadDeadline(time.Now().Add(d)) == nil
	}
	c.mu.Unlock()
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
