package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"imipd/calstore"
	"imipd/calstore/storetest"
	"imipd/filter"
	"imipd/filter/push"
)

const (
	pushUser = "dovecot"
	pushPass = "s3cret"
)

// inviteMsg is an iMIP REQUEST from a stranger to bob (policy always).
const inviteMsg = `From: Stranger <stranger@remote.test>
To: bob@example.test
Subject: Invitation: Lunch
Date: Wed, 25 Nov 2026 10:00:00 +0000
Message-ID: <push-1@remote.test>
MIME-Version: 1.0
Content-Type: text/calendar; method=REQUEST; charset=UTF-8

BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example Corp//Mail 1.0//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:lunch-1@remote.test
SEQUENCE:0
DTSTAMP:20261125T100000Z
DTSTART:20261203T120000Z
DTEND:20261203T130000Z
SUMMARY:Lunch
ORGANIZER;CN=Stranger:mailto:stranger@remote.test
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.test
END:VEVENT
END:VCALENDAR
`

type pushEnv struct {
	srv *httptest.Server
	db  *calstore.DB
	reg *prometheus.Registry
}

// newPushEnv starts the HTTP handler on a fresh store with the user
// bob@example.test (alias robert@example.test, policy always).
func newPushEnv(t testing.TB, opt push.Options) *pushEnv {
	t.Helper()
	return newPushEnvFile(t, filepath.Join(t.TempDir(), "imipd.db"), opt)
}

// newPushEnvFile is newPushEnv on the store file at path (created if
// absent); /healthz checks it with filter.StoreReady unless opt.Ready is set.
func newPushEnvFile(t testing.TB, path string, opt push.Options) *pushEnv {
	t.Helper()
	db, err := calstore.Open(path, calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutUser(calstore.User{Address: "bob@example.test", Aliases: []string{"robert@example.test"}, Policy: "always"})
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	p := &filter.Processor{Store: db, Cfg: cfg, Now: func() time.Time { return now }, Metrics: filter.NewMetrics(reg, nil)}
	if opt.PushUser == "" && opt.PushPassword == "" {
		opt.PushUser, opt.PushPassword = pushUser, pushPass
	}
	if opt.Gatherer == nil {
		opt.Gatherer = reg
	}
	if opt.Ready == nil {
		opt.Ready = filter.StoreReady(db)
	}
	h, err := push.NewHandler(p, opt, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &pushEnv{srv: srv, db: db, reg: reg}
}

// pushJSON is what the Dovecot chronos plugin posts (plus a field imipd
// does not know, which it must tolerate).
func pushJSON(user, event, body string) string {
	b, _ := json.Marshal(map[string]any{"user": user, "event": event, "folder": "INBOX", "body": body, "extra": map[string]int{"uid": 7}})
	return string(b)
}

type pushAnswer struct {
	Status   string `json:"status"`
	User     string `json:"user"`
	Calendar bool   `json:"calendar"`
	Error    string `json:"error"`
	Event    string `json:"event"`
	Results  []struct {
		User, Outcome, Method, UID, Reason string
	} `json:"results"`
}

func (e *pushEnv) do(t testing.TB, method, path string, body io.Reader, auth bool, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(pushUser, pushPass)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (e *pushEnv) push(t testing.TB, payload string) (int, pushAnswer) {
	t.Helper()
	resp, b := e.do(t, http.MethodPost, push.Path, strings.NewReader(payload), true, nil)
	var a pushAnswer
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %d %q: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, a
}

func (e *pushEnv) events(t testing.TB, user string) []calstore.Event {
	t.Helper()
	return storedEvents(t, e.db, user)
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

func TestPushRequestStored(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	code, a := e.push(t, pushJSON("bob@example.test", "messageNew", inviteMsg))
	if code != 200 || a.Status != "ok" || a.User != "bob@example.test" || !a.Calendar {
		t.Fatalf("got %d %+v", code, a)
	}
	if len(a.Results) != 1 {
		t.Fatalf("results %+v", a.Results)
	}
	r := a.Results[0]
	if r.User != "bob@example.test" || r.Outcome != "needs-action" || r.Method != "REQUEST" || r.UID != "lunch-1@remote.test" {
		t.Errorf("result %+v", r)
	}
	evs := e.events(t, "bob@example.test")
	if len(evs) != 1 || evs[0].UID != "lunch-1@remote.test" {
		t.Fatalf("events %+v", evs)
	}
	if !bytes.Contains(evs[0].Data, []byte("SUMMARY:Lunch")) {
		t.Errorf("stored:\n%s", evs[0].Data)
	}
}

func TestPushTwiceAppliedOnce(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	payload := pushJSON("bob@example.test", "messageNew", inviteMsg)
	c1, a1 := e.push(t, payload)
	c2, a2 := e.push(t, payload)
	if c1 != 200 || c2 != 200 {
		t.Fatalf("status %d, %d", c1, c2)
	}
	if len(a1.Results) != 1 || len(a2.Results) != 1 || a1.Results[0] != a2.Results[0] {
		t.Errorf("outcomes differ:\n%+v\n%+v", a1.Results, a2.Results)
	}
	if evs := e.events(t, "bob@example.test"); len(evs) != 1 {
		t.Errorf("%d events, want 1", len(evs))
	}
	var log []calstore.LogEntry
	e.db.Read(context.Background(), func(tx calstore.Tx) error {
		var err error
		log, err = tx.Log("bob@example.test", 0)
		return err
	})
	if len(log) != 1 || log[0].Transport != "push" {
		t.Errorf("log %+v, want one push entry", log)
	}
}

func TestPushAuth(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	payload := pushJSON("bob@example.test", "messageNew", inviteMsg)
	for name, set := range map[string]func(*http.Request){
		"none":           func(*http.Request) {},
		"wrong password": func(r *http.Request) { r.SetBasicAuth(pushUser, "wrong") },
		"wrong user":     func(r *http.Request) { r.SetBasicAuth("other", pushPass) },
		"empty password": func(r *http.Request) { r.SetBasicAuth(pushUser, "") },
		"bearer":         func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+pushPass) },
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+push.Path, strings.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			set(req)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("status %d %s", resp.StatusCode, b)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
			if !strings.Contains(string(b), `"error"`) {
				t.Errorf("body %s", b)
			}
		})
	}
	if evs := e.events(t, "bob@example.test"); len(evs) != 0 {
		t.Errorf("unauthenticated push stored %d events", len(evs))
	}
}

func TestPushBadRequests(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	for _, c := range []struct {
		name, payload string
		code          int
		status        string
	}{
		{"bad JSON", `{"user":"bob@example.test",`, 400, ""},
		{"not an object", `["messageNew"]`, 400, ""},
		{"wrong type", `{"user":7,"event":"messageNew","body":"x"}`, 400, ""},
		{"trailing garbage", pushJSON("bob@example.test", "messageNew", inviteMsg) + "}", 400, ""},
		{"empty", ``, 400, ""},
		{"missing user", pushJSON("", "messageNew", inviteMsg), 400, ""},
		{"missing body", pushJSON("bob@example.test", "messageNew", ""), 400, ""},
		{"missing event", `{"user":"bob@example.test","body":"x"}`, 400, ""},
		{"other event", pushJSON("bob@example.test", "messageRead", inviteMsg), 200, "ignored"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, a := e.push(t, c.payload)
			if code != c.code || a.Status != c.status {
				t.Errorf("got %d %+v, want %d %q", code, a, c.code, c.status)
			}
			if c.code >= 400 && a.Error == "" {
				t.Errorf("no error message: %+v", a)
			}
		})
	}
	if evs := e.events(t, "bob@example.test"); len(evs) != 0 {
		t.Errorf("stored %d events", len(evs))
	}
}

func TestPushContentType(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	payload := pushJSON("bob@example.test", "messageNew", inviteMsg)
	for ct, want := range map[string]int{
		"application/json":                200,
		"Application/JSON; charset=UTF-8": 200,
		"text/plain":                      415,
	} {
		resp, b := e.do(t, http.MethodPost, push.Path, strings.NewReader(payload), true, map[string]string{"Content-Type": ct})
		if resp.StatusCode != want {
			t.Errorf("%q: status %d %s, want %d", ct, resp.StatusCode, b, want)
		}
	}
}

func TestPushTooLarge(t *testing.T) {
	e := newPushEnv(t, push.WithMaxBody(push.Options{}, 4096))
	big := pushJSON("bob@example.test", "messageNew", inviteMsg+strings.Repeat("x", 5000))
	code, a := e.push(t, big)
	if code != 413 || a.Error == "" {
		t.Errorf("with Content-Length: %d %+v", code, a)
	}
	// Without Content-Length (chunked), the reader's cap answers.
	resp, b := e.do(t, http.MethodPost, push.Path, io.MultiReader(strings.NewReader(big)), true, nil)
	if resp.StatusCode != 413 || !strings.Contains(string(b), `"error"`) {
		t.Errorf("chunked: %d %s", resp.StatusCode, b)
	}
	// Under the cap it works.
	if code, a := e.push(t, pushJSON("bob@example.test", "messageNew", inviteMsg)); code != 200 {
		t.Errorf("small: %d %+v", code, a)
	}
}

func TestPushMailLogin(t *testing.T) {
	e := newPushEnv(t, push.Options{PushResolve: push.ResolveMailLogin})
	code, a := e.push(t, pushJSON("carol@elsewhere.test", "messageNew", inviteMsg))
	if code != 404 || !strings.Contains(a.Error, "carol@elsewhere.test") {
		t.Errorf("unknown user: %d %+v", code, a)
	}
	// Not a login imipd knows, even though the message is to bob.
	if code, a := e.push(t, pushJSON("bob", "messageNew", inviteMsg)); code != 404 {
		t.Errorf("bare login: %d %+v", code, a)
	}
	if evs := e.events(t, "bob@example.test"); len(evs) != 0 {
		t.Errorf("stored %d events for an unknown user", len(evs))
	}
	// An alias resolves to the user.
	code, a = e.push(t, pushJSON("Robert@Example.test", "messageNew", inviteMsg))
	if code != 200 || a.User != "bob@example.test" || len(a.Results) != 1 || a.Results[0].User != "bob@example.test" {
		t.Errorf("alias: %d %+v", code, a)
	}
	// An address at a local domain without a user record is a user with the
	// default policy (known): the stranger's invitation waits.
	code, a = e.push(t, pushJSON("dave@example.test", "messageNew", inviteMsg))
	if code != 200 || a.User != "dave@example.test" || len(a.Results) != 1 {
		t.Errorf("local address: %d %+v", code, a)
	}
}

// TestPushRecipientOnly: the user field names the user; the message's
// recipient headers only decide whether that user is a recipient.
func TestPushRecipientOnly(t *testing.T) {
	e := newPushEnv(t, push.Options{PushResolve: push.ResolveRecipientOnly})
	// Delivered-To names an alias of the user.
	msg := "Delivered-To: robert@example.test\r\n" + strings.ReplaceAll(inviteMsg, "To: bob@example.test\n", "To: Team <team@lists.remote.test>,\n  \"Carol\" <carol@elsewhere.test>\n")
	code, a := e.push(t, pushJSON("bob@example.test", "messageNew", msg))
	if code != 200 || a.Status != "ok" || a.User != "bob@example.test" {
		t.Errorf("Delivered-To: %d %+v", code, a)
	}
	// No Delivered-To: a local To/Cc address, here in a folded Cc.
	msg = strings.ReplaceAll(inviteMsg, "To: bob@example.test\n", "To: carol@elsewhere.test\nCc: x@remote.test,\n  Robert <ROBERT@example.test>\n")
	code, a = e.push(t, pushJSON("robert@example.test", "messageNew", strings.ReplaceAll(msg, "push-1@", "push-2@")))
	if code != 200 || a.Status != "ok" || a.User != "bob@example.test" {
		t.Errorf("Cc: %d %+v", code, a)
	}
	// The user is not a recipient (a Bcc copy, or mail to someone else):
	// ignored, nothing processed.
	msg = strings.ReplaceAll(inviteMsg, "To: bob@example.test\n", "To: carol@elsewhere.test\n")
	code, a = e.push(t, pushJSON("bob@example.test", "messageNew", strings.ReplaceAll(msg, "push-1@", "push-3@")))
	if code != 200 || a.Status != "ignored" || a.User != "bob@example.test" || len(a.Results) != 0 {
		t.Errorf("not a recipient: %d %+v", code, a)
	}
	if evs := e.events(t, "bob@example.test"); len(evs) != 1 {
		t.Errorf("%d events, want the one from the first push", len(evs))
	}
	// A login that is no local address names nobody, whatever the header
	// says.
	code, a = e.push(t, pushJSON("vmail", "messageNew", "Delivered-To: bob@example.test\n"+inviteMsg))
	if code != 404 || a.Error == "" {
		t.Errorf("bare login: %d %+v", code, a)
	}
}

// TestPushUserNotFromHeaders: a push for one user whose message names
// another in headers the sender wrote is never processed for the other
// (issue 13, attack 7), in either resolve mode.
func TestPushUserNotFromHeaders(t *testing.T) {
	for _, mode := range []string{push.ResolveRecipientOnly, push.ResolveMailLogin} {
		t.Run(mode, func(t *testing.T) {
			e := newPushEnv(t, push.Options{PushResolve: mode})
			err := e.db.Write(context.Background(), func(tx calstore.Tx) error {
				return tx.PutUser(calstore.User{Address: "alice@example.test", Policy: "always"})
			})
			if err != nil {
				t.Fatal(err)
			}
			forged := func(mid string) string {
				m := "Delivered-To: alice@example.test\nX-Original-To: alice@example.test\n" +
					strings.ReplaceAll(inviteMsg, "To: bob@example.test\n", "To: alice@example.test\n")
				m = strings.ReplaceAll(m, "mailto:bob@example.test", "mailto:alice@example.test")
				return strings.ReplaceAll(m, "push-1@", mid+"@")
			}
			// Dovecot's login without a domain: no user, not Alice.
			code, a := e.push(t, pushJSON("bob", "messageNew", forged("f1")))
			if code != 404 || a.User != "" || len(a.Results) != 0 {
				t.Errorf("login bob: %d %+v", code, a)
			}
			// Bob's address: Bob or nobody, never Alice.
			code, a = e.push(t, pushJSON("bob@example.test", "messageNew", forged("f2")))
			for _, r := range a.Results {
				if r.User != "bob@example.test" {
					t.Errorf("processed for %s: %+v", r.User, a)
				}
			}
			if code != 200 || a.User != "bob@example.test" {
				t.Errorf("user bob@example.test: %d %+v", code, a)
			}
			if mode == push.ResolveRecipientOnly && (a.Status != "ignored" || len(a.Results) != 0) {
				t.Errorf("recipientOnly, bob not a recipient: %+v", a)
			}
			if evs := e.events(t, "alice@example.test"); len(evs) != 0 {
				t.Errorf("alice has %d events from pushes for bob", len(evs))
			}
		})
	}
}

func TestPushNotCalendar(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	msg := "From: a@remote.test\nTo: bob@example.test\nSubject: hi\n\nhello\n"
	resp, b := e.do(t, http.MethodPost, push.Path, strings.NewReader(pushJSON("bob@example.test", "messageNew", msg)), true, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"results":[]`) || !strings.Contains(string(b), `"calendar":false`) {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

func TestPushMethodNotAllowed(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		resp, b := e.do(t, m, push.Path, nil, true, nil)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: %d Allow=%q %s", m, resp.StatusCode, resp.Header.Get("Allow"), b)
		}
	}
}

func TestPushStoreFailure(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	e.db.Close()
	code, a := e.push(t, pushJSON("bob@example.test", "messageNew", inviteMsg))
	if code != 503 || a.Error == "" {
		t.Errorf("%d %+v", code, a)
	}
}

func TestHTTPOptionsErrors(t *testing.T) {
	p := &filter.Processor{Cfg: filter.DefaultConfig()}
	for name, opt := range map[string]push.Options{
		"user only":     {PushUser: "u"},
		"password only": {PushPassword: "p"},
		"bad resolve":   {PushUser: "u", PushPassword: "p", PushResolve: "synthetic"},
	} {
		if _, err := push.NewHandler(p, opt, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Both empty: push endpoint off, the rest still served.
	h, err := push.NewHandler(p, push.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for path, want := range map[string]int{push.Path: 404, "/healthz": 200, "/metrics": 404, "/": 404} {
		resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if path == "/healthz" {
			resp, err = srv.Client().Get(srv.URL + path)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestHealthz(t *testing.T) {
	var fail error
	ready := func(ctx context.Context) error { return fail }
	e := newPushEnv(t, push.Options{Ready: ready})
	resp, b := e.do(t, http.MethodGet, "/healthz", nil, false, nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "ok" {
		t.Errorf("ok: %d %q", resp.StatusCode, b)
	}
	fail = errors.New("store gone")
	resp, b = e.do(t, http.MethodGet, "/healthz", nil, false, nil)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "store gone") {
		t.Errorf("failing: %d %q", resp.StatusCode, b)
	}
}

// TestHealthzStoreDamaged: with a damaged page under bob's events, a
// message for bob fails (503 to the push) and /healthz turns 503 and stays
// so, although the user list still reads (issue 13, attack 9).
func TestHealthzStoreDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imipd.db")
	pg, size, err := storetest.UserWithPages(path, "bob@example.test", "always")
	if err != nil {
		t.Fatal(err)
	}
	e := newPushEnvFile(t, path, push.Options{})
	health := func() (int, string) {
		resp, b := e.do(t, http.MethodGet, "/healthz", nil, false, nil)
		return resp.StatusCode, string(b)
	}
	if code, b := health(); code != 200 {
		t.Fatalf("sound store: %d %s", code, b)
	}
	if err := storetest.Garble(path, pg, size); err != nil {
		t.Fatal(err)
	}
	if code, a := e.push(t, pushJSON("bob@example.test", "messageNew", inviteMsg)); code != 503 {
		t.Errorf("push on a damaged page: %d %+v, want 503", code, a)
	}
	for range 2 {
		if code, b := health(); code != 503 || !strings.Contains(b, "damaged") {
			t.Errorf("/healthz: %d %q, want 503 naming the damage", code, b)
		}
	}
}

func TestHealthzTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 2s")
	}
	// A check that is late even to notice: it returns only after the
	// answer was given (or 5s after its deadline, making the answer late).
	answered := make(chan struct{})
	ready := func(ctx context.Context) error {
		<-ctx.Done()
		select {
		case <-answered:
		case <-time.After(5 * time.Second):
		}
		return nil
	}
	e := newPushEnv(t, push.Options{Ready: ready})
	start := time.Now()
	resp, b := e.do(t, http.MethodGet, "/healthz", nil, false, nil)
	close(answered)
	if resp.StatusCode != 503 || !strings.Contains(string(b), "deadline") {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestMetricsAfterPush(t *testing.T) {
	e := newPushEnv(t, push.Options{})
	if code, a := e.push(t, pushJSON("bob@example.test", "messageNew", inviteMsg)); code != 200 {
		t.Fatalf("%d %+v", code, a)
	}
	resp, b := e.do(t, http.MethodGet, "/metrics", nil, false, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	for _, want := range []string{
		`imipd_messages_total{calendar="yes",transport="push"} 1`,
		`imipd_outcomes_total{method="REQUEST",outcome="needs-action"} 1`,
		`imipd_processing_seconds_count{transport="push"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s:\n%s", want, b)
		}
	}
}

func FuzzPushBody(f *testing.F) {
	f.Add(pushJSON("bob@example.test", "messageNew", inviteMsg))
	f.Add(pushJSON("vmail", "messageNew", "Delivered-To: bob@example.test\n"+inviteMsg))
	f.Add(pushJSON("carol@elsewhere.test", "messageNew", inviteMsg))
	f.Add(pushJSON("bob@example.test", "messageNew", "To: bob@example.test\nContent-Type: multipart/mixed; boundary=x\n\n--x\n"))
	f.Add(pushJSON("bob@example.test", "flagsSet", ""))
	f.Add(`{"user":"bob@example.test","event":"messageNew","body":"\u0000"}`)
	f.Add(`{"user":null,"event":"messageNew","body":"x"}`)
	f.Add(`{`)
	f.Add(``)
	e := newPushEnv(f, push.WithMaxBody(push.Options{}, 1<<16))
	h := e.srv.Config.Handler
	f.Fuzz(func(t *testing.T, payload string) {
		req := httptest.NewRequest(http.MethodPost, push.Path, strings.NewReader(payload))
		req.SetBasicAuth(pushUser, pushPass)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 404, 413, 503:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, payload, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", w.Body)
		}
	})
}
