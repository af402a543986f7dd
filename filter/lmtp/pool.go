package lmtp

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"imipd/filter/conn"
)

// Downstream connection pool defaults (Options.PoolSize, PoolIdle).
const (
	defaultPoolSize = 32
	defaultPoolIdle = 30 * time.Second
)

// downstream is one connection to the real LMTP server, greeted (LHLO done).
type downstream struct {
	conn net.Conn
	c    *smtp.Client
	// dirty: a transaction may be open on it (MAIL was sent and no DATA
	// completed since): RSET before the next MAIL.
	dirty bool
	// used: it carried an earlier transaction, so it may have been lost
	// since (closed by the server while idle, a restart).
	used bool
	idle time.Time // when it was put into the pool
}

// quit ends the connection politely (QUIT, a short timeout), else closes it.
func (d *downstream) quit() {
	d.c.CommandTimeout = lmtpQuitTimeout
	if d.c.Quit() != nil {
		d.c.Close()
	}
}

// pool keeps downstream connections between transactions, so a message
// does not pay connect, greeting, LHLO and QUIT (issue 5). It holds at most
// size idle connections (the ones in use are not counted: they are bounded
// by the upstream connections), newest reused first; one idle longer than
// idle is closed. A connection goes back only in a known state (every reply
// of its last command read, no I/O error); the session drops any other.
type pool struct {
	forward, domain string
	size            int // idle connections kept; 0: no pooling
	idle            time.Duration
	// now is the Processor's clock, which decides how long a connection
	// has been idle; the reaping timer runs on the wall clock and looks
	// again when the oldest is not due by now.
	now func() time.Time

	mu     sync.Mutex
	conns  []*downstream // idle, oldest first
	closed bool
	timer  *time.Timer // reaps idle connections while conns is not empty
}

func newPool(forward, domain string, size int, idle time.Duration, now func() time.Time) *pool {
	return &pool{forward: forward, domain: domain, size: size, idle: idle, now: now}
}

// get returns an idle connection that still looks alive, or a new one
// (also after close: a transaction finishing during Shutdown may need one).
func (p *pool) get() (*downstream, error) {
	for {
		p.mu.Lock()
		n := len(p.conns)
		if n == 0 {
			p.mu.Unlock()
			return p.dial()
		}
		d := p.conns[n-1]
		p.conns[n-1] = nil
		p.conns = p.conns[:n-1]
		p.mu.Unlock()
		// The server may have closed it (idle timeout, restart) or said
		// something unasked (421): then it is not used.
		if p.now().Sub(d.idle) < p.idle && connAlive(d.conn) {
			return d, nil
		}
		d.c.Close()
	}
}

// dial opens and greets a new connection.
func (p *pool) dial() (*downstream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lmtpDialTimeout)
	defer cancel()
	nc, err := conn.Dial(ctx, p.forward)
	if err != nil {
		return nil, err
	}
	c := smtp.NewClientLMTP(nc)
	if err := c.Hello(p.domain); err != nil {
		c.Close()
		return nil, err
	}
	return &downstream{conn: nc, c: c}, nil
}

// put takes back a connection in a known state (dirty or not); over the
// cap, or after close, it is ended instead.
func (p *pool) put(d *downstream) {
	d.used = true
	d.idle = p.now()
	p.mu.Lock()
	if p.closed || len(p.conns) >= p.size {
		p.mu.Unlock()
		d.quit()
		return
	}
	p.conns = append(p.conns, d)
	if p.timer == nil {
		p.timer = time.AfterFunc(p.idle, p.reap)
	}
	p.mu.Unlock()
}

// reap ends the connections idle for longer than p.idle, and runs again
// when the oldest left is due.
func (p *pool) reap() {
	now := p.now()
	p.mu.Lock()
	k := 0
	for k < len(p.conns) && now.Sub(p.conns[k].idle) >= p.idle {
		k++
	}
	old := append([]*downstream(nil), p.conns[:k]...)
	p.conns = append(p.conns[:0], p.conns[k:]...)
	clear(p.conns[len(p.conns):cap(p.conns)])
	p.timer = nil
	if len(p.conns) > 0 && !p.closed {
		p.timer = time.AfterFunc(p.idle-now.Sub(p.conns[0].idle), p.reap)
	}
	p.mu.Unlock()
	quitAll(old)
}

// close ends every idle connection; later puts end theirs.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	old := p.conns
	p.conns = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	quitAll(old)
}

// len is the number of idle connections.
func (p *pool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func quitAll(ds []*downstream) {
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.quit()
		}()
	}
	wg.Wait()
}
