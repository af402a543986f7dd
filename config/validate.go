package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"imipd/caldav"
	"imipd/filter"
	"imipd/filter/conn"
	"imipd/filter/lmtp"
	"imipd/filter/milter"
	"imipd/filter/push"
	"imipd/itip"
	"imipd/itip/ics"
	"imipd/itip/imip"
	"imipd/outbox"
)

// Settings is a checked configuration: what each part of imipd is built
// with, every value parsed (File.Validate). The caller adds only what is
// made at run time: loggers, clocks, the metrics registry, the store.
type Settings struct {
	// DataDir holds the bbolt file and the admin socket (data_dir).
	DataDir string
	// Store is the [store] table, its DSN read.
	Store Store
	// Processor is the configuration of the decision call
	// (filter.Processor.Cfg).
	Processor filter.Config

	// Milter, LMTP and HTTP are the adapters' options; each listens on
	// its Listener, none when the address is "".
	Milter       milter.Options
	MilterListen Listener
	LMTP         lmtp.Options
	LMTPListen   Listener
	HTTP         push.Options // the caller adds Gatherer and Ready
	HTTPListen   Listener

	// CalDAV is the CalDAV server and the feed, off when CalDAVListen is
	// "". CalDAVCert and CalDAVKey (PEM files) are its TLS certificate.
	// The caller adds Now (the Processor's clock).
	CalDAV                caldav.Options
	CalDAVListen          string // HOST:PORT
	CalDAVCert, CalDAVKey string
	caldavBase            string // base_url

	// Outbox is the sender of outgoing iTIP mail; Address "" leaves items
	// queued. The caller adds Now (the Processor's clock).
	Outbox outbox.Options

	// Warnings are File.Warnings: imipd -test prints them, the daemon
	// logs them at start.
	Warnings []string
}

// Listener is where an adapter listens: Addr "inet:HOST:PORT" or
// "unix:/PATH" ("" = off) with its peers and socket keys. The caller adds
// Options.Log.
type Listener struct {
	Addr    string
	Options conn.ListenOptions
}

// problems collects what is wrong with a file, each naming its key.
type problems []string

func (p *problems) bad(key, format string, a ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, a...))
}

// duration parses an optional duration key ("" and "0": 0, the default).
func (p *problems) duration(key, v string) time.Duration {
	if v == "" || v == "0" {
		return 0
	}
	d, err := ParseDuration(v)
	if err != nil {
		p.bad(key, "%q is not a duration: want %s", v, durationSyntax)
	}
	return d
}

// Validate checks the whole file and returns its settings. Every problem
// is reported at once, each naming its key (configError); no problem shows
// a secret's value.
func (f File) Validate() (Settings, error) {
	var p problems
	s := Settings{DataDir: f.DataDir, Processor: f.processing(&p), Warnings: f.warnings()}
	if f.DataDir == "" {
		p.bad("data_dir", "must not be empty")
	}
	onError := f.OnError == "tempfail"
	switch f.OnError {
	case "", "accept", "tempfail":
	default:
		p.bad("on_error", "%q: want accept (fail open) or tempfail (fail closed)", f.OnError)
	}
	for _, x := range []struct{ key, v string }{{"lmtp.forward", f.LMTP.Forward}, {"submission.address", f.Submission.Address}} {
		if x.v != "" {
			if err := checkAddress(x.v); err != nil {
				p.bad(x.key, "%q: %v", x.v, err)
			}
		}
	}

	m := f.Milter
	for login, addr := range m.Logins {
		if login == "" || strings.ContainsAny(login, " \t\r\n") {
			p.bad("milter.logins", "%q is not a login name", login)
		}
		if a := strings.TrimSpace(addr); !strings.Contains(a, "@") || strings.ContainsAny(a, " \t\r\n") {
			p.bad("milter.logins", "%q = %q: want the address of a local user", login, addr)
		}
	}
	for _, d := range m.OutgoingDaemons {
		if d == "" {
			p.bad("milter.outgoing_daemons", "empty daemon name")
		}
	}
	s.Processor.Own = filter.OwnMailRules{Logins: m.Logins, Daemons: m.OutgoingDaemons}
	s.Milter = milter.Options{TempFailOnError: onError}
	s.Milter.ReadTimeout, s.Milter.WriteTimeout, s.Milter.FirstReadTimeout = m.ConnLimits.parse("milter", &p)
	s.Milter.MaxConnections, s.Milter.MaxConnectionsPerPeer = m.MaxConnections, m.MaxConnectionsPerPeer
	s.MilterListen = listener("milter", m.Listen, m.PeerKeys, m.SocketKeys, &p)

	l := f.LMTP
	s.LMTP = lmtp.Options{Forward: l.Forward, TempFailOnError: onError,
		MaxConnections: l.MaxConnections, MaxConnectionsPerPeer: l.MaxConnectionsPerPeer}
	s.LMTP.ReadTimeout, s.LMTP.WriteTimeout, s.LMTP.FirstReadTimeout = l.ConnLimits.parse("lmtp", &p)
	s.LMTPListen = listener("lmtp", l.Listen, l.PeerKeys, l.SocketKeys, &p)
	if l.Listen != "" && l.Forward == "" {
		p.bad("lmtp.forward", "required when lmtp.listen is set")
	}
	// pool_size: unset is the adapter's default (0), 0 is none (negative).
	switch {
	case l.PoolSize == nil:
	case *l.PoolSize < 0:
		p.bad("lmtp.pool_size", "%d: want 0 (no pool) or more", *l.PoolSize)
	case *l.PoolSize == 0:
		s.LMTP.PoolSize = -1
	default:
		s.LMTP.PoolSize = *l.PoolSize
	}
	s.LMTP.PoolIdle = p.duration("lmtp.pool_idle", l.PoolIdle)

	h := f.HTTP
	s.HTTP = push.Options{PushUser: h.PushUser, PushPassword: h.PushPassword, PushResolve: h.PushResolve}
	s.HTTPListen = listener("http", h.Listen, h.PeerKeys, SocketKeys{}, &p)
	if h.Listen != "" {
		s.HTTPListen.Addr = "inet:" + h.Listen
	}
	if (h.PushUser == "") != (h.PushPassword == "") {
		p.bad("http.push_user", "push_user and push_password go together: set both (the push endpoint asks for them) or neither (no login asked)")
	}
	switch h.PushResolve {
	case "", "recipientOnly", "mailLogin":
	default:
		p.bad("http.push_resolve", "%q: want recipientOnly or mailLogin", h.PushResolve)
	}

	sub := f.Submission
	s.Outbox = outbox.Options{Address: sub.Address, Username: sub.Username, Password: sub.Password,
		RequireTLS: sub.RequireTLS, DefaultZone: s.Processor.DefaultZone}
	if (sub.Username == "") != (sub.Password == "") {
		p.bad("submission.username", "username and password go together")
	}
	if sub.RequireTLS && sub.Address == "" {
		p.bad("submission.require_tls", "needs submission.address")
	}

	f.CalDAV.settings(&s, &p)
	s.Store = f.Store.settings(&p)
	if len(p) > 0 {
		return s, &configError{problems: p}
	}
	return s, nil
}

// processing checks the keys of the decision call and returns its
// configuration.
func (f File) processing(p *problems) filter.Config {
	c := filter.DefaultConfig()
	if f.Header == "" || strings.ContainsAny(f.Header, ": \t\r\n") {
		p.bad("header", "%q is not a header field name", f.Header)
	}
	c.Header = f.Header
	for _, d := range f.LocalDomains {
		d = strings.TrimSpace(d)
		if d == "" || strings.ContainsAny(d, "@ /") {
			p.bad("local_domains", "%q is not a domain", d)
		}
		c.LocalDomains = append(c.LocalDomains, strings.ToLower(d))
	}
	if pol, err := itip.ParsePolicy(f.DefaultPolicy); err != nil {
		p.bad("default_policy", "%q: want always, known or never", f.DefaultPolicy)
	} else {
		c.DefaultPolicy = pol
	}
	if f.DefaultTimezone != "" {
		if z, err := filter.LoadZone(f.DefaultTimezone); err != nil {
			p.bad("default_timezone", "%v", err)
		} else {
			c.DefaultZone = z
		}
	}
	if tf, err := ParseDuration(f.Timeframe); err != nil {
		p.bad("timeframe", "%q is not a duration: want %s", f.Timeframe, durationSyntax)
	} else {
		c.Timeframe = tf
	}
	c.TrustedAuthServIDs = f.TrustedAuthServIDs
	c.RequireAuthenticatedSender = f.RequireAuthenticatedSender
	if f.RequireAuthenticatedSender && len(f.TrustedAuthServIDs) == 0 {
		p.bad("require_authenticated_sender", "needs trusted_authserv_ids")
	}
	if f.LearnSentContacts != nil {
		c.LearnSentContacts = *f.LearnSentContacts
	}
	if d := f.RecipientDelimiter; d != nil {
		if len(*d) > 16 || strings.ContainsFunc(*d, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`@<>"\`, r) }) {
			p.bad("recipient_delimiter", "%q: want a few printable ASCII characters other than @ < > \" \\ (\"\" = none)", *d)
		}
		c.RecipientDelimiter = *d
	}
	switch f.Users.Create {
	case "":
	case filter.CreateAuto, filter.CreateListed:
		c.CreateUsers = f.Users.Create
	default:
		p.bad("users.create", "%q: want auto or listed", f.Users.Create)
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
			p.bad(key, "%d: want a positive number (0 = default)", v)
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
	switch {
	case f.RefreshLimit != nil && f.AutoSendLimit != nil:
		p.bad("refresh_limit", "replaced by auto_send_limit; remove it")
	case f.RefreshLimit != nil && *f.RefreshLimit <= 0:
		p.bad("refresh_limit", "%d: replaced by auto_send_limit, which has no \"no limit\" (0 = no automatic mail); set auto_send_limit", *f.RefreshLimit)
	case f.RefreshLimit != nil:
		c.AutoSendLimit = *f.RefreshLimit
	case f.AutoSendLimit != nil && *f.AutoSendLimit < 0:
		p.bad("auto_send_limit", "%d: want 0 (no automatic mail) or more", *f.AutoSendLimit)
	case f.AutoSendLimit != nil:
		c.AutoSendLimit = *f.AutoSendLimit
	}
	return c
}

// parse checks the connection keys of the table key and returns its
// timeouts (0: the adapter's default).
func (c ConnLimits) parse(key string, p *problems) (read, write, first time.Duration) {
	read = p.duration(key+".read_timeout", c.ReadTimeout)
	write = p.duration(key+".write_timeout", c.WriteTimeout)
	first = p.duration(key+".first_read_timeout", c.FirstReadTimeout)
	if c.MaxConnections < 0 {
		p.bad(key+".max_connections", "%d: want a positive number (0 = default)", c.MaxConnections)
	}
	if c.MaxConnectionsPerPeer < 0 {
		p.bad(key+".max_connections_per_peer", "%d: want a positive number (0 = default)", c.MaxConnectionsPerPeer)
	}
	return read, write, first
}

// listener checks a listener's address against its peer and socket keys,
// the one place that does for every MTA-facing listener: beyond loopback
// only with allow_remote and explicit peers.
func listener(key, addr string, pk PeerKeys, sk SocketKeys, p *problems) Listener {
	ln := Listener{Addr: addr, Options: conn.ListenOptions{SocketGroup: sk.SocketGroup}}
	var err error
	if ln.Options.Peers, err = conn.ParsePeers(pk.Peers); err != nil {
		p.bad(key+".peers", "%v", err)
	}
	if ln.Options.SocketMode, err = conn.ParseSocketMode(sk.SocketMode); err != nil {
		p.bad(key+".socket_mode", "%v", err)
	}
	if addr == "" {
		return ln
	}
	check := checkAddress // milter and lmtp: inet:HOST:PORT or unix:/PATH
	if key == "http" {
		check = checkHostPort
	}
	if err := check(addr); err != nil {
		p.bad(key+".listen", "%q: %v", addr, err)
		return ln
	}
	if !strings.HasPrefix(addr, "unix:") && (sk.SocketMode != "" || sk.SocketGroup != "") {
		p.bad(key+".socket_mode, socket_group", "only for a unix:/PATH listen address")
	}
	host, loopback, err := conn.ListenHost(addr)
	switch {
	case err != nil:
		p.bad(key+".listen", "%q: %v", addr, err)
	case !loopback && !pk.AllowRemote:
		p.bad(key+".listen", "%q listens beyond loopback, where anyone who reaches it is believed as the MTA: "+
			"set %s.allow_remote = true and %s.peers to the MTA's addresses, or listen on 127.0.0.1 or a unix socket", addr, key, key)
	case !loopback && len(pk.Peers) == 0:
		p.bad(key+".peers", "required when %s.listen is beyond loopback (%q): the addresses of the MTA", key, host)
	}
	return ln
}

// settings checks [caldav] and fills the CalDAV settings.
func (c CalDAVConfig) settings(s *Settings, p *problems) {
	s.CalDAV = caldav.Options{CalendarName: c.CalendarName, TLS: c.Cert != "", ProxyAuthHeader: c.ProxyAuthHeader,
		Limits: s.Processor.ICS}
	s.CalDAVListen, s.CalDAVCert, s.CalDAVKey = c.Listen, c.Cert, c.Key
	s.caldavBase = c.BaseURL
	if (c.Cert == "") != (c.Key == "") {
		p.bad("caldav.cert", "cert and key go together")
	}
	if l := c.Listen; l != "" {
		if err := checkHostPort(l); err != nil {
			p.bad("caldav.listen", "%q: %v", l, err)
		} else if _, loopback, _ := conn.ListenHost(l); c.Cert == "" && !loopback {
			p.bad("caldav.listen", "%q: plain HTTP (no cert and key) only on a loopback address, behind a reverse proxy with TLS", l)
		}
	}
	if h := c.ProxyAuthHeader; h != "" && (strings.ContainsAny(h, ": \t\r\n") || strings.EqualFold(h, "Authorization")) {
		p.bad("caldav.proxy_auth_header", "%q is not a usable header field name", h)
	}
	var err error
	if s.CalDAV.TrustedProxies, err = parseTrustedProxies(c.TrustedProxies); err != nil {
		p.bad("caldav.trusted_proxies", "%v", err)
	}
	if strings.ContainsAny(c.CalendarName, "\r\n\x00") {
		p.bad("caldav.calendar_name", "must be one line")
	}
	if b := c.BaseURL; b != "" {
		u, err := url.Parse(b)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			p.bad("caldav.base_url", "%q: want http(s)://HOST[:PORT][/PATH]", b)
		}
	}
}

// CalDAVBaseURL is the public URL of the CalDAV listener: base_url, or
// http(s)://listen, or "" when neither is set.
func (s Settings) CalDAVBaseURL() string {
	if s.caldavBase != "" {
		return strings.TrimSuffix(s.caldavBase, "/")
	}
	if s.CalDAVListen == "" {
		return "" // off: a path only
	}
	scheme := "http"
	if s.CalDAVCert != "" {
		scheme = "https"
	}
	return scheme + "://" + s.CalDAVListen
}

// FeedURL is the subscription URL of a feed token.
func (s Settings) FeedURL(token string) string {
	return s.CalDAVBaseURL() + "/feed/" + token + ".ics"
}

// DBPath is the bbolt file in the data directory.
func (s Settings) DBPath() string { return filepath.Join(s.DataDir, "imipd.db") }

// AdminSocket is the unix socket the daemon answers imipctl on.
func (s Settings) AdminSocket() string { return filepath.Join(s.DataDir, "imipd.sock") }

// EnsureDataDir creates the data directory (mode 0700).
func (s Settings) EnsureDataDir() error {
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	return nil
}

// parseTrustedProxies parses [caldav] trusted_proxies: addresses or CIDR
// prefixes (caldav.Options.TrustedProxies).
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &net.ParseError{Type: "IP address or CIDR prefix", Text: s}
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
