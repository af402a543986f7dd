package outbox_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"imipd/calstore"
	"imipd/outbox"
)

// ---- a submission server for the sender to talk to ----

type obMsg struct {
	from   string
	rcpts  []string
	data   []byte
	tls    bool   // TLS was in use at DATA
	authed string // the AUTH PLAIN user, if any
}

type obSink struct {
	t    *testing.T
	srv  *smtp.Server
	addr string // inet:127.0.0.1:PORT

	mu       sync.Mutex
	msgs     []obMsg
	dataErrs []error // answers to the next DATAs, in order (nil: accept)
	rcptErr  map[string]error
	drop     bool // close the connection at DATA
	user     string
	pass     string // with user: AUTH PLAIN required
	got      chan struct{}
	// gate, when set before the first message, holds every DATA until
	// it is closed; inData is told when a DATA waits there.
	gate, inData chan struct{}
}

func newObSink(t *testing.T, tlsCfg *tls.Config) *obSink {
	t.Helper()
	s := &obSink{t: t, rcptErr: map[string]error{}, got: make(chan struct{}, 64)}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = "inet:" + ln.Addr().String()
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &obSession{s: s, c: c}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.TLSConfig = tlsCfg
	s.srv.ErrorLog = discardLog{}
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// discardLog drops go-smtp's server log.
type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

func (s *obSink) messages() []obMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]obMsg(nil), s.msgs...)
}

// wait waits until the sink holds n messages.
func (s *obSink) wait(n int, d time.Duration) []obMsg {
	s.t.Helper()
	deadline := time.After(d)
	for {
		if m := s.messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.got:
		case <-deadline:
			s.t.Fatalf("sink: %d messages after %v, want %d", len(s.messages()), d, n)
		}
	}
}

type obSession struct {
	s      *obSink
	c      *smtp.Conn
	from   string
	rcpts  []string
	authed string
}

func (ss *obSession) Reset()        { ss.from, ss.rcpts = "", nil }
func (ss *obSession) Logout() error { return nil }

func (ss *obSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *obSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		ss.s.mu.Lock()
		defer ss.s.mu.Unlock()
		if username != ss.s.user || password != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = username
		return nil
	}), nil
}

func (ss *obSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.s.mu.Lock()
	needAuth := ss.s.user != ""
	ss.s.mu.Unlock()
	if needAuth && ss.authed == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *obSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	err := ss.s.rcptErr[to]
	ss.s.mu.Unlock()
	if err != nil {
		return err
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *obSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.gate != nil {
		ss.s.inData <- struct{}{}
		<-ss.s.gate
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.drop {
		ss.c.Conn().Close()
		return errors.New("dropped")
	}
	if len(ss.s.dataErrs) > 0 {
		e := ss.s.dataErrs[0]
		ss.s.dataErrs = ss.s.dataErrs[1:]
		if e != nil {
			return e
		}
	}
	_, isTLS := ss.c.TLSConnectionState()
	ss.s.msgs = append(ss.s.msgs, obMsg{from: ss.from, rcpts: ss.rcpts, data: b, tls: isTLS, authed: ss.authed})
	select {
	case ss.s.got <- struct{}{}:
	default:
	}
	return nil
}

// obSelfSigned returns a server config for 127.0.0.1 and a client config that
// trusts it.
func obSelfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sink.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"sink.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// ---- store and sender helpers ----

func obStore(t *testing.T) *calstore.DB {
	t.Helper()
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

const obReplyICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipd test//EN\r\nMETHOD:REPLY\r\n" +
	"BEGIN:VEVENT\r\nUID:outbox-1@example.test\r\nDTSTAMP:20260301T090000Z\r\n" +
	"DTSTART:20260310T100000Z\r\nDTEND:20260310T110000Z\r\nSEQUENCE:0\r\nSUMMARY:Café planning\r\n" +
	"ORGANIZER;CN=Alice:mailto:alice@remote.test\r\nATTENDEE;PARTSTAT=ACCEPTED;CN=Bob:mailto:bob@example.test\r\n" +
	"END:VEVENT\r\nEND:VCALENDAR\r\n"

func obReplyItem(auto bool) calstore.OutboxItem {
	return calstore.OutboxItem{User: "bob@example.test", From: "bob@example.test", To: []string{"alice@remote.test"},
		Method: "REPLY", UID: "outbox-1@example.test", Subject: "Reply: Café planning", Body: []byte(obReplyICS), Auto: auto}
}

func obEnqueue(t *testing.T, s calstore.Store, it calstore.OutboxItem) calstore.OutboxItem {
	t.Helper()
	var out calstore.OutboxItem
	if err := s.Write(context.Background(), func(tx calstore.Tx) error {
		var err error
		out, err = tx.Enqueue(it)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func obItem(t *testing.T, s calstore.Store, id uint64) calstore.OutboxItem {
	t.Helper()
	var out calstore.OutboxItem
	if err := s.Read(context.Background(), func(tx calstore.Tx) error {
		var err error
		out, err = tx.OutboxItem(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func obPut(t *testing.T, s calstore.Store, it calstore.OutboxItem) {
	t.Helper()
	if err := s.Write(context.Background(), func(tx calstore.Tx) error { return tx.PutOutbox(it) }); err != nil {
		t.Fatal(err)
	}
}

// testClock is a clock for Options.Now in tests: it
// stands still until set.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// newObClock is the sender's clock in tests. It starts a minute ahead of
// the wall clock, by which the store stamps what is enqueued, so that an
// item just enqueued is due.
func newObClock() *testClock { return &testClock{t: time.Now().Add(time.Minute).Round(0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// obWaitLimit bounds every wait for the sender; reaching it fails the test.
const obWaitLimit = 10 * time.Second

// obRunner is a running sender on a testClock. The sender signals the end
// of each round; tests wait on that signal, never on a sleep.
type obRunner struct {
	t     *testing.T
	ob    *outbox.Sender
	db    calstore.Store
	clock *testClock
	stop  func() error // cancels Run and waits for it

	mu   sync.Mutex
	last time.Time     // the time the last finished round went by
	done chan struct{} // closed at the end of the next round
}

// obStart starts a sender for db on a new testClock (o.Now is replaced),
// after calling setup, if any, with it.
func obStart(t *testing.T, db calstore.Store, o outbox.Options, setup ...func(*outbox.Sender)) *obRunner {
	t.Helper()
	r := &obRunner{t: t, db: db, clock: newObClock(), done: make(chan struct{})}
	o.Now = r.clock.Now
	r.ob = outbox.New(db, o, obLog(t))
	for _, f := range setup {
		f(r.ob)
	}
	outbox.OnRound(r.ob, func(now time.Time) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.last = now
		close(r.done)
		r.done = make(chan struct{})
	})
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() { exited <- r.ob.Run(ctx) }()
	var once sync.Once
	var err error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-exited:
			case <-time.After(obWaitLimit):
				err = fmt.Errorf("Run did not return within %v of cancel", obWaitLimit)
			}
		})
		return err
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// next returns a channel closed at the end of the next round.
func (r *obRunner) next() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// roundAt waits until a round that went by at or after at has finished.
func (r *obRunner) roundAt(at time.Time) {
	r.t.Helper()
	limit := time.After(obWaitLimit)
	for {
		r.mu.Lock()
		last, done := r.last, r.done
		r.mu.Unlock()
		if !last.IsZero() && !last.Before(at) {
			return
		}
		select {
		case <-done:
		case <-limit:
			r.t.Fatalf("outbox: no round at %v within %v (last %v)", at, obWaitLimit, last)
		}
	}
}

// advance moves the clock to at, wakes the sender and waits for its round.
func (r *obRunner) advance(at time.Time) {
	r.t.Helper()
	r.clock.set(at)
	r.ob.Kick()
	r.roundAt(at)
}

// until waits, round by round, until cond holds for the item.
func (r *obRunner) until(id uint64, what string, cond func(calstore.OutboxItem) bool) calstore.OutboxItem {
	r.t.Helper()
	limit := time.After(obWaitLimit)
	for {
		done := r.next() // before the look, so that no round is missed
		it := obItem(r.t, r.db, id)
		if cond(it) {
			return it
		}
		select {
		case <-done:
		case <-limit:
			r.t.Fatalf("outbox item %d: not %s within %v: %+v", id, what, obWaitLimit, it)
		}
	}
}

func obLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(obLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type obLogWriter struct{ t *testing.T }

func (w obLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// obOpts: the backoffs are long on the wall clock (no wall-clock timer
// fires during a test); tests move the sender's clock past them.
func obOpts(addr string) outbox.Options {
	return outbox.Tune(outbox.Options{Address: addr}, outbox.Tuning{Hostname: "imipd.test", MinBackoff: obMinBackoff, MaxBackoff: obMaxBackoff})
}

// The backoffs of obOpts.
const (
	obMinBackoff = 30 * time.Second
	obMaxBackoff = 2 * time.Minute
)

// obParsed is a received message taken apart with go-message.
type obParsed struct {
	h                  gomail.Header
	textType, calType  string
	textParams, calPar map[string]string
	text, cal          []byte
}

func obParse(t *testing.T, raw []byte) obParsed {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message.Read: %v\n%s", err, raw)
	}
	p := obParsed{h: gomail.Header{Header: e.Header}}
	mt, _, err := e.Header.ContentType()
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", mt, err)
	}
	mr := e.MultipartReader()
	var n int
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		n++
		mt, params, err := part.Header.ContentType()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(part.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch n {
		case 1:
			p.textType, p.textParams, p.text = mt, params, body
		case 2:
			p.calType, p.calPar, p.cal = mt, params, body
		}
	}
	if n != 2 {
		t.Fatalf("%d parts, want 2", n)
	}
	return p
}

// ---- Compose ----

func TestComposeReply(t *testing.T) {
	for _, auto := range []bool{false, true} {
		it := obReplyItem(auto)
		it.ID, it.Created = 7, time.Date(2026, 3, 1, 9, 0, 0, 123, time.UTC)
		now := time.Date(2026, 3, 1, 9, 5, 0, 0, time.UTC)
		id, raw, err := outbox.Compose(it, now, "imipd.test", nil)
		if err != nil {
			t.Fatal(err)
		}
		p := obParse(t, raw)
		if from, _ := p.h.AddressList("From"); len(from) != 1 || from[0].Address != "bob@example.test" {
			t.Errorf("From = %v", from)
		}
		if to, _ := p.h.AddressList("To"); len(to) != 1 || to[0].Address != "alice@remote.test" {
			t.Errorf("To = %v", to)
		}
		if d, err := p.h.Date(); err != nil || !d.Equal(now) {
			t.Errorf("Date = %v, %v", d, err)
		}
		if mid, _ := p.h.MessageID(); mid != id || !strings.HasSuffix(mid, "@imipd.test") {
			t.Errorf("Message-ID %q, Compose said %q", mid, id)
		}
		if s, _ := p.h.Subject(); s != "Reply: Café planning" {
			t.Errorf("Subject = %q", s)
		}
		if v := p.h.Get("MIME-Version"); v != "1.0" {
			t.Errorf("MIME-Version = %q", v)
		}
		if p.h.Has("Sender") {
			t.Errorf("Sender without a delegate: %q", p.h.Get("Sender"))
		}
		if got := p.h.Get("Auto-Submitted"); (got == "auto-replied") != auto || (got != "" && !auto) {
			t.Errorf("auto=%v: Auto-Submitted = %q", auto, got)
		}
		if got := p.h.Get("X-Auto-Response-Suppress"); (got == "All") != auto {
			t.Errorf("auto=%v: X-Auto-Response-Suppress = %q", auto, got)
		}
		if p.textType != "text/plain" || !strings.EqualFold(p.textParams["charset"], "utf-8") {
			t.Errorf("first part %s %v", p.textType, p.textParams)
		}
		if txt := string(p.text); !strings.Contains(txt, "bob@example.test") || !strings.Contains(txt, "Café planning") || !strings.Contains(txt, "accepted") {
			t.Errorf("text part does not say who, what: %q", txt)
		}
		if p.calType != "text/calendar" || p.calPar["method"] != "REPLY" || !strings.EqualFold(p.calPar["charset"], "utf-8") {
			t.Errorf("second part %s %v", p.calType, p.calPar)
		}
		if string(p.cal) != obReplyICS {
			t.Errorf("calendar part differs:\n%q\nwant\n%q", p.cal, obReplyICS)
		}
		// Every line of the message is 7-bit and short (no SMTPUTF8 or
		// 8BITMIME assumed).
		for _, l := range bytes.Split(raw, []byte("\r\n")) {
			if len(l) > 998 {
				t.Errorf("line longer than 998: %.60q", l)
			}
			for _, c := range l {
				if c >= 0x80 {
					t.Fatalf("8-bit byte in %q", l)
				}
			}
		}
		// Stable: another attempt at another time, same Message-ID.
		id2, _, _ := outbox.Compose(it, now.Add(time.Hour), "imipd.test", nil)
		if id2 != id || id != outbox.MessageID(it, "imipd.test") {
			t.Errorf("Message-ID not stable: %q, %q", id, id2)
		}
		other := it
		other.ID = 8
		if id3, _, _ := outbox.Compose(other, now, "imipd.test", nil); id3 == id {
			t.Errorf("two items, one Message-ID %q", id)
		}
	}
}

func TestComposeSentBy(t *testing.T) {
	it := obReplyItem(false)
	it.SentBy = "mailto:Sec@example.test"
	_, raw, err := outbox.Compose(it, time.Now(), "imipd.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := obParse(t, raw)
	if s, _ := p.h.AddressList("Sender"); len(s) != 1 || s[0].Address != "sec@example.test" {
		t.Errorf("Sender = %v", s)
	}
	if from, _ := p.h.AddressList("From"); len(from) != 1 || from[0].Address != "bob@example.test" {
		t.Errorf("From = %v", from)
	}
}

func TestComposeBad(t *testing.T) {
	it := obReplyItem(false)
	it.Method = ""
	it.Body = []byte("not a calendar")
	if _, _, err := outbox.Compose(it, time.Now(), "h", nil); err == nil {
		t.Error("no METHOD anywhere: no error")
	}
	// METHOD from the body when the item has none.
	it = obReplyItem(false)
	it.Method = ""
	_, raw, err := outbox.Compose(it, time.Now(), "h", nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := obParse(t, raw); p.calPar["method"] != "REPLY" {
		t.Errorf("method = %q", p.calPar["method"])
	}
}

// ---- sending ----

func TestOutboxDelivers(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	manual := obEnqueue(t, db, obReplyItem(false))
	auto := obReplyItem(true)
	auto.To = []string{"alice@remote.test", "carol@remote.test"}
	autoIt := obEnqueue(t, db, auto)
	r := obStart(t, db, obOpts(sk.addr))
	msgs := sk.wait(2, obWaitLimit)
	for i, want := range []calstore.OutboxItem{manual, autoIt} { // oldest first
		m := msgs[i]
		if m.from != "bob@example.test" || strings.Join(m.rcpts, ",") != strings.Join(want.To, ",") {
			t.Errorf("envelope %d: %s -> %v", i, m.from, m.rcpts)
		}
		p := obParse(t, m.data)
		if mid, _ := p.h.MessageID(); mid != outbox.MessageID(want, "imipd.test") {
			t.Errorf("message %d: Message-ID %q", i, mid)
		}
		if (p.h.Get("Auto-Submitted") == "auto-replied") != want.Auto {
			t.Errorf("message %d (auto=%v): Auto-Submitted %q", i, want.Auto, p.h.Get("Auto-Submitted"))
		}
		if p.calPar["method"] != "REPLY" || string(p.cal) != obReplyICS {
			t.Errorf("message %d: calendar part %v %q", i, p.calPar, p.cal)
		}
		if d, err := p.h.Date(); err != nil || !d.Equal(r.clock.Now().Truncate(time.Second)) {
			t.Errorf("message %d: Date %v (%v), want the sender's clock %v", i, d, err, r.clock.Now())
		}
		got := r.until(want.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
		if got.Attempts != 1 || got.LastError != "" {
			t.Errorf("item %d: %+v", want.ID, got)
		}
	}
}

// A temporary failure is retried when the sender's clock reaches the
// item's backoff, not before.
func TestOutboxTemporaryThenDelivered(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	sk.dataErrs = []error{&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}}
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	r := obStart(t, db, o)
	start := r.clock.Now()
	got := r.until(it.ID, "attempted", func(it calstore.OutboxItem) bool { return it.LastError != "" })
	if got.Status != calstore.OutboxQueued || got.Attempts != 1 || !strings.Contains(got.LastError, "451") {
		t.Errorf("after 451: %+v", got)
	}
	if back := got.NextAttempt.Sub(start); back < obMinBackoff/2 || back > obMinBackoff {
		t.Errorf("after 451: next attempt %v after the first, want within [%v, %v]", back, obMinBackoff/2, obMinBackoff)
	}
	if len(sk.messages()) != 0 {
		t.Fatal("a message was accepted with 451")
	}
	r.advance(got.NextAttempt.Add(-time.Nanosecond))
	if again := obItem(t, db, it.ID); again.Attempts != 1 || len(sk.messages()) != 0 {
		t.Fatalf("retried before its backoff: %+v", again)
	}
	r.advance(got.NextAttempt)
	sk.wait(1, obWaitLimit)
	got = r.until(it.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
	if got.Attempts != 2 || got.LastError != "" {
		t.Errorf("after delivery: %+v", got)
	}
}

func TestOutboxPermanentAndRetry(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	sk.rcptErr["alice@remote.test"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	r := obStart(t, db, o)
	got := r.until(it.ID, "failed", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxFailed })
	if got.Attempts != 1 || !strings.Contains(got.LastError, "550") || !strings.Contains(got.LastError, "alice@remote.test") {
		t.Errorf("after 550: %+v", got)
	}
	// Well past every backoff: a failed item is not retried.
	r.advance(r.clock.Now().Add(10 * obMaxBackoff))
	if got := obItem(t, db, it.ID); got.Attempts != 1 || got.Status != calstore.OutboxFailed {
		t.Errorf("failed item touched again: %+v", got)
	}

	sk.mu.Lock()
	delete(sk.rcptErr, "alice@remote.test")
	sk.mu.Unlock()
	// The plain function: requeued now, the error kept for the listing.
	if err := outbox.Retry(context.Background(), db, it.ID, r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	r.ob.Kick()
	sk.wait(1, obWaitLimit)
	got = r.until(it.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
	if got.Attempts != 2 {
		t.Errorf("after retry: %+v", got)
	}
	if err := outbox.Retry(context.Background(), db, it.ID, r.clock.Now()); !errors.Is(err, calstore.ErrInvalid) {
		t.Errorf("retry of a sent item: %v, want ErrInvalid", err)
	}
	if err := outbox.Retry(context.Background(), db, 999, r.clock.Now()); !errors.Is(err, calstore.ErrNotFound) {
		t.Errorf("retry of an unknown item: %v, want ErrNotFound", err)
	}
}

func TestRetryKeepsError(t *testing.T) {
	db := obStore(t)
	it := obEnqueue(t, db, obReplyItem(false))
	it.Status, it.LastError, it.Attempts, it.NextAttempt = calstore.OutboxFailed, "RCPT: 550 no", 3, time.Now().Add(time.Hour)
	obPut(t, db, it)
	now := time.Now().Add(time.Minute).Round(0)
	if err := outbox.Retry(context.Background(), db, it.ID, now); err != nil {
		t.Fatal(err)
	}
	got := obItem(t, db, it.ID)
	if got.Status != calstore.OutboxQueued || !got.NextAttempt.Equal(now) || got.LastError != "RCPT: 550 no" || got.Attempts != 3 {
		t.Errorf("after Retry: %+v", got)
	}
}

// obDeadAddr is an address nothing listens on.
func obDeadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "inet:" + ln.Addr().String()
	ln.Close()
	return addr
}

func TestOutboxServerDown(t *testing.T) {
	db := obStore(t)
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(obDeadAddr(t))
	r := obStart(t, db, o)
	r.roundAt(r.clock.Now())
	for n := 1; n <= 3; n++ {
		got := obItem(t, db, it.ID) // as the last round left it
		if got.Attempts != n || got.Status != calstore.OutboxQueued || !strings.Contains(got.LastError, "connect") {
			t.Fatalf("server down, attempt %d: %+v", n, got)
		}
		if n < 3 {
			r.advance(got.NextAttempt)
		}
	}
}

func TestOutboxDroppedConnection(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	sk.drop = true
	it := obEnqueue(t, db, obReplyItem(false))
	r := obStart(t, db, obOpts(sk.addr))
	got := r.until(it.ID, "attempted", func(it calstore.OutboxItem) bool { return it.LastError != "" })
	if got.Status != calstore.OutboxQueued || got.Attempts != 1 {
		t.Errorf("dropped connection: %+v", got)
	}
	sk.mu.Lock()
	sk.drop = false
	sk.mu.Unlock()
	r.advance(got.NextAttempt)
	sk.wait(1, obWaitLimit)
	r.until(it.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
}

func TestOutboxExpires(t *testing.T) {
	db := obStore(t)
	old := obReplyItem(false)
	old.Created = time.Now().Add(-6 * 24 * time.Hour)
	it := obEnqueue(t, db, old)
	o := obOpts(obDeadAddr(t))
	o = outbox.Tune(o, outbox.Tuning{MaxAge: 5 * 24 * time.Hour})
	r := obStart(t, db, o)
	got := r.until(it.ID, "failed", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxFailed })
	if got.Attempts != 1 || !strings.HasPrefix(got.LastError, "expired") {
		t.Errorf("expired item: %+v", got)
	}
}

// A crash after the server took the message but before the result was
// recorded: the item is still queued with the attempt counted, and is sent
// again with the same Message-ID.
func TestOutboxResendAfterCrash(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	r := obStart(t, db, o)
	first := sk.wait(1, obWaitLimit)[0]
	sent := r.until(it.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// The state the first Write of the attempt leaves: queued, attempt
	// counted, due (its backoff passed while the daemon was down).
	crashed := sent
	crashed.Status, crashed.NextAttempt = calstore.OutboxQueued, r.clock.Now().Add(-time.Second)
	obPut(t, db, crashed)

	r = obStart(t, db, o)
	msgs := sk.wait(2, obWaitLimit)
	p1, p2 := obParse(t, first.data), obParse(t, msgs[1].data)
	id1, _ := p1.h.MessageID()
	id2, _ := p2.h.MessageID()
	if id1 == "" || id1 != id2 {
		t.Errorf("resent with Message-ID %q, first %q", id2, id1)
	}
	got := r.until(it.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
	if got.Attempts != 2 {
		t.Errorf("attempts %d, want 2", got.Attempts)
	}
	// Past every backoff, short of the retention: nothing more is sent.
	r.advance(r.clock.Now().Add(10 * obMaxBackoff))
	if n := len(sk.messages()); n != 2 {
		t.Errorf("%d deliveries, want 2 (one per crash)", n)
	}
}

// TestOutboxClaimHeld: while a message is in flight, its sender renews
// the claim, so another sender on the same store leaves the item alone
// however long the server takes, even when its clock is far past the
// first lease; the result then puts the next attempt back to the backoff.
func TestOutboxClaimHeld(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	sk.gate, sk.inData = make(chan struct{}), make(chan struct{}, 1)
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	const lease = 300 * time.Millisecond
	renewed := make(chan time.Time, 16)
	r := obStart(t, db, o, func(s *outbox.Sender) {
		outbox.SetLease(s, lease, func(next time.Time) { renewed <- next })
	})
	select {
	case <-sk.inData:
	case <-time.After(obWaitLimit):
		t.Fatal("no DATA within the wait limit")
	}
	claimedAt := r.clock.Now()
	got := obItem(t, db, it.ID)
	if back := got.NextAttempt.Sub(claimedAt); got.Status != calstore.OutboxQueued || got.Attempts != 1 || back < obMinBackoff/2 || back > obMinBackoff {
		t.Errorf("in flight: %+v, next attempt %v after the claim, want the backoff", got, back)
	}
	// An hour later by the sender's clock, the message still in flight:
	// the claim moves with the clock.
	later := claimedAt.Add(time.Hour)
	r.clock.set(later)
	select {
	case n := <-renewed:
		if !n.Equal(later.Add(lease)) {
			t.Errorf("renewed to %v, want %v", n, later.Add(lease))
		}
	case <-time.After(obWaitLimit):
		t.Fatal("claim not renewed within the wait limit")
	}
	if got := obItem(t, db, it.ID); !got.NextAttempt.Equal(later.Add(lease)) || got.Attempts != 1 {
		t.Errorf("after the renewal: %+v", got)
	}
	// A second sender at that hour finds nothing due (else its round
	// would block in the held DATA and never end).
	r2 := obStart(t, db, o)
	r2.advance(later)
	if got := obItem(t, db, it.ID); got.Attempts != 1 {
		t.Errorf("second sender attempted the held item: %+v", got)
	}
	close(sk.gate)
	sk.wait(1, obWaitLimit)
	got = r.until(it.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
	if back := got.NextAttempt.Sub(claimedAt); got.Attempts != 1 || back < obMinBackoff/2 || back > obMinBackoff {
		t.Errorf("after delivery: %+v, next attempt %v after the claim, want the backoff", got, back)
	}
	if n := len(sk.messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestOutboxStartTLSAuth(t *testing.T) {
	db := obStore(t)
	srvTLS, cliTLS := obSelfSigned(t)
	sk := newObSink(t, srvTLS)
	sk.user, sk.pass = "bob", "s3cret"
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	o.Username, o.Password, o.RequireTLS = "bob", "s3cret", true
	o = outbox.Tune(o, outbox.Tuning{TLSConfig: cliTLS})
	r := obStart(t, db, o)
	m := sk.wait(1, obWaitLimit)[0]
	if !m.tls || m.authed != "bob" {
		t.Errorf("delivered with tls=%v auth=%q, want TLS and AUTH as bob", m.tls, m.authed)
	}
	r.until(it.ID, "sent", func(it calstore.OutboxItem) bool { return it.Status == calstore.OutboxSent })
}

func TestOutboxWrongPasswordStaysQueued(t *testing.T) {
	db := obStore(t)
	srvTLS, cliTLS := obSelfSigned(t)
	sk := newObSink(t, srvTLS)
	sk.user, sk.pass = "bob", "s3cret"
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	o.Username, o.Password = "bob", "wrong"
	o = outbox.Tune(o, outbox.Tuning{TLSConfig: cliTLS})
	r := obStart(t, db, o)
	got := r.until(it.ID, "attempted", func(it calstore.OutboxItem) bool { return it.LastError != "" })
	// A 535 is the setup's problem, not the message's: it stays queued.
	if got.Status != calstore.OutboxQueued || !strings.Contains(got.LastError, "535") {
		t.Errorf("wrong password: %+v", got)
	}
}

func TestOutboxRequireTLSRefusesPlain(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil) // no STARTTLS
	it := obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	o.RequireTLS = true
	r := obStart(t, db, o)
	got := r.until(it.ID, "attempted", func(it calstore.OutboxItem) bool { return it.LastError != "" })
	if got.Status != calstore.OutboxQueued || !strings.Contains(got.LastError, "STARTTLS") {
		t.Errorf("require_tls against a plain server: %+v", got)
	}
	if n := len(sk.messages()); n != 0 {
		t.Errorf("%d messages sent without TLS", n)
	}
}

func TestOutboxOpportunisticTLS(t *testing.T) {
	db := obStore(t)
	srvTLS, cliTLS := obSelfSigned(t)
	sk := newObSink(t, srvTLS)
	obEnqueue(t, db, obReplyItem(false))
	o := obOpts(sk.addr)
	o = outbox.Tune(o, outbox.Tuning{TLSConfig: cliTLS})
	obStart(t, db, o)
	if m := sk.wait(1, obWaitLimit)[0]; !m.tls {
		t.Error("STARTTLS offered but not used")
	}
}

// Kick wakes a sender waiting on an empty outbox: without it the item
// would wait for the idle wake-up (a minute on the wall clock).
func TestOutboxKick(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	r := obStart(t, db, obOpts(sk.addr))
	r.roundAt(r.clock.Now()) // the first round found nothing; the loop waits
	obEnqueue(t, db, obReplyItem(false))
	start := time.Now()
	r.ob.Kick()
	sk.wait(1, 3*time.Second)
	t.Logf("delivered %v after Kick", time.Since(start))
	r.ob.Kick() // never blocks, even repeatedly
	r.ob.Kick()
}

func TestOutboxRunStops(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	r := obStart(t, db, obOpts(sk.addr))
	r.roundAt(r.clock.Now())
	if err := r.stop(); err != nil {
		t.Fatalf("Run on cancel: %v", err)
	}
}

func TestOutboxRetention(t *testing.T) {
	db := obStore(t)
	sk := newObSink(t, nil)
	o := obOpts(sk.addr)
	const retention = time.Hour
	o = outbox.Tune(o, outbox.Tuning{Retention: retention})
	clock := newObClock() // the runner's, made later, is a little ahead
	oldSent := obEnqueue(t, db, obReplyItem(false))
	oldSent.Status, oldSent.Updated = calstore.OutboxSent, clock.Now().Add(-retention-time.Second)
	obPut(t, db, oldSent)
	newSent := obEnqueue(t, db, obReplyItem(false))
	newSent.Status, newSent.Updated = calstore.OutboxSent, clock.Now().Add(-retention+time.Minute)
	obPut(t, db, newSent)
	oldFailed := obEnqueue(t, db, obReplyItem(false))
	oldFailed.Status, oldFailed.Updated, oldFailed.LastError = calstore.OutboxFailed, clock.Now().Add(-2*retention), "550"
	obPut(t, db, oldFailed)
	ids := func() []uint64 {
		var ids []uint64
		if err := db.Read(context.Background(), func(tx calstore.Tx) error {
			l, err := tx.Outbox()
			for _, it := range l {
				ids = append(ids, it.ID)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	r := obStart(t, db, o)
	r.roundAt(r.clock.Now())
	if got := ids(); len(got) != 2 || got[0] != newSent.ID || got[1] != oldFailed.ID {
		t.Fatalf("outbox after pruning: %v, want [%d %d]", got, newSent.ID, oldFailed.ID)
	}
	// Once the clock passes its retention, the newer sent item goes too.
	r.advance(clock.Now().Add(2 * time.Minute))
	if got := ids(); len(got) != 1 || got[0] != oldFailed.ID {
		t.Fatalf("outbox after pruning later: %v, want [%d]", got, oldFailed.ID)
	}
	if n := len(sk.messages()); n != 0 {
		t.Errorf("%d messages sent; nothing was queued", n)
	}
}

// TestOutboxTextInUserZone: the text part of mail imipd sends shows times
// in the sending user's zone, else in default_timezone (issue 14, item 5).
func TestOutboxTextInUserZone(t *testing.T) {
	_, err1 := time.LoadLocation("Asia/Tokyo")
	newYork, err2 := time.LoadLocation("America/New_York")
	if err1 != nil || err2 != nil {
		t.Skip("no zone database")
	}
	db := obStore(t)
	if err := db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "bob@example.test", TimeZone: "Asia/Tokyo"})
	}); err != nil {
		t.Fatal(err)
	}
	sk := newObSink(t, nil)
	obEnqueue(t, db, obReplyItem(false))
	other := obReplyItem(false)
	other.User, other.From = "carol@example.test", "carol@example.test"
	obEnqueue(t, db, other)
	opts := obOpts(sk.addr)
	opts.DefaultZone = newYork
	obStart(t, db, opts)
	msgs := sk.wait(2, obWaitLimit)
	// 10:00–11:00 UTC on 10 Mar 2026.
	for i, want := range []string{"on Tue 10 Mar 2026, 19:00–20:00 (Asia/Tokyo)", "on Tue 10 Mar 2026, 06:00–07:00 (America/New_York)"} {
		if txt := string(obParse(t, msgs[i].data).text); !strings.Contains(txt, want) {
			t.Errorf("message %d: text %q lacks %q", i, txt, want)
		}
	}
}
