// Package config reads imipd's configuration file (TOML) and checks it
// whole: File.Validate reports every problem naming its key
// (one error listing them) and returns Settings, the values each part's constructor
// takes (filter.Config for the Processor, each adapter's options, the
// listeners, the store). Every duration is parsed here, once
// (ParseDuration). cmd/imipd and cmd/imipctl only wire what it returns.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"imipd/filter"
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
// socket (Listener).
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

// HTTPConfig is the [http] table.
type HTTPConfig struct {
	Listen       string `toml:"listen"`
	PushUser     string `toml:"push_user"`
	PushPassword string `toml:"push_password"`
	PushResolve  string `toml:"push_resolve"`
	PeerKeys
}

// SubmissionConfig is the [submission] table: where the outbox sender
// (outbox.Sender) delivers outgoing iTIP mail. Address "" turns the sender off
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
// calendar apps (caldav.Server). Listen "" (the default) turns it off.
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

// Defaults is the embedded configuration imipd runs on without a file.
func Defaults() File {
	return File{
		DataDir:       "./imipd-data",
		DefaultPolicy: "known",
		Timeframe:     "4W",
		Header:        filter.DefaultHeader,
		Milter:        MilterConfig{Listen: "inet:127.0.0.1:8891"},
		HTTP:          HTTPConfig{Listen: "127.0.0.1:8009", PushResolve: "recipientOnly"},
		Submission:    SubmissionConfig{Address: "unix:/var/spool/postfix/public/imipd"},
	}
}

// configError lists every problem of a configuration file, each naming its key.
type configError struct{ problems []string }

func (e *configError) Error() string { return strings.Join(e.problems, "\n") }

// Load returns the settings of the configuration file at path, or of the
// defaults when path is "": the file read over the defaults (unknown keys
// and values of the wrong type are problems too), then Validate.
func Load(path string) (Settings, error) {
	if path == "" {
		return Defaults().Validate()
	}
	_, s, err := load(path)
	return s, err
}

// load reads a configuration file over the defaults and validates it.
// Unknown keys and bad values are errors naming the key; all of them are
// reported at once. No error shows the value of a secret key (secret.go).
func load(path string) (File, Settings, error) {
	f := Defaults()
	src, err := os.ReadFile(path)
	if err != nil {
		return f, Settings{}, fmt.Errorf("config: %w", err)
	}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(src), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return f, Settings{}, &configError{problems: []string{parseErrorText(path, string(src), pe)}}
		}
		return f, Settings{}, fmt.Errorf("config %s: %w", path, err)
	}
	var problems []string
	for _, p := range decodeKeys(md, top, &f) {
		problems = append(problems, path+": "+p)
	}
	s, err := f.Validate()
	var ce *configError
	if errors.As(err, &ce) {
		for _, p := range ce.problems {
			problems = append(problems, path+": "+p)
		}
	}
	if len(problems) > 0 {
		return f, s, &configError{problems: problems}
	}
	return f, s, nil
}

// Warnings are what is accepted in the file but should change: deprecated
// keys. imipd -test prints them, the daemon logs them at start.
func (f File) warnings() []string {
	var w []string
	if f.RefreshLimit != nil && *f.RefreshLimit > 0 && f.AutoSendLimit == nil {
		w = append(w, fmt.Sprintf("refresh_limit is deprecated: read as auto_send_limit = %d, which counts all automatic mail per target address and hour, across senders and users; rename the key", *f.RefreshLimit))
	}
	return w
}
