package milter

import (
	"io"
	"sync"

	"imipd/itip/imip"
)

// bodyPipe carries a streamed message from the milter callbacks (the
// writer: the MTA session's goroutine) to filter.Processor.Process (the reader).
// Like io.Pipe, a Write returns once the reader took every byte (or either
// side closed), so the writer's slice is never kept and nothing is copied
// or queued. Unlike io.Pipe, it is an imip.DashSkipper: while the parse
// skips a part that cannot be calendar data, the writer scans each chunk
// itself and drops it up to the next line that starts with '-', so the
// body chunks of a large attachment are dropped on the session goroutine,
// at memchr speed, without waking the reader for each one.
type bodyPipe struct {
	mu   sync.Mutex
	cond sync.Cond // broadcast when data is offered or taken, or a side closes
	data []byte    // offered by the blocked writer, not yet read
	skip bool      // drop input up to the next line that starts with '-'
	bol  bool      // while skipping: the next byte starts a line
	rerr error     // the reader closed: writes fail with it
	werr error     // the writer closed: reads end with it (io.EOF for a plain close)
}

func newBodyPipe() *bodyPipe {
	p := &bodyPipe{}
	p.cond.L = &p.mu
	return p
}

// Write offers b to the reader and waits until it has been read, dropped
// by a skip, or a side closed (then the error is the reader's, or
// io.ErrClosedPipe).
func (p *bodyPipe) Write(b []byte) (int, error) {
	n := len(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr != nil {
		return 0, p.rerr
	}
	if p.werr != nil {
		return 0, io.ErrClosedPipe
	}
	p.data = p.dropSkipped(b)
	if len(p.data) > 0 {
		p.cond.Broadcast()
		for len(p.data) > 0 && p.rerr == nil && p.werr == nil {
			p.cond.Wait()
		}
	}
	cut := len(p.data) > 0 // a side closed while b was offered
	p.data = nil           // the writer's slice is never kept
	switch {
	case !cut:
		return n, nil
	case p.rerr != nil:
		return 0, p.rerr
	}
	return 0, io.ErrClosedPipe
}

// Read reads what the writer offers; after the writer closed, it returns
// the writer's error (io.EOF), and after the reader closed io.ErrClosedPipe.
func (p *bodyPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.data) == 0 {
		switch {
		case p.rerr != nil:
			return 0, io.ErrClosedPipe
		case p.werr != nil:
			return 0, p.werr
		}
		p.cond.Wait()
	}
	n := copy(b, p.data)
	p.data = p.data[n:]
	if len(p.data) == 0 {
		p.cond.Broadcast() // the writer's slice is read: it may return
	}
	return n, nil
}

// SkipToDash implements imip.DashSkipper: what the writer offers now or
// later is dropped up to the next line that starts with '-'.
func (p *bodyPipe) SkipToDash(bol bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skip, p.bol = true, bol
	if len(p.data) > 0 {
		p.data = p.dropSkipped(p.data)
		if len(p.data) == 0 {
			p.cond.Broadcast() // all dropped: the writer may return
		}
	}
}

// dropSkipped returns what is left of b after the skip in progress, if
// any; p.mu is held.
func (p *bodyPipe) dropSkipped(b []byte) []byte {
	if !p.skip || len(b) == 0 {
		return b
	}
	i := imip.DashLine(b, p.bol)
	if i < 0 {
		p.bol = b[len(b)-1] == '\n'
		return nil
	}
	p.skip = false
	return b[i:]
}

// closeRead ends the reading side: pending and later writes fail with err.
func (p *bodyPipe) closeRead(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		p.rerr = err
	}
	p.cond.Broadcast()
}

// closeWrite ends the input: reads return err, or io.EOF when err is nil
// (after what is offered, which only a concurrent Write can have).
func (p *bodyPipe) closeWrite(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return
	}
	if err == nil {
		err = io.EOF
	}
	p.werr = err
	p.cond.Broadcast()
}
