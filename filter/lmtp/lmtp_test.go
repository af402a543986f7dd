package lmtp_test

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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"imipd/calstore"
	"imipd/filter"
	"imipd/filter/lmtp"
)

// The downstream is a real go-smtp LMTP server standing in for Dovecot: it
// records every transaction, and can refuse a RCPT, fail a recipient at
// DATA, drop the connection in the middle of DATA, or hold DATA until told.

type lmtpDSTxn struct {
	From  string
	Rcpts []string
	Data  []byte
}

type lmtpDS struct {
	addr string // "unix:/PATH"
	srv  *smtp.Server

	mu         sync.Mutex
	txns       []lmtpDSTxn // completed or failed DATA, in order
	rejectRcpt map[string]bool
	failData   map[string]*smtp.SMTPError
	dropData   bool
	hold       chan struct{}   // DATA waits for it to close when not nil
	entered    chan struct{}   // signalled when DATA starts
	dropMail   int             // the next dropMail MAILs close the connection unanswered
	dropRcpt   map[string]bool // a RCPT of these closes the connection unanswered (once each)
	opened     int             // connections greeted (sessions made)
	live       map[*smtp.Conn]bool
	loggedOut  chan struct{} // signalled when a connection ends
}

func newLMTPDownstream(t testing.TB) *lmtpDS {
	t.Helper()
	d := &lmtpDS{rejectRcpt: map[string]bool{}, failData: map[string]*smtp.SMTPError{}, entered: make(chan struct{}, 16),
		dropRcpt: map[string]bool{}, live: map[*smtp.Conn]bool{}, loggedOut: make(chan struct{}, 64)}
	path := filepath.Join(t.TempDir(), "lmtp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	d.addr = "unix:" + path
	d.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		d.mu.Lock()
		d.opened++
		d.live[c] = true
		d.mu.Unlock()
		return &lmtpDSSession{d: d, c: c}, nil
	}))
	d.srv.LMTP = true
	d.srv.Domain = "dovecot.test"
	d.srv.MaxLineLength = 1 << 20 // Dovecot's LMTP takes long lines
	d.srv.ErrorLog = lmtpDiscardLog{}
	go d.srv.Serve(ln)
	t.Cleanup(func() { d.srv.Close() })
	return d
}

func (d *lmtpDS) transactions() []lmtpDSTxn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]lmtpDSTxn(nil), d.txns...)
}

type lmtpDiscardLog struct{}

func (lmtpDiscardLog) Printf(string, ...any) {}
func (lmtpDiscardLog) Println(...any)        {}

type lmtpDSSession struct {
	d     *lmtpDS
	c     *smtp.Conn
	from  string
	rcpts []string
}

func (s *lmtpDSSession) Reset() { s.from, s.rcpts = "", nil }
func (s *lmtpDSSession) Logout() error {
	s.d.mu.Lock()
	delete(s.d.live, s.c)
	s.d.mu.Unlock()
	select {
	case s.d.loggedOut <- struct{}{}:
	default:
	}
	return nil
}

func (s *lmtpDSSession) Mail(from string, _ *smtp.MailOptions) error {
	s.d.mu.Lock()
	drop := s.d.dropMail > 0
	if drop {
		s.d.dropMail--
	}
	s.d.mu.Unlock()
	if drop {
		s.c.Conn().Close()
		return errors.New("dropped")
	}
	s.from = from
	return nil
}

func (s *lmtpDSSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.d.mu.Lock()
	reject, drop := s.d.rejectRcpt[to], s.d.dropRcpt[to]
	delete(s.d.dropRcpt, to)
	s.d.mu.Unlock()
	if drop {
		s.c.Conn().Close()
		return errors.New("dropped")
	}
	if reject {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + "> User doesn't exist: " + to}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *lmtpDSSession) Data(io.Reader) error { return errors.New("LMTPData expected") }

func (s *lmtpDSSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	s.d.mu.Lock()
	drop, hold := s.d.dropData, s.d.hold
	fail := map[string]*smtp.SMTPError{}
	for k, v := range s.d.failData {
		fail[k] = v
	}
	s.d.mu.Unlock()
	select {
	case s.d.entered <- struct{}{}:
	default: // nobody waits for it
	}
	if drop {
		io.CopyN(io.Discard, r, 10)
		s.c.Conn().Close()
		return errors.New("dropped")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if hold != nil {
		<-hold
	}
	s.d.mu.Lock()
	s.d.txns = append(s.d.txns, lmtpDSTxn{From: s.from, Rcpts: append([]string(nil), s.rcpts...), Data: data})
	s.d.mu.Unlock()
	for _, rc := range s.rcpts {
		if e := fail[rc]; e != nil {
			status.SetStatus(rc, e)
		} else {
			status.SetStatus(rc, &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Saved"})
		}
	}
	return nil
}

// lmtpEnv is a proxy in front of a downstream, with a real store.
type lmtpEnv struct {
	db    *calstore.DB
	p     *filter.Processor
	clock *testClock // the Processor's, at lmtpNow until set
	ds    *lmtpDS
	proxy *lmtp.Proxy
	addr  string // 127.0.0.1:PORT
	serve chan error
	logs  *lmtpLogs
}

// lmtpLogs collects the proxy's log output.
type lmtpLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lmtpLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lmtpLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var lmtpNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newLMTPEnv(t testing.TB, opt lmtp.Options) *lmtpEnv {
	t.Helper()
	return newLMTPEnvWith(t, opt, nil)
}

// newLMTPEnvWith is newLMTPEnv with the processing configuration changed by
// tweak (nil: none) before the proxy starts.
func newLMTPEnvWith(t testing.TB, opt lmtp.Options, tweak func(*filter.Config)) *lmtpEnv {
	t.Helper()
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	if tweak != nil {
		tweak(&cfg)
	}
	e := &lmtpEnv{db: db, ds: newLMTPDownstream(t), serve: make(chan error, 1), clock: &testClock{t: lmtpNow}}
	e.p = &filter.Processor{Store: db, Cfg: cfg, Now: e.clock.Now}
	opt.Forward = e.ds.addr
	e.start(t, opt)
	return e
}

func (e *lmtpEnv) start(t testing.TB, opt lmtp.Options) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	serve := make(chan error, 1)
	e.logs = &lmtpLogs{}
	proxy := lmtp.NewProxy(e.p, opt, slog.New(slog.NewTextHandler(e.logs, nil)))
	e.serve, e.proxy = serve, proxy
	go func() { serve <- proxy.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		proxy.Shutdown(ctx)
	})
}

func (e *lmtpEnv) setUsers(t *testing.T, users map[string]string, contacts map[string][]string) {
	t.Helper()
	err := e.db.Write(context.Background(), func(tx calstore.Tx) error {
		for u, pol := range users {
			if err := tx.PutUser(calstore.User{Address: u, Policy: pol}); err != nil {
				return err
			}
			for _, c := range contacts[u] {
				if err := tx.AddContact(calstore.Contact{User: u, Address: c}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lmtpDelivery is what the upstream (go-smtp's LMTP client, as Postfix) saw.
type lmtpDelivery struct {
	rcptErr map[string]error              // RCPT refusals
	ok      map[string]*smtp.DataResponse // DATA 2xx per recipient
	failed  map[string]*smtp.SMTPError    // DATA non-2xx per recipient
	err     error                         // a failure that is not per recipient
}

func lmtpDeliver(t testing.TB, addr string, from string, rcpts []string, msg string) lmtpDelivery {
	t.Helper()
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = 10*time.Second, 10*time.Second
	d := lmtpDelivery{rcptErr: map[string]error{}, ok: map[string]*smtp.DataResponse{}, failed: map[string]*smtp.SMTPError{}}
	if err := c.Hello("mx.example.test"); err != nil {
		t.Fatal(err)
	}
	if d.err = c.Mail(from, nil); d.err != nil {
		return d
	}
	n := 0
	for _, rc := range rcpts {
		if err := c.Rcpt(rc, nil); err != nil {
			d.rcptErr[rc] = err
			continue
		}
		n++
	}
	if n == 0 {
		return d
	}
	w, err := c.Data()
	if err != nil {
		d.err = err
		return d
	}
	if _, err := io.WriteString(w, msg); err != nil {
		d.err = err
		return d
	}
	resp, err := w.CloseWithLMTPResponse()
	d.ok = resp
	var per smtp.LMTPDataError
	if errors.As(err, &per) {
		d.failed = per
	} else if err != nil {
		d.err = err
	}
	// Answered after the proxy ended the transaction (go-smtp resets the
	// session before reading the next command): its downstream connection
	// is back in the pool, or closed.
	c.Noop()
	c.Quit()
	return d
}

// header returns the values of the named field in a raw message.
func lmtpHeader(t *testing.T, raw []byte, name string) []string {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	h, err := r.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("reading header: %v", err)
	}
	return h.Values(textproto.CanonicalMIMEHeaderKey(name))
}

func lmtpBody(raw []byte) string {
	_, b, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return string(b)
}

const lmtpPlain = "From: Alice <alice@remote.test>\r\n" +
	"To: bob@example.test, carol@example.test\r\n" +
	"x-imip-processed: applied; method=REQUEST;\r\n" +
	"  uid=forged\r\n" +
	"Subject: lunch\r\n" +
	"X-IMIP-Processed : applied\r\n" +
	"Message-ID: <plain-1@remote.test>\r\n" +
	"\r\n" +
	"Lunch at noon?\r\n" +
	".leading dot\r\n" +
	"X-IMIP-Processed: in the body stays\r\n"

func lmtpInvite(id string) string {
	return "From: Alice Organizer <alice@remote.test>\r\n" +
		"To: bob@example.test, carol@example.test\r\n" +
		"Subject: Invitation: Planning\r\n" +
		"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <" + id + "@remote.test>\r\n" +
		"X-IMIP-Processed: applied; method=REQUEST; uid=forged\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n" +
		"\r\n" +
		"BEGIN:VCALENDAR\r\n" +
		"VERSION:2.0\r\n" +
		"PRODID:-//test//EN\r\n" +
		"METHOD:REQUEST\r\n" +
		"BEGIN:VEVENT\r\n" +
		"UID:" + id + "@remote.test\r\n" +
		"SEQUENCE:0\r\n" +
		"DTSTAMP:20261125T100000Z\r\n" +
		"DTSTART:20261201T090000Z\r\n" +
		"DTEND:20261201T100000Z\r\n" +
		"SUMMARY:Planning\r\n" +
		"ORGANIZER;CN=Alice:mailto:alice@remote.test\r\n" +
		"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test\r\n" +
		"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:carol@example.test\r\n" +
		"END:VEVENT\r\n" +
		"END:VCALENDAR\r\n"
}

func lmtpWantOK(t testing.TB, d lmtpDelivery, rcpts ...string) {
	t.Helper()
	if d.err != nil {
		t.Fatalf("lmtpDelivery failed: %v", d.err)
	}
	for _, rc := range rcpts {
		if _, ok := d.ok[rc]; !ok {
			t.Errorf("%s: no 2xx (rcpt %v, data %v)", rc, d.rcptErr[rc], d.failed[rc])
		}
	}
}

func TestLMTPPlainMail(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test", "carol@example.test"}, lmtpPlain)
	lmtpWantOK(t, d, "bob@example.test", "carol@example.test")
	if got := d.ok["bob@example.test"].StatusText; !strings.Contains(got, "<bob@example.test> Saved") {
		t.Errorf("status text %q: want the downstream's words", got)
	}
	txns := e.ds.transactions()
	if len(txns) != 1 {
		t.Fatalf("%d downstream transactions, want 1", len(txns))
	}
	tx := txns[0]
	if tx.From != "alice@remote.test" || strings.Join(tx.Rcpts, ",") != "bob@example.test,carol@example.test" {
		t.Errorf("downstream envelope %s -> %v", tx.From, tx.Rcpts)
	}
	if h := lmtpHeader(t, tx.Data, "X-IMIP-Processed"); len(h) != 0 {
		t.Errorf("header %q left in plain mail", h)
	}
	if strings.Contains(string(tx.Data), "uid=forged") {
		t.Errorf("folded continuation of a forged header kept:\n%s", tx.Data)
	}
	if want := "Lunch at noon?\r\n.leading dot\r\nX-IMIP-Processed: in the body stays\r\n"; lmtpBody(tx.Data) != want {
		t.Errorf("body %q, want %q", lmtpBody(tx.Data), want)
	}
	if h := lmtpHeader(t, tx.Data, "Subject"); len(h) != 1 || h[0] != "lunch" {
		t.Errorf("Subject %q", h)
	}
}

func TestLMTPPerRecipientHeader(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.setUsers(t, map[string]string{"bob@example.test": "never", "carol@example.test": "known"},
		map[string][]string{"carol@example.test": {"alice@remote.test"}})
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test", "carol@example.test"}, lmtpInvite("inv-1"))
	lmtpWantOK(t, d, "bob@example.test", "carol@example.test")
	txns := e.ds.transactions()
	if len(txns) != 2 {
		t.Fatalf("%d downstream transactions, want one per header value (2)", len(txns))
	}
	want := map[string]string{
		"bob@example.test":   "needs-action; method=REQUEST; uid=inv-1@remote.test; reason=policy-never",
		"carol@example.test": "needs-action; method=REQUEST; uid=inv-1@remote.test; reason=invitation",
	}
	for _, tx := range txns {
		if len(tx.Rcpts) != 1 {
			t.Fatalf("copy for %v: want one recipient each", tx.Rcpts)
		}
		h := lmtpHeader(t, tx.Data, "X-IMIP-Processed")
		if len(h) != 1 || h[0] != want[tx.Rcpts[0]] {
			t.Errorf("%s: header %q, want [%q]", tx.Rcpts[0], h, want[tx.Rcpts[0]])
		}
		if !bytes.HasPrefix(tx.Data, []byte("X-IMIP-Processed: ")) {
			t.Errorf("%s: header not first", tx.Rcpts[0])
		}
	}
}

func TestLMTPUnknownRecipient(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.ds.rejectRcpt["nobody@example.test"] = true
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"nobody@example.test", "bob@example.test"}, lmtpPlain)
	var se *smtp.SMTPError
	if !errors.As(d.rcptErr["nobody@example.test"], &se) || se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 1, 1}) ||
		!strings.Contains(se.Message, "User doesn't exist") {
		t.Fatalf("RCPT of an unknown user: %v, want the downstream's 550 5.1.1", d.rcptErr["nobody@example.test"])
	}
	lmtpWantOK(t, d, "bob@example.test")
	if txns := e.ds.transactions(); len(txns) != 1 || strings.Join(txns[0].Rcpts, ",") != "bob@example.test" {
		t.Errorf("downstream transactions %+v", txns)
	}
}

func TestLMTPDataFailureInOrder(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.ds.failData["carol@example.test"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox is full"}
	e.ds.failData["erin@example.test"] = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Quota exceeded permanently"}
	rcpts := []string{"bob@example.test", "carol@example.test", "dave@example.test", "erin@example.test"}
	d := lmtpDeliver(t, e.addr, "alice@remote.test", rcpts, lmtpPlain)
	lmtpWantOK(t, d, "bob@example.test", "dave@example.test")
	// The client reads the replies in RCPT order and files each under its
	// recipient, so a reply out of order lands under the wrong address.
	if se := d.failed["carol@example.test"]; se == nil || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 2, 2}) || !strings.Contains(se.Message, "Mailbox is full") {
		t.Errorf("carol: %v, want 452 4.2.2", se)
	}
	if se := d.failed["erin@example.test"]; se == nil || se.Code != 552 || !strings.Contains(se.Message, "<erin@example.test>") {
		t.Errorf("erin: %v, want 552 for erin", se)
	}
	for _, rc := range []string{"bob@example.test", "dave@example.test"} {
		if !strings.Contains(d.ok[rc].StatusText, "<"+rc+">") {
			t.Errorf("%s: status %q names another recipient", rc, d.ok[rc].StatusText)
		}
	}
}

func TestLMTPDownstreamDisconnect(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.ds.dropData = true
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test", "carol@example.test"}, lmtpPlain)
	if d.err != nil {
		t.Fatal(d.err)
	}
	for _, rc := range []string{"bob@example.test", "carol@example.test"} {
		if se := d.failed[rc]; se == nil || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 4, 0}) {
			t.Errorf("%s: %v (ok %v), want 451 4.4.0", rc, se, d.ok[rc])
		}
	}
	// The next lmtpDelivery on a fresh downstream connection works.
	e.ds.mu.Lock()
	e.ds.dropData = false
	e.ds.mu.Unlock()
	d = lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpPlain)
	lmtpWantOK(t, d, "bob@example.test")
}

func TestLMTPDownstreamUnreachable(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.proxy.Shutdown(context.Background())
	e.start(t, lmtp.Options{Forward: "unix:" + filepath.Join(t.TempDir(), "none.sock")})
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpPlain)
	var se *smtp.SMTPError
	if !errors.As(d.err, &se) || se.Code != 451 {
		t.Fatalf("MAIL with the downstream down: %v, want 451", d.err)
	}
}

func TestLMTPRetrySameHeader(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.setUsers(t, map[string]string{"carol@example.test": "known"}, map[string][]string{"carol@example.test": {"alice@remote.test"}})
	e.ds.failData["carol@example.test"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox is full"}
	msg := lmtpInvite("retry-1")
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"carol@example.test"}, msg)
	if se := d.failed["carol@example.test"]; se == nil || se.Code != 452 {
		t.Fatalf("first attempt: %v, want 452", se)
	}
	e.ds.mu.Lock()
	delete(e.ds.failData, "carol@example.test")
	e.ds.mu.Unlock()
	d = lmtpDeliver(t, e.addr, "alice@remote.test", []string{"carol@example.test"}, msg)
	lmtpWantOK(t, d, "carol@example.test")
	txns := e.ds.transactions()
	if len(txns) != 2 {
		t.Fatalf("%d downstream transactions, want 2", len(txns))
	}
	first, second := lmtpHeader(t, txns[0].Data, "X-IMIP-Processed"), lmtpHeader(t, txns[1].Data, "X-IMIP-Processed")
	want := "needs-action; method=REQUEST; uid=retry-1@remote.test; reason=invitation"
	if len(first) != 1 || first[0] != want || len(second) != 1 || second[0] != want {
		t.Errorf("headers %q then %q, want %q both times (not duplicate)", first, second, want)
	}
}

func TestLMTPTooLarge(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Tuned(lmtp.Options{}, 4096, 0))
	big := lmtpPlain + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 128)
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test", "carol@example.test"}, big)
	for _, rc := range []string{"bob@example.test", "carol@example.test"} {
		if se := d.failed[rc]; se == nil || se.Code != 552 {
			t.Errorf("%s: %v, want 552", rc, se)
		}
	}
	if n := len(e.ds.transactions()); n != 0 {
		t.Errorf("%d downstream transactions for a message over the limit", n)
	}
	d = lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpPlain)
	lmtpWantOK(t, d, "bob@example.test")
}

// A message spooled to a file (over 1 MiB) reaches the downstream intact.
func TestLMTPLargeMessage(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	big := lmtpPlain + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 40000)
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, big)
	lmtpWantOK(t, d, "bob@example.test")
	txns := e.ds.transactions()
	if len(txns) != 1 || lmtpBody(txns[0].Data) != lmtpBody([]byte(big)) {
		t.Fatalf("large message changed on the way")
	}
}

func TestLMTPStoreFailureForwardsUntagged(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	e.db.Close() // every store call fails from now on
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpInvite("store-1"))
	lmtpWantOK(t, d, "bob@example.test")
	txns := e.ds.transactions()
	if len(txns) != 1 {
		t.Fatalf("%d downstream transactions", len(txns))
	}
	if h := lmtpHeader(t, txns[0].Data, "X-IMIP-Processed"); len(h) != 0 {
		t.Errorf("header %q: want untagged (and the forged one removed)", h)
	}
	if !strings.Contains(e.logs.String(), "processing failed, message forwarded untagged") {
		t.Errorf("store failure not logged:\n%s", e.logs)
	}
}

// Two addresses of one user (primary and alias) each get the user's header;
// Process reports the user once, under the first address.
func TestLMTPAliasRecipient(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{})
	err := e.db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: "bob@example.test", Aliases: []string{"robert@example.test"}, Policy: "never"}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Both orders: the second address is found by spelling, or in the store.
	for i, rcpts := range [][]string{{"robert@example.test", "Bob@Example.test"}, {"Bob@Example.test", "robert@example.test"}} {
		id := fmt.Sprintf("alias-%d", i)
		d := lmtpDeliver(t, e.addr, "alice@remote.test", rcpts, lmtpInvite(id))
		lmtpWantOK(t, d, rcpts...)
		txns := e.ds.transactions()
		if len(txns) != i+1 || len(txns[i].Rcpts) != 2 {
			t.Fatalf("downstream transactions %+v: want one copy for both addresses", txns)
		}
		want := "needs-action; method=REQUEST; uid=" + id + "@remote.test; reason=policy-never"
		if h := lmtpHeader(t, txns[i].Data, "X-IMIP-Processed"); len(h) != 1 || h[0] != want {
			t.Errorf("%v: header %q, want %q", rcpts, h, want)
		}
	}
}

// FuzzLMTPSession feeds raw bytes as the upstream side of one session (over
// net.Pipe) to a proxy with a real downstream and store: no panic, and the
// session ends in bounded time.
func FuzzLMTPSession(f *testing.F) {
	seed := func(lines ...string) { f.Add([]byte(strings.Join(lines, "\r\n") + "\r\n")) }
	seed("LHLO a", "MAIL FROM:<alice@remote.test>", "RCPT TO:<bob@example.test>", "DATA", strings.TrimRight(lmtpPlain, "\r\n"), ".", "QUIT")
	seed("LHLO a", "MAIL FROM:<alice@remote.test>", "RCPT TO:<bob@example.test>", "RCPT TO:<carol@example.test>", "RCPT TO:<bob@example.test>", "DATA", strings.TrimRight(lmtpInvite("fz"), "\r\n"), ".", "QUIT")
	seed("LHLO a", "MAIL FROM:<>", "RCPT TO:<bob@example.test>", "BDAT 12", "Subject: x\r\n", "BDAT 0 LAST", "RSET", "MAIL FROM:<a@b>", "MAIL FROM:<a@b>", "QUIT")
	seed("LHLO a", "MAIL FROM:<a@b>", "RCPT TO:<bob@example.test>", "BDAT 100", "short", "RSET", "NOOP")
	seed("DATA", "RCPT TO:<x>", "MAIL FROM:<x> SIZE=99999999999", "LHLO", "EHLO x")

	dir := f.TempDir()
	db, err := calstore.Open(filepath.Join(dir, "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	p := &filter.Processor{Store: db, Cfg: cfg, Now: func() time.Time { return lmtpNow }}

	f.Fuzz(func(t *testing.T, in []byte) { fuzzLMTPOnce(t, p, in) })
}

// fuzzLMTPOnce runs one session of raw upstream bytes against a fresh proxy
// and downstream sharing the store of p.
func fuzzLMTPOnce(t *testing.T, p *filter.Processor, in []byte) {
	start := time.Now()
	ds := newLMTPDownstream(t)
	proxy := lmtp.NewProxy(p, lmtp.Tuned(lmtp.Options{Forward: ds.addr, ReadTimeout: 100 * time.Millisecond}, 1<<16, time.Second), nil)
	server, client := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- proxy.Serve(newLMTPPipeListener(server)) }()
	out := make(chan struct{})
	go func() { io.Copy(io.Discard, client); close(out) }()
	client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	client.Write(in)
	client.Close()
	<-out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := proxy.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("session took %v", d)
	}
}

// lmtpPipeListener hands out one connection, then waits to be closed.
type lmtpPipeListener struct {
	once   sync.Once
	ch     chan net.Conn
	closed chan struct{}
}

func newLMTPPipeListener(c net.Conn) *lmtpPipeListener {
	l := &lmtpPipeListener{ch: make(chan net.Conn, 1), closed: make(chan struct{})}
	l.ch <- c
	return l
}

func (l *lmtpPipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *lmtpPipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *lmtpPipeListener) Addr() net.Addr { return lmtpPipeAddr{} }

type lmtpPipeAddr struct{}

func (lmtpPipeAddr) Network() string { return "pipe" }
func (lmtpPipeAddr) String() string  { return "pipe" }

// A client that sends nothing, or drips a command line a byte at a time, is
// cut after ReadTimeout (go-smtp alone would answer the partial line and
// start a fresh deadline: slowloris).
func TestLMTPReadTimeout(t *testing.T) {
	for _, name := range []string{"silent", "drip-command", "drip-data"} {
		t.Run(name, func(t *testing.T) {
			e := newLMTPEnv(t, lmtp.Options{ReadTimeout: 200 * time.Millisecond})
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			br.ReadString('\n') // greeting
			drip := ""
			switch name {
			case "drip-command":
				drip = "LHLO client.example.test\r\n"
			case "drip-data":
				fmt.Fprintf(c, "LHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
				for {
					l, err := br.ReadString('\n')
					if err != nil || strings.HasPrefix(l, "354") {
						break
					}
				}
				drip = strings.Repeat("Subject: slow\r\n", 100)
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := 0; i < len(drip); i++ {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						if _, err := c.Write([]byte{drip[i]}); err != nil {
							return
						}
					}
				}
			}()
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, err := br.ReadString('\n'); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("not cut after %v", time.Since(start))
					}
					break // closed by the proxy
				}
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("cut after %v, want about the 200ms read timeout", d)
			}
		})
	}
}

// At max_connections with every connection in a transaction, a new one is
// closed at once; an idle one (greeted, no MAIL) is closed to make room.
func TestLMTPMaxConnections(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{MaxConnections: 1})
	first, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	c := smtp.NewClientLMTP(first)
	if err := c.Hello("mx.example.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(2 * time.Second))
	if l, err := bufio.NewReader(second).ReadString('\n'); err == nil {
		t.Fatalf("second connection served over MaxConnections with none idle: %q", l)
	}
	// The transaction ends: the first connection is idle, and a delivery
	// takes its place.
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	lmtpWantOK(t, lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpInvite("max-1")), "bob@example.test")
	if err := c.Noop(); err == nil {
		t.Error("the idle connection was not closed to make room")
	}
}

// Issue 13, attacks 4 and 14: idle connections must not keep the MTA out.
// After 600 idle connections (greeted or silent) a delivery still goes
// through, and a connection that never speaks is cut after
// FirstReadTimeout.
func TestLMTPIdleFlood(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{FirstReadTimeout: 200 * time.Millisecond})
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for range 600 {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	lmtpWantOK(t, lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, lmtpInvite("flood-1")), "bob@example.test")
	idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(idle[0]); isTimeout(err) { // the greeting, then the close
		t.Error("the oldest idle connection was not closed to make room")
	}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("a silent connection was not cut: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cut after %v, want about the 200ms first read timeout", d)
	}
}

// on_error = tempfail: a store failure answers 451 for every recipient and
// forwards nothing (the MTA keeps the message and retries).
func TestLMTPStoreFailureTempFail(t *testing.T) {
	e := newLMTPEnv(t, lmtp.Options{TempFailOnError: true})
	e.db.Close()
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test", "carol@example.test"}, lmtpInvite("store-2"))
	for _, rc := range []string{"bob@example.test", "carol@example.test"} {
		if _, ok := d.ok[rc]; ok {
			t.Errorf("%s: delivered despite on_error = tempfail", rc)
		}
		if f := d.failed[rc]; f == nil || !strings.Contains(f.Error(), "451") {
			t.Errorf("%s: got %v, want 451", rc, f)
		}
	}
	if n := len(e.ds.transactions()); n != 0 {
		t.Errorf("%d downstream transactions, want none", n)
	}
}

// testClock is the Processor's clock in tests: it stands still until set.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// storedEvents returns a user's events (none for an unknown user).
func storedEvents(t testing.TB, db calstore.Store, user string) []calstore.Event {
	t.Helper()
	var evs []calstore.Event
	err := db.Read(context.Background(), func(tx calstore.Tx) error {
		var err error
		evs, err = tx.Events(user)
		return err
	})
	if err != nil && !errors.Is(err, calstore.ErrNotFound) {
		t.Fatal(err)
	}
	return evs
}
