package filter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"imipd/filter/conn"
	"imipd/itip/imip"
)

// milterStream is one message's Processor.Process, running in its own
// goroutine and reading the message from a pipe the milter callbacks write
// into as the MTA sends it.
type milterStream struct {
	m      *Milter
	pipe   *bodyPipe // nil for a buffered message (Process reads its copy)
	ctx    context.Context
	cancel context.CancelFunc
	// watch fires when a hand-over or the final wait takes longer than
	// ProcessTimeout: it cancels ctx and cuts the pipe.
	watch    *time.Timer
	timedOut atomic.Bool
	// capped names the imip limit reasons MaxMessage lowered: a rejection
	// for one of them means "over MaxMessage", not a bad message.
	capped map[string]bool

	ended bool // writes are dropped: Process stopped reading (session goroutine only)

	done chan struct{} // closed when Process returned; then rep, env, err are set
	rep  *Report
	env  Envelope
	err  error
}

var (
	errStreamAborted  = errors.New("message aborted")
	errStreamFinished = errors.New("processing finished")
)

// startStream starts Processor.Process for msg, whose envelope is complete
// (the header stage follows the last RCPT). Process reads src when it is not
// nil (the whole message, buffered), else the stream's pipe; pm, when not
// nil, is the message parsed already (no src, no pipe).
func (m *Milter) startStream(msg *milterMsg, src io.Reader, pm *parsed) *milterStream {
	ctx, cancel := context.WithCancel(context.Background())
	st := &milterStream{m: m, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	if src == nil && pm == nil { // streamed: the callbacks write into the pipe
		st.pipe = newBodyPipe()
	}
	st.watch = time.AfterFunc(m.opt.ProcessTimeout, st.expire)
	st.watch.Stop()
	p, capped := m.processor()
	st.capped = capped
	env := Envelope{MailFrom: msg.from, Rcpts: msg.rcpts, Transport: "milter", QueueID: msg.queueID, Received: m.p.now()}
	sub, queueID := msg.submission(), msg.queueID
	m.wg.Add(1) // a connection is live, so the counter is not zero: no race with Shutdown's Wait
	go func() {
		defer m.wg.Done()
		defer close(st.done)
		defer func() {
			// Process read what it needed: later writes fail at once.
			st.closeRead(errStreamFinished)
			if st.timedOut.Load() && st.err == nil {
				m.log.Warn("processing finished after the milter deadline; the message was tagged error", "queue_id", queueID,
					"timeout", m.opt.ProcessTimeout)
			}
		}()
		defer conn.Recover(func(p *conn.Panic) {
			st.err = p
			m.log.Error("processing panicked", "queue_id", queueID, "panic", p)
		})()
		st.env = env
		out, err := m.p.OwnMail(ctx, m.opt.Own, sub)
		if err != nil {
			st.err = err
			return
		}
		st.env.Outgoing = out
		if pm != nil {
			st.rep, st.err = p.processParsed(ctx, *pm, st.env)
			return
		}
		if src == nil {
			src = st.pipe
		}
		st.rep, st.err = p.Process(ctx, src, st.env)
	}()
	return st
}

// processor returns the Processor for one message: m.p, or a copy whose
// MIME caps are lowered to MaxMessage (limits), with the reasons of the
// caps lowered. The copy shares m.p's decoded-calendar cache.
func (m *Milter) processor() (*Processor, map[string]bool) {
	lim, capped := m.limits()
	if capped == nil {
		return m.p, nil
	}
	m.p.cals() // made before the copy, so that every copy shares it
	p := *m.p
	p.Cfg.MIME = lim
	return &p, capped
}

// limits returns the Processor's MIME caps lowered to MaxMessage, and the
// reasons of the caps lowered (nil: none).
func (m *Milter) limits() (imip.Limits, map[string]bool) {
	lim := m.p.Cfg.MIME
	d := imip.DefaultLimits()
	limit := m.opt.MaxMessage
	var capped map[string]bool
	lower := func(v *int64, def int64, reason string) {
		if *v <= 0 {
			*v = def
		}
		if *v > limit {
			*v = limit
			if capped == nil {
				capped = map[string]bool{}
			}
			capped[reason] = true
		}
	}
	hb := int64(lim.MaxHeaderBytes)
	lower(&hb, int64(d.MaxHeaderBytes), imip.ReasonHeaderSize)
	lower(&lim.MaxCalendarBytes, d.MaxCalendarBytes, imip.ReasonCalendarSize)
	lower(&lim.MaxDecodedBytes, d.MaxDecodedBytes, imip.ReasonDecodedSize)
	if capped == nil {
		return m.p.Cfg.MIME, nil
	}
	lim.MaxHeaderBytes = int(hb)
	return lim, capped
}

// write hands b to Process and returns once Process has read it, has
// returned, or ProcessTimeout passed. After Process returned (or the
// stream was cut) it drops b at once.
func (st *milterStream) write(b []byte) {
	if st.ended || len(b) == 0 {
		return
	}
	st.watch.Reset(st.m.opt.ProcessTimeout)
	_, err := st.pipe.Write(b)
	st.watch.Stop()
	if err != nil {
		st.ended = true
	}
}

// expire is the ProcessTimeout watchdog.
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

// finish ends the message (EOF for Process) and waits up to ProcessTimeout
// for the result.
func (st *milterStream) finish() (*Report, Envelope, error) {
	if st.pipe != nil {
		st.pipe.closeWrite(nil)
	}
	st.ended = true
	st.watch.Reset(st.m.opt.ProcessTimeout)
	defer st.watch.Stop()
	select {
	case <-st.done:
	case <-st.ctx.Done():
		select {
		case <-st.done: // finished as the deadline passed: the result counts
		default:
			return nil, Envelope{}, fmt.Errorf("processing: %w", context.DeadlineExceeded)
		}
	}
	if st.err != nil {
		return nil, st.env, st.err
	}
	if st.timedOut.Load() { // cut while reading: the result is not the message's
		return nil, st.env, fmt.Errorf("processing: %w", context.DeadlineExceeded)
	}
	return st.rep, st.env, nil
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
