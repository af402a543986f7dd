// Package outbox is imipd's outbox sender: it delivers the outgoing iTIP
// mail the decision call queued in the store (calstore.OutboxTx) over SMTP
// submission, with retries and backoff (docs/rules.md "Transports"), and
// composes each item as an iMIP message (Compose). Several imipd instances
// may run a sender on one shared store: each claims what it sends (Sender).
package outbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"imipd/calstore"
	"imipd/filter"
	"imipd/filter/conn"
)

// Options configure the outbox sender (docs/rules.md "Transports": outgoing
// iTIP over SMTP submission).
type Options struct {
	Address            string // "inet:HOST:PORT" | "unix:/PATH" (SMTP submission)
	Username, Password string // AUTH PLAIN when set (only over TLS, or to a loopback/unix address)
	// RequireTLS refuses to send without STARTTLS. Without it STARTTLS is
	// still used whenever the server offers it.
	RequireTLS bool
	// DefaultZone is the time zone of the text part for a user without
	// one of their own (default_timezone); nil = UTC.
	DefaultZone *time.Location
	// Now is the clock every retry, backoff, expiry and pruning decision
	// reads (the daemon passes filter.Processor.Now); time.Now when nil. Run waits on wall-clock
	// timers; a caller moving Now forward calls Kick to have it looked at.
	Now func() time.Time

	// What the daemon leaves at the defaults (tests set them):
	// tlsConfig for STARTTLS; nil: verify the server's certificate against
	// the address's host, except on a loopback address, where the
	// certificate is not verified (the connection does not leave the
	// machine; TLS there satisfies the server's encryption policy).
	tlsConfig  *tls.Config
	hostname   string        // EHLO name and Message-ID domain; default os.Hostname()
	minBackoff time.Duration // first retry delay; default 30s
	maxBackoff time.Duration // retry delay cap; default 1h. Exponential with jitter in between.
	// maxAge: an item still undelivered this long after it was queued is
	// given up (status failed, last_error "expired: ...") at its next
	// temporary failure; default 5 days.
	maxAge time.Duration
	// retention: sent items are deleted this long after they were sent;
	// default 7 days. Failed items stay until retried or removed.
	retention time.Duration
}

// Defaults of Options.
const (
	defaultMinBackoff = 30 * time.Second
	defaultMaxBackoff = time.Hour
	defaultMaxAge     = 5 * 24 * time.Hour
	defaultRetention  = 7 * 24 * time.Hour
)

// SMTP timeouts of the sender. The dial has its own; every command must be
// answered within commandTimeout, the end of DATA within
// submitTimeout (RFC 5321 §4.5.3.2 suggests longer for a relay; a
// submission server answers in seconds).
const (
	dialTimeout    = 30 * time.Second
	commandTimeout = time.Minute
	submitTimeout  = 5 * time.Minute
	// stopGrace is how long a message in flight may still take after
	// Run's context ended (the daemon's shutdown), before its connection
	// is closed.
	stopGrace = 15 * time.Second
	// idle bounds a sleep without anything due, so that pruning runs
	// and a store changed by another process is looked at.
	idle = time.Minute
)

// Sender delivers the store's queued outbox items over SMTP submission,
// with exponential backoff, oldest first.
//
// Delivery bookkeeping, and its bound on duplicates: each item is claimed
// before it is sent, in one Store.Write that takes the oldest due item
// (calstore.OutboxTx.OutboxDue) and records the attempt (Attempts+1,
// Updated, NextAttempt moved to the end of a lease of at least 30 s, or to
// the backoff when later); while the message is in flight the sender
// renews the lease; a second Write records the result (sent; failed on a
// permanent 5xx answer to MAIL, RCPT or DATA; otherwise still queued with
// LastError) and puts NextAttempt at the backoff. Senders of several
// imipd instances on one database (pgstore) claim different items and
// never wait for each other (FOR UPDATE SKIP LOCKED), and none takes an
// item another holds. A crash (or kill -9) between the server's acceptance
// of DATA and the second Write leaves the item queued with the attempt
// counted; it is sent again when its lease ends (after restart, or by
// another instance), with the same Message-ID (Compose derives it from the
// item). So a message is delivered at most once per crash that hits that
// window, plus what SMTP itself allows (a connection lost after the final
// "." but before the server's answer, RFC 1047), and every copy carries
// one Message-ID that receivers — and imipd's own once-only log —
// de-duplicate on. Nothing queued is ever lost: the item is in the store
// before anything is sent.
type Sender struct {
	store calstore.Store
	opt   Options
	log   *slog.Logger
	kick  chan struct{}
	now   func() time.Time
	// afterRound, when set (by tests), is called after each round with
	// the time that round went by.
	afterRound func(now time.Time)
	// lease is how long a claim holds an item at least (defaultLease;
	// tests shorten it); afterRenew, when set (by tests), is called after
	// each renewal of a claim with the new NextAttempt.
	lease      time.Duration
	afterRenew func(next time.Time)
}

// New returns a sender for store; Run starts it.
func New(store calstore.Store, opt Options, log *slog.Logger) *Sender {
	if opt.hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			opt.hostname = h
		} else {
			opt.hostname = "localhost"
		}
	}
	if opt.minBackoff <= 0 {
		opt.minBackoff = defaultMinBackoff
	}
	if opt.maxBackoff <= 0 {
		opt.maxBackoff = defaultMaxBackoff
	}
	if opt.maxBackoff < opt.minBackoff {
		opt.maxBackoff = opt.minBackoff
	}
	if opt.maxAge <= 0 {
		opt.maxAge = defaultMaxAge
	}
	if opt.retention <= 0 {
		opt.retention = defaultRetention
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	return &Sender{store: store, opt: opt, log: log, kick: make(chan struct{}, 1), now: now, lease: defaultLease}
}

// Kick tells the sender that something was enqueued: it looks at the outbox
// now instead of at the next retry time. It never blocks.
func (o *Sender) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// Retry requeues a failed or queued outbox item to be sent now:
// status queued, NextAttempt now; Attempts and LastError are kept. A sent
// item is not sent again (calstore.ErrInvalid); an unknown ID is
// calstore.ErrNotFound. A running sender notices at its next wake-up (at
// most idle later); Sender.Kick wakes it at once.
func Retry(ctx context.Context, s calstore.Store, id uint64, now time.Time) error {
	return s.Write(ctx, func(tx calstore.Tx) error {
		it, err := tx.OutboxItem(id)
		if err != nil {
			return err
		}
		if it.Status == calstore.OutboxSent {
			return fmt.Errorf("%w: outbox item %d was sent already", calstore.ErrInvalid, id)
		}
		it.Status = calstore.OutboxQueued
		it.NextAttempt = now
		it.Updated = now
		return tx.PutOutbox(it)
	})
}

// Run sends due queued items, oldest first, then sleeps until the next
// item is due or Kick is called, until ctx ends; then it returns nil after
// the message in flight, if any, is finished (for at most a few seconds).
// It returns an error only when the store is closed under it.
func (o *Sender) Run(ctx context.Context) error {
	o.log.Info("outbox sender started", "address", o.opt.Address, "require_tls", o.opt.RequireTLS, "auth", o.opt.Username != "")
	for {
		now := o.now()
		next, err := o.round(ctx, now)
		if o.afterRound != nil {
			o.afterRound(now)
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := idle
		if err != nil {
			if errors.Is(err, calstore.ErrClosed) {
				return err
			}
			o.log.Error("outbox: store", "err", err)
			wait = o.opt.minBackoff
		} else if !next.IsZero() {
			wait = min(max(next.Sub(o.now()), 0), idle)
		}
		// The wait itself is on the wall clock, like every I/O deadline
		// here (dial, SMTP commands, the stop grace): only decisions read
		// o.now.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-o.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// round prunes old sent items, sends every item due at now and returns
// when the next queued item is due (zero: none queued). It reads what the
// store's indexes say (calstore.OutboxTx), never the whole outbox, and
// writes only when there is something to prune or to send.
func (o *Sender) round(ctx context.Context, now time.Time) (time.Time, error) {
	var old []uint64
	due := false
	if err := o.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		if old, err = tx.OutboxSentBefore(now.Add(-o.opt.retention), 0); err != nil {
			return err
		}
		l, err := tx.OutboxDue(now, 1)
		due = len(l) > 0
		return err
	}); err != nil {
		return time.Time{}, err
	}
	if len(old) > 0 {
		if err := o.prune(ctx, old, now); err != nil {
			return time.Time{}, err
		}
	}
	// One item at a time, each claimed in its own Write: another sender
	// (another instance on the same database) takes the others meanwhile.
	// An item claimed here is due again only after now, so the loop ends.
	for due {
		if ctx.Err() != nil {
			return time.Time{}, nil
		}
		c, ok, err := o.claim(ctx, now)
		if err != nil {
			return time.Time{}, err
		}
		if !ok {
			break
		}
		if err := o.attempt(ctx, c); err != nil {
			return time.Time{}, err
		}
	}
	var next time.Time
	err := o.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		next, err = tx.OutboxNextDue(now)
		return err
	})
	return next, err
}

// prune deletes sent items older than the retention (checked again inside
// the transaction).
func (o *Sender) prune(ctx context.Context, ids []uint64, now time.Time) error {
	n := 0
	err := o.store.Write(ctx, func(tx calstore.Tx) error {
		n = 0
		for _, id := range ids {
			it, err := tx.OutboxItem(id)
			if errors.Is(err, calstore.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if it.Status != calstore.OutboxSent || now.Sub(it.Updated) <= o.opt.retention {
				continue
			}
			if err := tx.DeleteOutbox(id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err == nil && n > 0 {
		o.log.Info("outbox: pruned sent items", "count", n, "retention", o.opt.retention.String())
	}
	return err
}

// backoff is the delay before attempt number attempts+1: minBackoff
// doubled per earlier attempt, capped at maxBackoff, with jitter in
// [d/2, d] so that items queued together spread out.
func (o *Sender) backoff(attempts int) time.Duration {
	d := o.opt.minBackoff
	for i := 1; i < attempts && d < o.opt.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.opt.maxBackoff)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// defaultLease is how long a claim holds an item at least: the claim
// moves the item's NextAttempt this far ahead (or to its backoff, when
// later), and hold moves it again every third of it while the message is
// in flight, so that no other sender takes an item being sent, however
// slow the server, and another takes over within it after this one died.
const defaultLease = 30 * time.Second

// claimed is an item a sender has claimed.
type claimed struct {
	it    calstore.OutboxItem // as the claim stored it: attempt counted, NextAttempt the lease's end
	at    time.Time           // when it was claimed
	retry time.Time           // the next attempt after a temporary failure (the backoff)
	zone  *time.Location      // the sending user's, for the text part
}

// claim takes the oldest item due at due that no other sender holds and
// records the attempt: Attempts+1, NextAttempt the end of the lease,
// Updated, in one Write. ok is false when none is left.
func (o *Sender) claim(ctx context.Context, due time.Time) (c claimed, ok bool, err error) {
	err = o.store.Write(ctx, func(tx calstore.Tx) error {
		ok = false
		l, err := tx.OutboxDue(due, 1)
		if err != nil || len(l) == 0 {
			return err
		}
		c = claimed{it: l[0], at: o.now()}
		// The text part shows times in the sending user's zone.
		c.zone = o.opt.DefaultZone
		if u, err := tx.User(c.it.User); err == nil {
			c.zone = filter.UserZone(u, o.opt.DefaultZone)
		}
		c.it.Attempts++
		c.retry = c.at.Add(o.backoff(c.it.Attempts))
		c.it.NextAttempt = maxTime(c.retry, c.at.Add(o.lease))
		c.it.Updated = c.at
		ok = true
		return tx.PutOutbox(c.it)
	})
	return c, ok, err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// hold renews the claim on c's item while it is sent: every third of the
// lease (on the wall clock, like every I/O deadline) it moves NextAttempt
// to now + lease, as long as the item is still as this sender left it. The returned
// function stops it and returns the item's NextAttempt as last written.
func (o *Sender) hold(ctx context.Context, c claimed, log *slog.Logger) (stop func() time.Time) {
	done, last := make(chan struct{}), make(chan time.Time, 1)
	go func() {
		until := c.it.NextAttempt
		t := time.NewTicker(o.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				last <- until
				return
			case <-t.C:
			}
			next := o.now().Add(o.lease)
			renewed := false
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.lease/3)
			err := o.store.Write(wctx, func(tx calstore.Tx) error {
				renewed = false
				cur, err := tx.OutboxItem(c.it.ID)
				if err != nil || cur.Status != calstore.OutboxQueued || cur.Attempts != c.it.Attempts || !cur.NextAttempt.Equal(until) || !next.After(until) {
					return err // gone, retried or taken over: no longer ours as claimed
				}
				cur.NextAttempt = next
				renewed = true
				return tx.PutOutbox(cur)
			})
			cancel()
			switch {
			case err != nil:
				log.Warn("outbox: renewing the claim failed", "err", err)
			case renewed:
				until = next
				if o.afterRenew != nil {
					o.afterRenew(next)
				}
			}
		}
	}()
	return func() time.Time {
		close(done)
		return <-last
	}
}

// attempt sends a claimed item and records the result.
func (o *Sender) attempt(ctx context.Context, c claimed) error {
	it := c.it
	log := o.log.With("outbox_id", it.ID, "method", it.Method, "uid", it.UID, "from", it.From, "to", it.To, "attempt", it.Attempts)

	msgID, raw, cerr := Compose(it, c.at, o.opt.hostname, c.zone)
	var serr error
	if cerr != nil {
		serr = &sendError{stage: "compose", err: cerr, permanent: true}
	} else {
		log = log.With("message_id", msgID)
		stop := o.hold(ctx, c, log)
		serr = o.send(ctx, it, raw)
		it.NextAttempt = stop()
	}

	// The result is recorded even when ctx ended meanwhile (shutdown):
	// what was sent must be marked sent.
	done := o.now()
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var next time.Time
	err := o.store.Write(bctx, func(tx calstore.Tx) error {
		cur, err := tx.OutboxItem(it.ID)
		if errors.Is(err, calstore.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		next = time.Time{}
		cur.Updated = done
		// The lease ends with the attempt: the next one is at the
		// backoff, unless the item was changed meanwhile (retried).
		if cur.Attempts == it.Attempts && cur.NextAttempt.Equal(it.NextAttempt) {
			cur.NextAttempt = c.retry
		}
		var se *sendError
		switch {
		case serr == nil:
			cur.Status = calstore.OutboxSent
			cur.LastError = ""
		case errors.As(serr, &se) && se.permanent:
			cur.Status = calstore.OutboxFailed
			cur.LastError = serr.Error()
		case done.Sub(cur.Created) > o.opt.maxAge:
			cur.Status = calstore.OutboxFailed
			cur.LastError = fmt.Sprintf("expired: undelivered after %d attempts since %s: %v", cur.Attempts, cur.Created.UTC().Format(time.RFC3339), serr)
		default:
			cur.LastError = serr.Error()
			if cur.Status == calstore.OutboxQueued {
				next = cur.NextAttempt
			}
		}
		return tx.PutOutbox(cur)
	})
	switch {
	case err != nil:
		log.Error("outbox: recording the result failed; the item will be sent again", "err", err, "send_err", serr)
		return err
	case serr == nil:
		log.Info("outbox: sent")
	case next.IsZero():
		log.Error("outbox: failed permanently", "err", serr)
	default:
		log.Warn("outbox: not sent, will retry", "err", serr, "next_attempt", next)
	}
	return nil
}

// sendError is a failed delivery: which stage, and whether it is permanent
// (a 5xx answer to the message's own commands: MAIL, RCPT, DATA). Failures
// of the connection itself (dial, greeting, EHLO, STARTTLS, AUTH), even
// with a 5xx code, are the setup's, not the message's: they stay
// temporary, so fixing the configuration lets every queued item go.
type sendError struct {
	stage     string
	err       error
	permanent bool
}

func (e *sendError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

func connErr(stage string, err error) error { return &sendError{stage: stage, err: err} }

func msgErr(stage string, err error) error {
	var se *smtp.SMTPError
	return &sendError{stage: stage, err: err, permanent: errors.As(err, &se) && se.Code/100 == 5}
}

// errNoStartTLS is go-smtp's error when STARTTLS is not advertised.
const errNoStartTLS = "doesn't support STARTTLS"

// send delivers raw for it over one SMTP connection.
func (o *Sender) send(ctx context.Context, it calstore.OutboxItem, raw []byte) error {
	// The message in flight is finished for a while after ctx ends.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(stopGrace, cancel) })
	defer stop()

	_, host, loopback, err := o.target()
	if err != nil {
		return connErr("address", err)
	}
	tlsCfg := o.tlsConfig(host, loopback)
	c, err := o.connect(sctx, tlsCfg, true)
	if err != nil && !o.opt.RequireTLS && strings.Contains(err.Error(), errNoStartTLS) {
		c, err = o.connect(sctx, nil, false)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_, isTLS := c.TLSConnectionState()
	if o.opt.RequireTLS && !isTLS {
		return connErr("starttls", errors.New("TLS required (submission.require_tls) but not in use"))
	}
	if o.opt.Username != "" {
		if !isTLS && !loopback {
			return connErr("auth", errors.New("refusing AUTH PLAIN without TLS to a non-loopback server"))
		}
		if !c.SupportsAuth(sasl.Plain) {
			return connErr("auth", errors.New("server does not offer AUTH PLAIN"))
		}
		if err := c.Auth(sasl.NewPlainClient("", o.opt.Username, o.opt.Password)); err != nil {
			return connErr("auth", err)
		}
	}
	if err := c.Mail(it.From, nil); err != nil {
		return msgErr("MAIL FROM:<"+it.From+">", err)
	}
	for _, r := range it.To {
		if err := c.Rcpt(r, nil); err != nil {
			return msgErr("RCPT TO:<"+r+">", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return msgErr("DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		w.Close()
		return msgErr("DATA", err)
	}
	if err := w.Close(); err != nil {
		return msgErr("end of DATA", err)
	}
	c.Quit() // the message is accepted; a failing QUIT changes nothing
	return nil
}

// connect dials the submission server, says EHLO (and STARTTLS first when
// tlsCfg is set). go-smtp's client says "EHLO localhost" before STARTTLS
// (it has no other way to start TLS on an existing connection); the EHLO
// that counts, after TLS, carries the hostname.
func (o *Sender) connect(ctx context.Context, tlsCfg *tls.Config, startTLS bool) (*smtp.Client, error) {
	dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
	nc, err := conn.Dial(dctx, o.opt.Address)
	dcancel()
	if err != nil {
		return nil, connErr("connect", err)
	}
	// Closing the connection is how a stopping daemon ends a stuck
	// conversation (go-smtp has no context); ctx ends when send returns.
	context.AfterFunc(ctx, func() { nc.Close() })
	var c *smtp.Client
	if startTLS {
		c, err = smtp.NewClientStartTLS(nc, tlsCfg)
		if err != nil {
			nc.Close()
			return nil, connErr("starttls", err)
		}
	} else {
		c = smtp.NewClient(nc)
	}
	c.CommandTimeout = commandTimeout
	c.SubmissionTimeout = submitTimeout
	if err := c.Hello(o.opt.hostname); err != nil {
		c.Close()
		return nil, connErr("EHLO", err)
	}
	return c, nil
}

// target parses the address: network, host (for TLS) and whether it is
// loopback (unix sockets count as loopback).
func (o *Sender) target() (network, host string, loopback bool, err error) {
	network, addr, err := conn.SplitAddr(o.opt.Address)
	if err != nil {
		return "", "", false, err
	}
	if network == "unix" {
		return network, "localhost", true, nil
	}
	host, _, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", false, fmt.Errorf("address %q: %w", o.opt.Address, err)
	}
	if strings.EqualFold(host, "localhost") {
		return network, host, true, nil
	}
	ip := net.ParseIP(host)
	return network, host, ip != nil && ip.IsLoopback(), nil
}

func (o *Sender) tlsConfig(host string, loopback bool) *tls.Config {
	var cfg *tls.Config
	if o.opt.tlsConfig != nil {
		cfg = o.opt.tlsConfig.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		cfg.InsecureSkipVerify = loopback
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}
