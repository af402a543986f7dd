package milter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"imipd/filter"
	"imipd/filter/conn"
)

// milterStream is one message's filter.Processor.Process, running in its own
// goroutine and reading the message from a pipe the milter callbacks write
// into as the MTA sends it.
type milterStream struct {
	m      *Milter
	pipe   *bodyPipe // nil for a buffered message (Process reads its copy)
	ctx    context.Context
	cancel context.CancelFunc
	// watch fires when a hand-over or the final wait takes longer than
	// processTimeout: it cancels ctx and cuts the pipe.
	watch    *time.Timer
	timedOut atomic.Bool
	ended    bool // writes are dropped: Process stopped reading (session goroutine only)

	done chan struct{} // closed when Process returned; then rep and err are set
	rep  *filter.Report
	err  error
}

var (
	errStreamAborted  = errors.New("message aborted")
	errStreamFinished = errors.New("processing finished")
)

// startStream starts filter.Processor.Process for msg, whose envelope is complete
// (the header stage follows the last RCPT). Process reads src when it is not
// nil (the whole message, buffered), else the stream's pipe; pm, when not
// nil, is the message parsed already (no src, no pipe).
func (m *Milter) startStream(msg *milterMsg, src io.Reader, pm *filter.Parsed) *milterStream {
	ctx, cancel := context.WithCancel(context.Background())
	st := &milterStream{m: m, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	if src == nil && pm == nil { // streamed: the callbacks write into the pipe
		st.pipe = newBodyPipe()
	}
	st.watch = time.AfterFunc(m.opt.processTimeout, st.expire)
	st.watch.Stop()
	if src == nil && pm == nil {
		src = st.pipe
	}
	d, queueID := m.delivery(msg, src, pm), msg.queueID
	m.wg.Add(1) // a connection is live, so the counter is not zero: no race with Shutdown's Wait
	go func() {
		defer m.wg.Done()
		defer close(st.done)
		defer func() {
			// Process read what it needed: later writes fail at once.
			st.closeRead(errStreamFinished)
			if st.timedOut.Load() && st.err == nil {
				m.log.Warn("processing finished after the milter deadline; the message was tagged error", "queue_id", queueID,
					"timeout", m.opt.processTimeout)
			}
		}()
		defer conn.Recover(func(p *conn.Panic) {
			st.err = p
			m.log.Error("processing panicked", "queue_id", queueID, "panic", p)
		})()
		st.rep, st.err = m.p.Process(ctx, d)
	}()
	return st
}

// write hands b to Process and returns once Process has read it, has
// returned, or processTimeout passed. After Process returned (or the
// stream was cut) it drops b at once.
func (st *milterStream) write(b []byte) {
	if st.ended || len(b) == 0 {
		return
	}
	st.watch.Reset(st.m.opt.processTimeout)
	_, err := st.pipe.Write(b)
	st.watch.Stop()
	if err != nil {
		st.ended = true
	}
}

// expire is the processTimeout watchdog.
func (st *milterStream) expire() {
	st.timedOut.Store(true)
	st.cancel()
	st.closeRead(context.DeadlineExceeded)
}

// closeRead makes Process's reads (and so later writes) fail with err; a
// buffered message has no pipe.
func (st *milterStream) closeRead(err error) {
	if st.pipe != nil {
		st.pipe.closeRead(err)
	}
}

// finish ends the message (EOF for Process) and waits up to processTimeout
// for the result.
func (st *milterStream) finish() (*filter.Report, error) {
	if st.pipe != nil {
		st.pipe.closeWrite(nil)
	}
	st.ended = true
	st.watch.Reset(st.m.opt.processTimeout)
	defer st.watch.Stop()
	select {
	case <-st.done:
	case <-st.ctx.Done():
		select {
		case <-st.done: // finished as the deadline passed: the result counts
		default:
			return nil, fmt.Errorf("processing: %w", context.DeadlineExceeded)
		}
	}
	if st.err != nil {
		return nil, st.err
	}
	if st.timedOut.Load() { // cut while reading: the result is not the message's
		return nil, fmt.Errorf("processing: %w", context.DeadlineExceeded)
	}
	return st.rep, nil
}

// abort cuts the stream: Process sees a read error and its context is
// cancelled; nobody waits for it (the Milter's WaitGroup does). Safe from
// any goroutine, any number of times.
func (st *milterStream) abort() {
	st.cancel()
	if st.pipe != nil {
		st.pipe.closeWrite(errStreamAborted)
	}
	st.watch.Stop()
}
