// Package push is imipd's HTTP interface: the push endpoint Dovecot's
// chronos push plugin posts delivered mail to (docs/rules.md "Transports"),
// /healthz and /metrics.
package push

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"imipd/address"
	"imipd/filter"
	"imipd/filter/conn"
)

// pushPath is the Open-Xchange compatible push endpoint the Dovecot chronos
// push plugin posts to (push_notification_driver = chronos:url=...).
const pushPath = "/chronos/v1/itip/pushmail"

// reasonNotRecipient is the reason of a push answered "ignored" in
// recipientOnly mode: the user is none of the message's recipients
// (README, http.push_resolve).
const reasonNotRecipient = "not-recipient"

// Push resolve modes (docs/rules.md "Transports", config key http.push_resolve).
const (
	resolveRecipientOnly = "recipientOnly"
	resolveMailLogin     = "mailLogin"
)

// defaultMaxBody is the default cap of a push request's JSON body.
const defaultMaxBody = 64 << 20

// healthTimeout bounds the readiness check of /healthz.
const healthTimeout = 2 * time.Second

// Options configures NewHandler.
type Options struct {
	// PushUser and PushPassword are the basic-auth credentials of the push
	// endpoint. Both empty: the push endpoint is off (404). Only one of
	// them set is a configuration error.
	PushUser, PushPassword string
	// PushResolve is "recipientOnly" (the default when empty) or
	// "mailLogin"; see NewHandler.
	PushResolve string
	// maxBody caps the JSON body of a push request (64 MiB
	// when <= 0); a larger body is answered 413.
	maxBody int64
	// Gatherer is served at /metrics; nil: /metrics is 404.
	Gatherer prometheus.Gatherer
	// Ready is the readiness check of /healthz (e.g. a store read); it
	// gets 2 seconds. nil: always ready.
	Ready func(ctx context.Context) error
}

// NewHandler returns imipd's HTTP interface:
//
// POST /chronos/v1/itip/pushmail, compatible with Open-Xchange's endpoint
// for Dovecot's chronos push plugin. Basic auth; the body is JSON
//
//	{"user":"...","event":"messageNew","folder":"INBOX","body":"<raw RFC 5322 message>"}
//
// (further fields are ignored, and so is folder). Content-Type must be
// application/json (any parameters) or absent. Answers, always JSON:
//
//	200 {"status":"ok","user":U,"calendar":B,"results":[{"user","outcome","method","uid","reason"}]}
//	    processed for user U (results is [] for a message without calendar
//	    data); pushing the same message again gives the same outcome again
//	    and changes nothing (the once-only log, shared with the milter and
//	    LMTP paths, so a message seen by both is applied once)
//	200 {"status":"ignored","event":E}  an event other than messageNew
//	    (Open-Xchange only acts on messageNew as well)
//	200 {"status":"ignored","user":U,"reason":"not-recipient"}  recipientOnly:
//	    the user is not a recipient of the message (see below)
//	400 {"error":...}  bad JSON, or user, event or body missing
//	401 {"error":...}  bad or missing credentials (with WWW-Authenticate)
//	404 {"error":...}  no local user for the push (see below)
//	405 {"error":...}  a method other than POST
//	413 {"error":...}  body larger than maxBody
//	415 {"error":...}  a Content-Type other than application/json
//	503 {"error":...}  the store failed; Dovecot may retry
//
// The calendar user is the push's user field and nothing else: Dovecot
// names the mailbox owner there, and imipd never lets a header the sender
// wrote (Delivered-To, X-Original-To, To, Cc) choose whose calendar
// changes. The field must be a local user's address or alias, or an address
// at a local domain (a user with the default policy); anything else,
// including a bare login without a domain, is 404. PushResolve then decides
// whether the message is processed for that user:
//
//   - mailLogin: always (the message is in the user's mailbox).
//   - recipientOnly (default): only when the user is a recipient by the
//     message's header: one of its Delivered-To, X-Original-To, To or Cc
//     addresses resolves to the same user. Otherwise nothing is processed
//     and the answer is 200 {"status":"ignored","user":U,"reason":"not-recipient"}
//     (a Bcc copy without a Delivered-To header, or a message written to
//     someone else). The header only narrows: it never names another user.
//
// The message is then processed as filter.Delivery{Transport: "push",
// PushUser: user}: for that user only, whatever its recipients say.
//
// GET /healthz: 200 "ok" when Ready succeeds within 2 seconds, else 503
// with the error (filter.StoreReady is the daemon's check). GET /metrics:
// the Gatherer in the Prometheus text format.
func NewHandler(p *filter.Processor, opt Options, log *slog.Logger) (http.Handler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if (opt.PushUser == "") != (opt.PushPassword == "") {
		return nil, errors.New("http: push_user and push_password go together (both empty turns the push endpoint off)")
	}
	switch opt.PushResolve {
	case "":
		opt.PushResolve = resolveRecipientOnly
	case resolveRecipientOnly, resolveMailLogin:
	default:
		return nil, fmt.Errorf("http: push_resolve %q: want %s or %s", opt.PushResolve, resolveRecipientOnly, resolveMailLogin)
	}
	if opt.maxBody <= 0 {
		opt.maxBody = defaultMaxBody
	}
	mux := http.NewServeMux()
	if opt.PushUser != "" {
		if p == nil {
			return nil, errors.New("http: the push endpoint needs a processor")
		}
		ph := &pushHandler{p: p, opt: opt, log: log.With("transport", "push"),
			user: sha256.Sum256([]byte(opt.PushUser)), pass: sha256.Sum256([]byte(opt.PushPassword))}
		mux.Handle(pushPath, ph)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { health(w, r, opt.Ready) })
	if opt.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opt.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      promLog{log},
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	return recoverPanics(mux, log), nil
}

// recoverPanics answers 500 to a request whose handler panicked, and logs
// it; the daemon keeps serving.
func recoverPanics(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer conn.Recover(func(pn *conn.Panic) {
			log.Error("panic in HTTP handler", "path", r.URL.Path, "panic", pn)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		})()
		h.ServeHTTP(w, r)
	})
}

func health(w http.ResponseWriter, r *http.Request, ready func(context.Context) error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		done := make(chan error, 1) // buffered: a late Ready does not block
		go func() { done <- ready(ctx) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("readiness check: %w", ctx.Err())
		}
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unavailable: %v\n", err)
			return
		}
	}
	io.WriteString(w, "ok\n")
}

// promLog makes promhttp's error log a slog logger.
type promLog struct{ log *slog.Logger }

func (l promLog) Println(v ...any) { l.log.Warn("metrics", "err", fmt.Sprint(v...)) }

// pushRequest is the JSON the Dovecot chronos push plugin posts.
type pushRequest struct {
	User   string `json:"user"`
	Event  string `json:"event"`
	Folder string `json:"folder"`
	Body   string `json:"body"`
}

// pushResponse is the JSON answer of a processed push.
type pushResponse struct {
	Status   string          `json:"status"`
	User     string          `json:"user,omitempty"`
	Calendar bool            `json:"calendar"`
	Results  []filter.Result `json:"results"`
}

type pushHandler struct {
	p          *filter.Processor
	opt        Options
	log        *slog.Logger
	user, pass [sha256.Size]byte
}

// errNoUser is a push without a local user to apply it for (404).
type errNoUser struct{ msg string }

func (e *errNoUser) Error() string { return e.msg }

func (h *pushHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		jsonError(w, http.StatusMethodNotAllowed, "method %s not allowed: use POST", r.Method)
		return
	}
	if !h.authorized(r) {
		h.log.Warn("push: authentication failed", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Basic realm="imipd push", charset="UTF-8"`)
		jsonError(w, http.StatusUnauthorized, "authentication required")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			jsonError(w, http.StatusUnsupportedMediaType, "content type %q: want application/json", ct)
			return
		}
	}
	if r.ContentLength > h.opt.maxBody {
		jsonError(w, http.StatusRequestEntityTooLarge, "body of %d bytes is larger than the limit of %d", r.ContentLength, h.opt.maxBody)
		return
	}
	buf, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opt.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			jsonError(w, http.StatusRequestEntityTooLarge, "body larger than the limit of %d bytes", mbe.Limit)
			return
		}
		jsonError(w, http.StatusBadRequest, "reading body: %v", err)
		return
	}
	var req pushRequest
	if err := json.Unmarshal(buf, &req); err != nil {
		jsonError(w, http.StatusBadRequest, "bad JSON: %v", err)
		return
	}
	buf = nil
	switch {
	case req.Event == "":
		jsonError(w, http.StatusBadRequest, `missing "event"`)
		return
	case req.Event != "messageNew":
		h.log.Debug("push: event ignored", "event", req.Event, "user", req.User)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "event": req.Event})
		return
	case strings.TrimSpace(req.User) == "":
		jsonError(w, http.StatusBadRequest, `missing "user"`)
		return
	case req.Body == "":
		jsonError(w, http.StatusBadRequest, `missing "body"`)
		return
	}
	// Processing runs to its end even when Dovecot hangs up: the store's
	// transactions are atomic either way, and a retry gets the same answer.
	ctx := context.WithoutCancel(r.Context())
	user, recipient, err := h.resolve(ctx, req)
	var nu *errNoUser
	switch {
	case errors.As(err, &nu):
		h.log.Info("push: no local user", "user", req.User, "err", err)
		jsonError(w, http.StatusNotFound, "%s", nu.msg)
		return
	case err != nil:
		h.log.Error("push: store failed resolving the user", "user", req.User, "err", err)
		jsonError(w, http.StatusServiceUnavailable, "store unavailable, try again later")
		return
	case !recipient:
		h.log.Info("push: ignored, the user is not a recipient of the message", "user", user, "push_resolve", h.opt.PushResolve)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ignored", "user": user, "reason": reasonNotRecipient})
		return
	}
	rep, err := h.p.Process(ctx, filter.Delivery{Transport: "push", PushUser: user, Received: h.p.Time(), Message: strings.NewReader(req.Body)})
	if err != nil {
		h.log.Error("push: store failed", "user", user, "err", err)
		w.Header().Set("Retry-After", "60")
		jsonError(w, http.StatusServiceUnavailable, "store unavailable, try again later")
		return
	}
	resp := pushResponse{Status: "ok", User: user, Calendar: rep.Calendar, Results: rep.Results}
	if resp.Results == nil {
		resp.Results = []filter.Result{}
	}
	writeJSON(w, http.StatusOK, resp)
}

// authorized checks basic auth in constant time (of the credentials'
// hashes, so neither length leaks).
func (h *pushHandler) authorized(r *http.Request) bool {
	u, pw, ok := r.BasicAuth()
	uh, ph := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(pw))
	uok := subtle.ConstantTimeCompare(uh[:], h.user[:])
	pok := subtle.ConstantTimeCompare(ph[:], h.pass[:])
	return ok && uok&pok == 1
}

// resolve finds the user to apply a push for: the user field, resolved to
// its primary address (see NewHandler). recipient is false when
// PushResolve is recipientOnly and no recipient in the message's header is
// that user.
func (h *pushHandler) resolve(ctx context.Context, req pushRequest) (user string, recipient bool, err error) {
	var cands []string
	if h.opt.PushResolve == resolveRecipientOnly {
		cands = headerRecipients(req.Body)
	}
	user, ok, named, err := h.p.MailboxOwner(ctx, req.User, cands)
	switch {
	case err != nil:
		return "", false, err
	case !ok:
		return "", false, &errNoUser{fmt.Sprintf("unknown user %q: not a local user's address or alias (the push's user field names the mailbox owner; push_resolve %s)", req.User, h.opt.PushResolve)}
	}
	return user, named || h.opt.PushResolve == resolveMailLogin, nil
}

// recipientFields are the header fields that name a message's recipients
// for push_resolve recipientOnly.
var recipientFields = []string{"Delivered-To", "X-Original-To", "To", "Cc"}

// headerRecipients returns the addresses of the message's Delivered-To,
// X-Original-To, To and Cc header fields (names compared with
// filter.IsHeaderName), in message order. It reads the header leniently: a
// malformed line is skipped, an address list that net/mail refuses is
// split by hand.
func headerRecipients(msg string) []string {
	var values []string
	sc := bufio.NewScanner(strings.NewReader(msg))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	inField := false
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if inField {
				values[len(values)-1] += " " + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		inField = ok && slices.ContainsFunc(recipientFields, func(name string) bool { return filter.IsHeaderName(k, name) })
		if inField {
			values = append(values, strings.TrimSpace(v))
		}
	}
	var out []string
	for _, v := range values {
		for _, a := range address.ParseList(v, nil) {
			out = append(out, a.Address)
		}
	}
	return out
}

func jsonError(w http.ResponseWriter, status int, format string, a ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, a...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
