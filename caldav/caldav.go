package caldav

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	gocaldav "github.com/emersion/go-webdav/caldav"
	"golang.org/x/crypto/bcrypt"

	"imipd/address"
	"imipd/calstore"
	"imipd/filter"
	"imipd/itip"
	"imipd/itip/ics"
)

// Options configure New; config fills them from the [caldav] table.
type Options struct {
	// CalendarName is the calendar's display name (default "Invitations").
	CalendarName string
	// TLS says the listener serves TLS: basic auth is then accepted from
	// anywhere; without it only from loopback peers (a reverse proxy).
	TLS bool
	// ProxyAuthHeader, when set, names a request header (e.g.
	// X-Remote-User) that authenticates the request as the user it names,
	// trusted only from loopback peers (a reverse proxy that authenticated
	// the user); from anyone else it is ignored.
	ProxyAuthHeader string
	// maxFailures failed logins for one user name from one source, or
	// maxSourceFailures from one source for any names, in window give 429
	// for that pair or source until the window passes (defaults 10, 50
	// and one minute); an app that logged in with the right password
	// before is let in regardless (login.go).
	maxFailures       int
	maxSourceFailures int
	window            time.Duration
	// unknownLogins is the budget of password checks for unknown user
	// names per minute, all sources together (default 60, bursts of 20);
	// past it such a login is refused without one.
	unknownLogins int
	// TrustedProxies are the peers whose X-Forwarded-For names the
	// client's address for counting failures (default loopback).
	TrustedProxies []netip.Prefix
	// Limits bound the decoding of a calendar app's PUT: the limits of
	// mail ([limits]), as for a calendar part of a message.
	Limits ics.Limits
	// Now is the clock of login throttling and of the history entry a
	// write leaves (default time.Now; the daemon passes the Processor's).
	Now func() time.Time
}

// Scheduler is what the server needs of the decision call (filter.Processor
// has it): Respond takes the user's answer to a stored event or one of its
// occurrences (RespondRequest's User, UID, RecurrenceID and Action accept,
// tentative or decline), sends the REPLY through the outbox and stores the
// new PARTSTAT; Export writes the user's calendar as one VCALENDAR (the
// feed); UserView is how the rules see a stored user (its addresses,
// subaddresses included), for checking what a client's write changes.
type Scheduler interface {
	Respond(ctx context.Context, r filter.RespondRequest) (filter.Answered, error)
	Export(ctx context.Context, user string, w io.Writer) error
	UserView(u calstore.User) itip.User
}

// Store is what the server needs of the store (calstore.Store has it):
// read transactions for what it serves, a write transaction for the
// personal part of a client's PUT. Inside them it uses two roles of
// calstore.Tx: UserTx (logins, the feed's token) and EventTx (events,
// the change counter).
type Store interface {
	Read(ctx context.Context, fn func(calstore.Tx) error) error
	Write(ctx context.Context, fn func(calstore.Tx) error) error
}

const (
	davPrefix       = "/dav"
	davCalendarSlug = "invitations"
	feedPrefix      = "/feed/"
	syncTokenPrefix = "urn:imipd:sync:"
	maxDAVBody      = 4 << 20 // bytes of a PUT or REPORT body
)

// ctxKey carries the authenticated user (primary address) and the
// conditional headers of the request to the backend.
type ctxKey struct{}

type davRequest struct {
	user        string
	ifMatch     webdav.ConditionalMatch
	ifNoneMatch webdav.ConditionalMatch
}

func davReq(ctx context.Context) *davRequest {
	r, _ := ctx.Value(ctxKey{}).(*davRequest)
	if r == nil {
		return &davRequest{}
	}
	return r
}

// Server is the http.Handler of the [caldav] listener: CalDAV and the feed.
type Server struct {
	store Store
	sched Scheduler
	opt   Options
	log   *slog.Logger
	dav   *gocaldav.Handler
	guard *loginGuard
	cache *authCache
}

// New returns the CalDAV and feed handler over store, answering through
// sched; log nil discards.
func New(store Store, sched Scheduler, opt Options, log *slog.Logger) *Server {
	if opt.CalendarName == "" {
		opt.CalendarName = "Invitations"
	}
	if opt.maxFailures <= 0 {
		opt.maxFailures = defaultMaxFailures
	}
	if opt.maxSourceFailures <= 0 {
		opt.maxSourceFailures = defaultMaxSourceFailures
	}
	if opt.window <= 0 {
		opt.window = defaultWindow
	}
	if opt.unknownLogins <= 0 {
		opt.unknownLogins = defaultUnknownLogins
	}
	if len(opt.TrustedProxies) == 0 {
		opt.TrustedProxies = defaultTrustedProxies
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: store, sched: sched, opt: opt, log: log,
		guard: newLoginGuard(opt),
		cache: &authCache{m: map[[32]byte]time.Time{}}}
	s.dav = &gocaldav.Handler{Backend: &davBackend{s: s}, Prefix: davPrefix}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, feedPrefix) {
		s.serveFeed(w, r)
		return
	}
	if r.URL.Path != "/" && r.URL.Path != "/.well-known/caldav" && r.URL.Path != davPrefix && !strings.HasPrefix(r.URL.Path, davPrefix+"/") {
		http.NotFound(w, r)
		return
	}
	user, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if r.URL.Path == "/.well-known/caldav" && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != "PROPFIND" {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	dr := &davRequest{user: user, ifMatch: webdav.ConditionalMatch(r.Header.Get("If-Match")),
		ifNoneMatch: webdav.ConditionalMatch(r.Header.Get("If-None-Match"))}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, dr))
	if r.ContentLength > maxDAVBody {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxDAVBody)
	switch r.Method {
	case "MKCOL", "MKCALENDAR", "PROPPATCH", "COPY", "MOVE":
		http.Error(w, "imipd keeps one calendar per user, changed only by mail and by your answers: "+r.Method+" is not supported", http.StatusForbidden)
		return
	case "REPORT":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if isSyncCollection(body) {
			s.serveSyncCollection(w, r, user, body)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	case "PROPFIND":
		if s.servePropfindWithCTag(w, r, user) {
			return
		}
	case http.MethodPut:
		s.servePut(w, r, user)
		return
	}
	s.dav.ServeHTTP(w, r)
}

// Paths of a user's resources.
func principalPath(user string) string { return davPrefix + "/" + user + "/" }
func homeSetPath(user string) string   { return davPrefix + "/calendars/" + user + "/" }
func calendarPath(user string) string  { return homeSetPath(user) + davCalendarSlug + "/" }
func objectPath(user, uid string) string {
	return calendarPath(user) + objectName(uid) + ".ics"
}

// objectName is the resource name of a UID: the UID itself when it is made
// of characters safe in a path segment, else "~" and its base64url form.
func objectName(uid string) string {
	safe := uid != "" && uid[0] != '~'
	for i := 0; safe && i < len(uid); i++ {
		c := uid[i]
		safe = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("@._+=-", c) >= 0
	}
	if safe {
		return uid
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(uid))
}

// uidOfPath returns the UID a path of the user's calendar names.
func uidOfPath(user, p string) (string, error) {
	dir, file := path.Split(p)
	if path.Clean(dir) != path.Clean(calendarPath(user)) || !strings.HasSuffix(file, ".ics") {
		return "", webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no such calendar object %s", p))
	}
	name := strings.TrimSuffix(file, ".ics")
	if strings.HasPrefix(name, "~") {
		b, err := base64.RawURLEncoding.DecodeString(name[1:])
		if err != nil || len(b) == 0 {
			return "", webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no such calendar object %s", p))
		}
		return string(b), nil
	}
	if name == "" {
		return "", webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no such calendar object %s", p))
	}
	return name, nil
}

// etag is the ETag of a stored event: a hash of its stored data.
func etag(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// decodeStored decodes the data of the user's stored event.
func decodeStored(user string, ev calstore.Event) (*ical.Calendar, error) {
	cal, err := ics.Decode(ev.Data, ics.StoredLimits())
	if err != nil {
		return nil, fmt.Errorf("stored event %s of %s: %w", ev.UID, user, err)
	}
	return cal, nil
}

// calendarObject turns a stored event into a CalDAV resource. Its Data is
// in written form (ics.Escaped), for go-ical's encoder.
func calendarObject(user string, ev calstore.Event) (gocaldav.CalendarObject, error) {
	cal, err := decodeStored(user, ev)
	if err != nil {
		return gocaldav.CalendarObject{}, err
	}
	cal.Props.Del(ical.PropMethod) // RFC 4791 §4.1: no METHOD in a calendar collection
	// go-webdav writes Data with go-ical's encoder, which writes values
	// verbatim: hand it every value already encoded (issue 13, attack 10).
	return gocaldav.CalendarObject{Path: objectPath(user, ev.UID), ModTime: ev.Updated, ETag: etag(ev.Data), Data: ics.Escaped(cal)}, nil
}

// davBackend implements gocaldav.Backend over the store for the user of the
// request.
type davBackend struct{ s *Server }

var _ gocaldav.Backend = (*davBackend)(nil)

func (b *davBackend) user(ctx context.Context) (string, error) {
	u := davReq(ctx).user
	if u == "" {
		return "", webdav.NewHTTPError(http.StatusUnauthorized, errors.New("not logged in"))
	}
	return u, nil
}

func (b *davBackend) CurrentUserPrincipal(ctx context.Context) (string, error) {
	u, err := b.user(ctx)
	return principalPath(u), err
}

func (b *davBackend) CalendarHomeSetPath(ctx context.Context) (string, error) {
	u, err := b.user(ctx)
	return homeSetPath(u), err
}

func (b *davBackend) CreateCalendar(ctx context.Context, cal *gocaldav.Calendar) error {
	return webdav.NewHTTPError(http.StatusForbidden, errors.New("imipd keeps one calendar per user; creating calendars is not supported"))
}

func (b *davBackend) calendar(user string) gocaldav.Calendar {
	return gocaldav.Calendar{Path: calendarPath(user), Name: b.s.opt.CalendarName,
		Description: "Invitations and replies imipd applied from your mail", SupportedComponentSet: []string{ical.CompEvent}}
}

func (b *davBackend) ListCalendars(ctx context.Context) ([]gocaldav.Calendar, error) {
	u, err := b.user(ctx)
	if err != nil {
		return nil, err
	}
	return []gocaldav.Calendar{b.calendar(u)}, nil
}

func (b *davBackend) GetCalendar(ctx context.Context, p string) (*gocaldav.Calendar, error) {
	u, err := b.user(ctx)
	if err != nil {
		return nil, err
	}
	if path.Clean(p) != path.Clean(calendarPath(u)) {
		return nil, webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no calendar at %s", p))
	}
	c := b.calendar(u)
	return &c, nil
}

func (b *davBackend) GetCalendarObject(ctx context.Context, p string, req *gocaldav.CalendarCompRequest) (*gocaldav.CalendarObject, error) {
	u, err := b.user(ctx)
	if err != nil {
		return nil, err
	}
	uid, err := uidOfPath(u, p)
	if err != nil {
		return nil, err
	}
	var ev calstore.Event
	err = b.s.store.Read(ctx, func(tx calstore.Tx) error {
		ev, err = tx.Event(u, uid)
		return err
	})
	if errors.Is(err, calstore.ErrNotFound) {
		return nil, webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no event %s", uid))
	}
	if err != nil {
		return nil, err
	}
	co, err := calendarObject(u, ev)
	if err != nil {
		return nil, err
	}
	return &co, nil
}

func (b *davBackend) ListCalendarObjects(ctx context.Context, p string, req *gocaldav.CalendarCompRequest) ([]gocaldav.CalendarObject, error) {
	u, err := b.user(ctx)
	if err != nil {
		return nil, err
	}
	if path.Clean(p) != path.Clean(calendarPath(u)) {
		return nil, webdav.NewHTTPError(http.StatusNotFound, fmt.Errorf("no calendar at %s", p))
	}
	var events []calstore.Event
	err = b.s.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		events, err = tx.Events(u)
		if errors.Is(err, calstore.ErrNotFound) {
			err = nil // a user without data yet has an empty calendar
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]gocaldav.CalendarObject, 0, len(events))
	for _, ev := range events {
		co, err := calendarObject(u, ev)
		if err != nil {
			// One undecodable object must not hide the calendar.
			b.s.log.Warn("caldav: skipping stored event", "user", u, "uid", ev.UID, "err", err)
			continue
		}
		out = append(out, co)
	}
	return out, nil
}

func (b *davBackend) QueryCalendarObjects(ctx context.Context, p string, query *gocaldav.CalendarQuery) ([]gocaldav.CalendarObject, error) {
	all, err := b.ListCalendarObjects(ctx, p, &query.CompRequest)
	if err != nil {
		return nil, err
	}
	// Our own evaluation, not go-webdav's caldav.Match: that expands every
	// recurrence with rrule-go without a bound (one FREQ=SECONDLY series
	// cost 1.8 s and 212 MB for a month) and knows no VTIMEZONE.
	m := newQueryMatcher()
	var out []gocaldav.CalendarObject
	for i := range all {
		if m.match(query.CompFilter, all[i].Data) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// PutCalendarObject is not reached: ServeHTTP takes every PUT (servePut),
// so that go-ical never decodes a client's body.
func (b *davBackend) PutCalendarObject(ctx context.Context, p string, cal *ical.Calendar, opts *gocaldav.PutCalendarObjectOptions) (*gocaldav.CalendarObject, error) {
	return nil, webdav.NewHTTPError(http.StatusInternalServerError, errors.New("caldav: PUT outside servePut"))
}

func (b *davBackend) DeleteCalendarObject(ctx context.Context, p string) error {
	u, err := b.user(ctx)
	if err != nil {
		return err
	}
	uid, err := uidOfPath(u, p)
	if err != nil {
		return err
	}
	err = b.s.attendeeDelete(ctx, u, uid, davReq(ctx).ifMatch)
	if err != nil {
		b.s.log.Info("caldav: delete refused", "user", u, "uid", uid, "err", err)
	}
	return toWebDAV(err)
}

// ---- authentication ----

// isLoopback reports whether the request's peer is on loopback.
func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate returns the primary address of the request's user, or
// writes 401, 403 or 429 and returns false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	ctx := r.Context()
	loop := isLoopback(r)
	if h := s.opt.ProxyAuthHeader; h != "" && loop {
		if name := strings.TrimSpace(r.Header.Get(h)); name != "" {
			u, err := s.lookupUser(ctx, name)
			if err != nil {
				s.log.Warn("caldav: proxy header names no user", "header", h, "user", name, "err", err)
				http.Error(w, "unknown user "+name, http.StatusForbidden)
				return "", false
			}
			return u.Address, true
		}
	}
	if !s.opt.TLS && !loop {
		http.Error(w, "passwords are accepted only over TLS (configure [caldav] cert and key) or from a reverse proxy on loopback", http.StatusForbidden)
		return "", false
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		unauthorized(w, "login required")
		return "", false
	}
	user, source, now := address.Normalize(name), s.clientAddr(r), s.opt.Now()
	u, err := s.lookupUser(ctx, name)
	if err != nil && !errors.Is(err, calstore.ErrNotFound) {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return "", false
	}
	// An app that logged in with this password before costs no bcrypt and
	// is let in even from a blocked source: a stranger's failures cannot
	// lock out a user who has the right password. But a blocked source's
	// guesses count too, and after as many again it is not even compared
	// with the cache: otherwise a 200 among the 429s would tell a guesser
	// the password at full speed while the user's app keeps it cached.
	key := passwordKey(u.PasswordHash, name, pass)
	wait := s.guard.blocked(source, user, now)
	if u.PasswordHash != "" && (wait == 0 || s.guard.cacheOpen(source, user, now)) && s.cache.ok(key, now) {
		return u.Address, true
	}
	if wait > 0 {
		s.guard.fail(source, user, now)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+1)))
		http.Error(w, "too many failed logins; try again later", http.StatusTooManyRequests)
		return "", false
	}
	if !s.checkPassword(u.PasswordHash, pass, key, now) {
		s.guard.fail(source, user, now)
		s.log.Info("caldav: login failed", "user", user, "source", source, "peer", peerIP(r))
		unauthorized(w, "wrong user name or password")
		return "", false
	}
	return u.Address, true
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="imipd", charset="UTF-8"`)
	http.Error(w, msg, http.StatusUnauthorized)
}

func (s *Server) lookupUser(ctx context.Context, name string) (calstore.User, error) {
	var u calstore.User
	err := s.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		u, err = tx.User(name)
		return err
	})
	return u, err
}

// passwordCost is the bcrypt cost of the app passwords HashPassword makes
// and of dummyHash. The package's own tests lower it (export_test.go): under
// the race detector a compare at the default cost takes about 0.2 s of CPU,
// and the login tests make hundreds.
var passwordCost = bcrypt.DefaultCost

// dummyHash makes a login of an unknown user cost as much as a known one:
// it is made at passwordCost on first use.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("imipd-no-such-user"), passwordCost)
	return h
})

// passwordKey identifies a successful login in the cache. It includes the
// hash, so a new password ends the old one's cached logins.
func passwordKey(hash, name, pass string) [32]byte {
	return sha256.Sum256([]byte(hash + "\x00" + address.Normalize(name) + "\x00" + pass))
}

// checkPassword compares with the stored bcrypt hash and caches a success
// under key for a few minutes (clients send the password with every
// request, bcrypt is slow by design). An unknown user name costs a bcrypt
// compare too, while the global budget for unknown names lasts.
func (s *Server) checkPassword(hash, pass string, key [32]byte, now time.Time) bool {
	if hash == "" {
		if s.guard.unknownCheck(now) {
			_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pass))
		}
		return false
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) != nil {
		return false
	}
	s.cache.add(key, now)
	return true
}

// HashPassword returns the bcrypt hash stored for an app password.
func HashPassword(pass string) (string, error) {
	if pass == "" {
		return "", errors.New("empty password")
	}
	if len(pass) > 72 {
		return "", errors.New("password longer than 72 bytes (bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pass), passwordCost)
	return string(h), err
}

type authCache struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

const authCacheTTL = 5 * time.Minute

// ok reports whether k is a cached success; a hit keeps it for another
// authCacheTTL, so an app in use stays logged in without bcrypt.
func (c *authCache) ok(k [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[k]
	if !ok || !now.Before(exp) {
		return false
	}
	c.m[k] = now.Add(authCacheTTL)
	return true
}

func (c *authCache) add(k [32]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 {
		for k, exp := range c.m {
			if !now.Before(exp) {
				delete(c.m, k)
			}
		}
	}
	c.m[k] = now.Add(authCacheTTL)
}
