package filter

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"imipd/filter/conn"
	"imipd/itip"
	"imipd/itip/ics"
	"imipd/itip/imip"
)

// File is imipd's configuration file (TOML, docs/rules.md "Interfaces"). Every key
// has an embedded default, so an empty file (or none) is a working setup.
type File struct {
	DataDir       string   `toml:"data_dir"`
	LocalDomains  []string `toml:"local_domains"`
	DefaultPolicy string   `toml:"default_policy"`
	// DefaultTimezone is the IANA time zone descriptions show times in
	// for users without one of their own (imipctl user set -tz); "" = UTC.
	DefaultTimezone            string   `toml:"default_timezone"`
	Timeframe                  string   `toml:"timeframe"`
	Header                     string   `toml:"header"`
	TrustedAuthServIDs         []string `toml:"trusted_authserv_ids"`
	RequireAuthenticatedSender bool     `toml:"require_authenticated_sender"`
	LearnSentContacts          *bool    `toml:"learn_sent_contacts"`
	AutoSendLimit              *int     `toml:"auto_send_limit"`
	// RefreshLimit is the key auto_send_limit replaced: read as
	// auto_send_limit with a warning (Warnings); 0, which meant no limit,
	// and both keys together are errors.
	RefreshLimit *int   `toml:"refresh_limit"`
	OnError      string `toml:"on_error"`
	// RecipientDelimiter is the set of characters that separate a user from
	// a subaddress (bob+team@), as Postfix's and Dovecot's
	// recipient_delimiter: unset = "+", "" = none.
	RecipientDelimiter *string `toml:"recipient_delimiter"`

	Users      UsersConfig      `toml:"users"`
	Limits     LimitsConfig     `toml:"limits"`
	Milter     MilterConfig     `toml:"milter"`
	LMTP       LMTPConfig       `toml:"lmtp"`
	HTTP       HTTPConfig       `toml:"http"`
	Submission SubmissionConfig `toml:"submission"`
	CalDAV     CalDAVConfig     `toml:"caldav"`
	Store      StoreConfig      `toml:"store"`
}

// LimitsConfig is the [limits] table: caps on what one message may cost
// (SECURITY.md). Zero means the default; a message over a cap is delivered
// with outcome rejected and the cap's reason word.
type LimitsConfig struct {
	MIMEDepth       int   `toml:"mime_depth"`       // mime-depth, default 10
	MIMEParts       int   `toml:"mime_parts"`       // mime-parts, default 200
	HeaderBytes     int   `toml:"header_bytes"`     // header-size, default 256 KiB
	DecodedBytes    int64 `toml:"decoded_bytes"`    // decoded-size, default 8 MiB
	CalendarBytes   int64 `toml:"calendar_bytes"`   // calendar-size, default 1 MiB
	LineBytes       int   `toml:"line_bytes"`       // line-length, default 64 KiB
	Components      int   `toml:"components"`       // components, default 1000
	Properties      int   `toml:"properties"`       // properties, default 2000
	Attendees       int   `toml:"attendees"`        // attendees, default 1000
	RecurrenceDates int   `toml:"recurrence_dates"` // recurrence-dates, default 1000

	// Caps on what mail may make of the store (reasons in filter/users.go).
	NewUsersPerMessage int `toml:"new_users_per_message"` // user-limit, default 10
	NewUsersPerHour    int `toml:"new_users_per_hour"`    // user-limit, default 50
	EventsPerUser      int `toml:"events_per_user"`       // event-limit, default 10000
	PendingPerUser     int `toml:"pending_per_user"`      // pending-limit, default 1000
	CalendarParts      int `toml:"calendar_parts"`        // calendar-parts, default 10
}

// UsersConfig is the [users] table: who is a user (docs/rules.md "Users and
// addresses").
type UsersConfig struct {
	// Create is CreateAuto (the default: a recipient at a local domain
	// the MTA accepted becomes a user, within the new-user caps) or
	// CreateListed (only users imipctl made).
	Create string `toml:"create"`
}

// MilterConfig is the [milter] table.
type MilterConfig struct {
	Listen string `toml:"listen"`
	// OutgoingDaemons are values of the {daemon_name} macro whose mail
	// without a SASL login counts as the envelope sender's own (local
	// submission with sendmail(1): pickup, through non_smtpd_milters;
	// contrib's master.cf sets milter_macro_daemon_name=pickup on the
	// cleanup service). Default none: opting in trusts every local account
	// to write any sender (SECURITY.md).
	OutgoingDaemons []string `toml:"outgoing_daemons"`
	// Logins maps SASL logins that are not an address of their user to
	// that user's address ({"alice" = "alice@example.test"}). A login that
	// is one of the user's addresses needs no entry.
	Logins map[string]string `toml:"logins"`
	ConnLimits
	SocketKeys
	PeerKeys
}

// SocketKeys are the unix socket keys of [milter] and [lmtp] (a listen
// address "unix:/PATH"): imipd sets them right after it creates the
// socket (conn.ListenOptions).
type SocketKeys struct {
	SocketMode  string `toml:"socket_mode"`  // octal, default "0660"
	SocketGroup string `toml:"socket_group"` // e.g. "postfix"; default imipd's own group
}

// PeerKeys are the TCP listener keys of [milter], [lmtp] and [http]: who
// may connect (SECURITY.md "Listeners").
type PeerKeys struct {
	// Peers are the IP addresses or CIDR prefixes a connection may come
	// from; default 127.0.0.1 and ::1. Others are closed with a log line.
	Peers []string `toml:"peers"`
	// AllowRemote must be true for a listen address beyond loopback
	// (0.0.0.0, ::, a non-loopback address), which also needs Peers.
	AllowRemote bool `toml:"allow_remote"`
}

// ListenOptions returns the listener options of these keys (validated by
// Processing already).
func (k PeerKeys) ListenOptions(sk SocketKeys) conn.ListenOptions {
	peers, _ := conn.ParsePeers(k.Peers)
	mode, _ := conn.ParseSocketMode(sk.SocketMode)
	return conn.ListenOptions{Peers: peers, SocketMode: mode, SocketGroup: sk.SocketGroup}
}

// checkListener validates a listener's address against its peer and
// socket keys, the one place that does for every MTA-facing listener:
// beyond loopback only with allow_remote and explicit peers.
func checkListener(key, addr string, pk PeerKeys, sk SocketKeys) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if _, err := conn.ParsePeers(pk.Peers); err != nil {
		bad("%s.peers: %v", key, err)
	}
	if _, err := conn.ParseSocketMode(sk.SocketMode); err != nil {
		bad("%s.socket_mode: %v", key, err)
	}
	if addr == "" {
		return problems
	}
	check := checkAddress // milter and lmtp: inet:HOST:PORT or unix:/PATH
	if key == "http" {
		check = checkHostPort
	}
	if err := check(addr); err != nil {
		return append(problems, fmt.Sprintf("%s.listen: %q: %v", key, addr, err))
	}
	if !strings.HasPrefix(addr, "unix:") && (sk.SocketMode != "" || sk.SocketGroup != "") {
		bad("%s.socket_mode, socket_group: only for a unix:/PATH listen address", key)
	}
	host, loopback, err := conn.ListenHost(addr)
	switch {
	case err != nil:
		bad("%s.listen: %q: %v", key, addr, err)
	case !loopback && !pk.AllowRemote:
		bad("%s.listen: %q listens beyond loopback, where anyone who reaches it is believed as the MTA: "+
			"set %s.allow_remote = true and %s.peers to the MTA's addresses, or listen on 127.0.0.1 or a unix socket", key, addr, key, key)
	case !loopback && len(pk.Peers) == 0:
		bad("%s.peers: required when %s.listen is beyond loopback (%q): the addresses of the MTA", key, key, host)
	}
	return problems
}

// ConnLimits are the per-listener connection keys of [milter] and [lmtp]:
// durations in the timeframe syntax ("5m", "30s"); empty or 0 = default.
type ConnLimits struct {
	ReadTimeout    string `toml:"read_timeout"`    // per packet (milter) / command line or 4 KiB of data (LMTP); default 5m
	WriteTimeout   string `toml:"write_timeout"`   // default 1m
	MaxConnections int    `toml:"max_connections"` // default 512
	// MaxConnectionsPerPeer caps connections from one address (a unix
	// socket's are one peer); default max_connections.
	MaxConnectionsPerPeer int `toml:"max_connections_per_peer"`
	// FirstReadTimeout bounds the wait for a connection's first packet or
	// command; default 10s.
	FirstReadTimeout string `toml:"first_read_timeout"`
}

// Durations parses the timeouts; key names the table for errors.
func (c ConnLimits) Durations(key string) (read, write time.Duration, problems []string) {
	read, write, _, problems = c.durations(key)
	return read, write, problems
}

// FirstRead parses first_read_timeout (0: the default).
func (c ConnLimits) FirstRead() time.Duration {
	_, _, first, _ := c.durations("")
	return first
}

func (c ConnLimits) durations(key string) (read, write, first time.Duration, problems []string) {
	for _, x := range []struct {
		name string
		v    string
		out  *time.Duration
	}{{"read_timeout", c.ReadTimeout, &read}, {"write_timeout", c.WriteTimeout, &write}, {"first_read_timeout", c.FirstReadTimeout, &first}} {
		if x.v == "" || x.v == "0" {
			continue
		}
		d, problem := parseDuration(key+"."+x.name, x.v)
		if problem != "" {
			problems = append(problems, problem)
			continue
		}
		*x.out = d
	}
	if c.MaxConnections < 0 {
		problems = append(problems, fmt.Sprintf("%s.max_connections: %d: want a positive number (0 = default)", key, c.MaxConnections))
	}
	if c.MaxConnectionsPerPeer < 0 {
		problems = append(problems, fmt.Sprintf("%s.max_connections_per_peer: %d: want a positive number (0 = default)", key, c.MaxConnectionsPerPeer))
	}
	return read, write, first, problems
}

// LMTPConfig is the [lmtp] table.
type LMTPConfig struct {
	Listen  string `toml:"listen"`
	Forward string `toml:"forward"`
	// PoolSize is how many idle connections to Forward are kept for the
	// next messages: unset = 32, 0 = none (a connection
	// per upstream session). Dovecot runs one lmtp process per connection:
	// keep it below its service lmtp process_limit (default 100).
	PoolSize *int `toml:"pool_size"`
	// PoolIdle is how long a pooled connection may stay idle, default 30s.
	PoolIdle string `toml:"pool_idle"`
	ConnLimits
	SocketKeys
	PeerKeys
}

// Pool returns the pool keys as lmtp.Options takes them (PoolSize: 0 for
// the default, negative for none).
func (l LMTPConfig) Pool() (size int, idle time.Duration, problems []string) {
	switch {
	case l.PoolSize == nil:
	case *l.PoolSize < 0:
		problems = append(problems, fmt.Sprintf("lmtp.pool_size: %d: want 0 (no pool) or more", *l.PoolSize))
	case *l.PoolSize == 0:
		size = -1
	default:
		size = *l.PoolSize
	}
	if l.PoolIdle != "" && l.PoolIdle != "0" {
		d, problem := parseDuration("lmtp.pool_idle", l.PoolIdle)
		if problem != "" {
			problems = append(problems, problem)
		}
		idle = d
	}
	return size, idle, problems
}

// HTTPConfig is the [http] table.
type HTTPConfig struct {
	Listen       string `toml:"listen"`
	PushUser     string `toml:"push_user"`
	PushPassword string `toml:"push_password"`
	PushResolve  string `toml:"push_resolve"`
	PeerKeys
}

// SubmissionConfig is the [submission] table: where the outbox sender
// (Outbox) delivers outgoing iTIP mail. Address "" turns the sender off
// (items stay queued). Username and Password, together, authenticate with
// AUTH PLAIN, which is sent only over TLS or to a loopback/unix address.
// STARTTLS is used whenever the server offers it; RequireTLS refuses to
// send without it.
type SubmissionConfig struct {
	Address    string `toml:"address"`
	Username   string `toml:"username"`
	Password   string `toml:"password"`
	RequireTLS bool   `toml:"require_tls"`
}

// CalDAVConfig is the [caldav] table: CalDAV and the ICS feed for users'
// calendar apps (caldav.go). Listen "" (the default) turns it off.
type CalDAVConfig struct {
	Listen string `toml:"listen"` // HOST:PORT
	// Cert and Key (PEM files) make the listener serve TLS. Without them
	// it serves plain HTTP, which is allowed only on a loopback address
	// (behind a reverse proxy that terminates TLS).
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// ProxyAuthHeader names a header (e.g. X-Remote-User) a reverse proxy
	// sets to the user it authenticated; trusted only from loopback peers.
	ProxyAuthHeader string `toml:"proxy_auth_header"`
	// TrustedProxies are the peers (addresses or CIDR prefixes) whose
	// X-Forwarded-For names the client address failed logins are counted
	// against; default loopback, where contrib/nginx runs.
	TrustedProxies []string `toml:"trusted_proxies"`
	// CalendarName is the calendar's display name, default "Invitations".
	CalendarName string `toml:"calendar_name"`
	// BaseURL is the public URL of the listener (e.g. https://cal.example.org,
	// with a path prefix if the proxy adds one), used in the feed URLs that
	// imipctl user feed prints; default derived from listen.
	BaseURL string `toml:"base_url"`
}

// CalDAVBaseURL is the public URL of the CalDAV listener: base_url, or
// http(s)://listen, or "" when neither is set.
func (f File) CalDAVBaseURL() string {
	if f.CalDAV.BaseURL != "" {
		return strings.TrimSuffix(f.CalDAV.BaseURL, "/")
	}
	if f.CalDAV.Listen == "" {
		return "" // off: a path only
	}
	scheme := "http"
	if f.CalDAV.Cert != "" {
		scheme = "https"
	}
	return scheme + "://" + f.CalDAV.Listen
}

// FeedURL is the subscription URL of a feed token.
func (f File) FeedURL(token string) string {
	return f.CalDAVBaseURL() + "/feed/" + token + ".ics"
}

// Defaults is the embedded configuration imipd runs on without a file.
func Defaults() File {
	return File{
		DataDir:       "./imipd-data",
		DefaultPolicy: "known",
		Timeframe:     "4W",
		Header:        "X-IMIP-Processed",
		Milter:        MilterConfig{Listen: "inet:127.0.0.1:8891"},
		HTTP:          HTTPConfig{Listen: "127.0.0.1:8009", PushResolve: "recipientOnly"},
		Submission:    SubmissionConfig{Address: "unix:/var/spool/postfix/public/imipd"},
	}
}

// ConfigError lists every problem of a configuration file, each naming its key.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

// LoadFile reads a configuration file over the defaults. Unknown keys and bad
// values are errors naming the key; all of them are reported at once. No
// error shows the value of a secret key (configsecret.go).
func LoadFile(path string) (File, error) {
	f := Defaults()
	src, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("config: %w", err)
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(src), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return f, &ConfigError{Problems: []string{parseErrorText(path, string(src), pe)}}
		}
		return f, fmt.Errorf("config %s: %w", path, err)
	}
	var problems []string
	for _, p := range decodeKeys(md, top, &f) {
		problems = append(problems, path+": "+p)
	}
	if _, err := f.Processing(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				problems = append(problems, path+": "+p)
			}
		}
	}
	if len(problems) > 0 {
		return f, &ConfigError{Problems: problems}
	}
	return f, nil
}

// Warnings are what is accepted in the file but should change: deprecated
// keys. imipd -test prints them, the daemon logs them at start.
func (f File) Warnings() []string {
	var w []string
	if f.RefreshLimit != nil && *f.RefreshLimit > 0 && f.AutoSendLimit == nil {
		w = append(w, fmt.Sprintf("refresh_limit is deprecated: read as auto_send_limit = %d, which counts all automatic mail per target address and hour, across senders and users; rename the key", *f.RefreshLimit))
	}
	return w
}

// Processing validates the file and returns the processing configuration.
func (f File) Processing() (Config, error) {
	c := DefaultConfig()
	var problems []string
	bad := func(key, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if f.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	for _, d := range f.LocalDomains {
		d = strings.TrimSpace(d)
		if d == "" || strings.ContainsAny(d, "@ /") {
			bad("local_domains", "%q is not a domain", d)
		}
		c.LocalDomains = append(c.LocalDomains, strings.ToLower(d))
	}
	if p, err := itip.ParsePolicy(f.DefaultPolicy); err != nil {
		bad("default_policy", "%q: want always, known or never", f.DefaultPolicy)
	} else {
		c.DefaultPolicy = p
	}
	if f.DefaultTimezone != "" {
		if z, err := LoadZone(f.DefaultTimezone); err != nil {
			bad("default_timezone", "%v", err)
		} else {
			c.DefaultZone = z
		}
	}
	if tf, problem := parseDuration("timeframe", f.Timeframe); problem != "" {
		problems = append(problems, problem)
	} else {
		c.Timeframe = tf
	}
	if f.Header == "" || strings.ContainsAny(f.Header, ": \t\r\n") {
		bad("header", "%q is not a header field name", f.Header)
	}
	c.TrustedAuthServIDs = f.TrustedAuthServIDs
	c.RequireAuthenticatedSender = f.RequireAuthenticatedSender
	if f.RequireAuthenticatedSender && len(f.TrustedAuthServIDs) == 0 {
		bad("require_authenticated_sender", "needs trusted_authserv_ids")
	}
	if f.LearnSentContacts != nil {
		c.LearnSentContacts = *f.LearnSentContacts
	}
	if d := f.RecipientDelimiter; d != nil {
		if len(*d) > 16 || strings.ContainsFunc(*d, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`@<>"\`, r) }) {
			bad("recipient_delimiter", "%q: want a few printable ASCII characters other than @ < > \" \\ (\"\" = none)", *d)
		}
		c.RecipientDelimiter = *d
	}
	switch f.Users.Create {
	case "":
	case CreateAuto, CreateListed:
		c.CreateUsers = f.Users.Create
	default:
		bad("users.create", "%q: want auto or listed", f.Users.Create)
	}
	l := f.Limits
	for key, v := range map[string]int64{"limits.mime_depth": int64(l.MIMEDepth), "limits.mime_parts": int64(l.MIMEParts),
		"limits.header_bytes": int64(l.HeaderBytes), "limits.decoded_bytes": l.DecodedBytes, "limits.calendar_bytes": l.CalendarBytes,
		"limits.line_bytes": int64(l.LineBytes), "limits.components": int64(l.Components), "limits.properties": int64(l.Properties),
		"limits.attendees": int64(l.Attendees), "limits.recurrence_dates": int64(l.RecurrenceDates),
		"limits.new_users_per_message": int64(l.NewUsersPerMessage), "limits.new_users_per_hour": int64(l.NewUsersPerHour),
		"limits.events_per_user": int64(l.EventsPerUser), "limits.pending_per_user": int64(l.PendingPerUser),
		"limits.calendar_parts": int64(l.CalendarParts)} {
		if v < 0 {
			bad(key, "%d: want a positive number (0 = default)", v)
		}
	}
	for _, x := range []struct {
		v   int
		out *int
	}{{l.NewUsersPerMessage, &c.NewUsersPerMessage}, {l.NewUsersPerHour, &c.NewUsersPerHour}, {l.EventsPerUser, &c.EventsPerUser},
		{l.PendingPerUser, &c.PendingPerUser}, {l.CalendarParts, &c.CalendarParts}} {
		if x.v > 0 {
			*x.out = x.v
		}
	}
	c.MIME = imip.Limits{MaxDepth: l.MIMEDepth, MaxParts: l.MIMEParts, MaxHeaderBytes: l.HeaderBytes,
		MaxDecodedBytes: l.DecodedBytes, MaxCalendarBytes: l.CalendarBytes}
	c.ICS = ics.Limits{MaxBytes: int(l.CalendarBytes), MaxLineBytes: l.LineBytes, MaxComponents: l.Components,
		MaxProperties: l.Properties, MaxAttendees: l.Attendees, MaxRecurrenceDates: l.RecurrenceDates}
	switch f.OnError {
	case "", "accept", "tempfail":
	default:
		bad("on_error", "%q: want accept (fail open) or tempfail (fail closed)", f.OnError)
	}
	switch {
	case f.RefreshLimit != nil && f.AutoSendLimit != nil:
		bad("refresh_limit", "replaced by auto_send_limit; remove it")
	case f.RefreshLimit != nil && *f.RefreshLimit <= 0:
		bad("refresh_limit", "%d: replaced by auto_send_limit, which has no \"no limit\" (0 = no automatic mail); set auto_send_limit", *f.RefreshLimit)
	case f.RefreshLimit != nil:
		c.AutoSendLimit = *f.RefreshLimit
	case f.AutoSendLimit != nil && *f.AutoSendLimit < 0:
		bad("auto_send_limit", "%d: want 0 (no automatic mail) or more", *f.AutoSendLimit)
	case f.AutoSendLimit != nil:
		c.AutoSendLimit = *f.AutoSendLimit
	}
	for _, x := range []struct{ key, v string }{{"lmtp.forward", f.LMTP.Forward}, {"submission.address", f.Submission.Address}} {
		if x.v != "" {
			if err := checkAddress(x.v); err != nil {
				bad(x.key, "%q: %v", x.v, err)
			}
		}
	}
	for login, addr := range f.Milter.Logins {
		if login == "" || strings.ContainsAny(login, " \t\r\n") {
			bad("milter.logins", "%q is not a login name", login)
		}
		if a := strings.TrimSpace(addr); !strings.Contains(a, "@") || strings.ContainsAny(a, " \t\r\n") {
			bad("milter.logins", "%q = %q: want the address of a local user", login, addr)
		}
	}
	for _, d := range f.Milter.OutgoingDaemons {
		if d == "" {
			bad("milter.outgoing_daemons", "empty daemon name")
		}
	}
	c.Own = OwnMailRules{Logins: f.Milter.Logins, Daemons: f.Milter.OutgoingDaemons}
	for key, cl := range map[string]ConnLimits{"milter": f.Milter.ConnLimits, "lmtp": f.LMTP.ConnLimits} {
		_, _, ps := cl.Durations(key)
		problems = append(problems, ps...)
	}
	problems = append(problems, checkListener("milter", f.Milter.Listen, f.Milter.PeerKeys, f.Milter.SocketKeys)...)
	problems = append(problems, checkListener("lmtp", f.LMTP.Listen, f.LMTP.PeerKeys, f.LMTP.SocketKeys)...)
	problems = append(problems, checkListener("http", f.HTTP.Listen, f.HTTP.PeerKeys, SocketKeys{})...)
	if (f.HTTP.PushUser == "") != (f.HTTP.PushPassword == "") {
		bad("http.push_user", "push_user and push_password go together: set both (the push endpoint asks for them) or neither (no login asked)")
	}
	if f.LMTP.Listen != "" && f.LMTP.Forward == "" {
		bad("lmtp.forward", "required when lmtp.listen is set")
	}
	_, _, ps := f.LMTP.Pool()
	problems = append(problems, ps...)
	switch f.HTTP.PushResolve {
	case "", "recipientOnly", "mailLogin":
	default:
		bad("http.push_resolve", "%q: want recipientOnly or mailLogin", f.HTTP.PushResolve)
	}
	if (f.Submission.Username == "") != (f.Submission.Password == "") {
		bad("submission.username", "username and password go together")
	}
	if f.Submission.RequireTLS && f.Submission.Address == "" {
		bad("submission.require_tls", "needs submission.address")
	}
	if (f.CalDAV.Cert == "") != (f.CalDAV.Key == "") {
		bad("caldav.cert", "cert and key go together")
	}
	if l := f.CalDAV.Listen; l != "" {
		if err := checkHostPort(l); err != nil {
			bad("caldav.listen", "%q: %v", l, err)
		} else if _, loopback, _ := conn.ListenHost(l); f.CalDAV.Cert == "" && !loopback {
			bad("caldav.listen", "%q: plain HTTP (no cert and key) only on a loopback address, behind a reverse proxy with TLS", l)
		}
	}
	if h := f.CalDAV.ProxyAuthHeader; h != "" && (strings.ContainsAny(h, ": \t\r\n") || strings.EqualFold(h, "Authorization")) {
		bad("caldav.proxy_auth_header", "%q is not a usable header field name", h)
	}
	if _, err := ParseTrustedProxies(f.CalDAV.TrustedProxies); err != nil {
		bad("caldav.trusted_proxies", "%v", err)
	}
	if strings.ContainsAny(f.CalDAV.CalendarName, "\r\n\x00") {
		bad("caldav.calendar_name", "must be one line")
	}
	if b := f.CalDAV.BaseURL; b != "" {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad("caldav.base_url", "%q: want http(s)://HOST[:PORT][/PATH]", b)
		}
	}
	problems = append(problems, f.Store.problems()...)
	if len(problems) > 0 {
		return c, &ConfigError{Problems: problems}
	}
	return c, nil
}

// DBPath is the bbolt file in the data directory.
func (f File) DBPath() string { return filepath.Join(f.DataDir, "imipd.db") }

// AdminSocket is the unix socket the daemon answers imipctl on.
func (f File) AdminSocket() string { return filepath.Join(f.DataDir, "imipd.sock") }

// EnsureDataDir creates the data directory (mode 0700).
func (f File) EnsureDataDir() error {
	if err := os.MkdirAll(f.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	return nil
}
