package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imipd/filter"
)

// loadFile is Load returning the file as read.
func loadFile(path string) (File, error) {
	f, _, err := load(path)
	return f, err
}

func TestConfigExample(t *testing.T) {
	f, err := loadFile("../contrib/imipd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if f.DataDir != "/var/lib/imipd" || len(f.LocalDomains) != 1 {
		t.Fatalf("%+v", f)
	}
}

func TestConfigErrorsNameKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(p, []byte("default_policy = \"sometimes\"\ndefault_timezone = \"Mars/Olympus\"\ntimeframe = \"4X\"\nbogus = 1\n[milter]\nlisten = \"127.0.0.1:1\"\n"), 0o600)
	_, err := loadFile(p)
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	for _, key := range []string{"default_policy", "default_timezone", "timeframe", `"bogus"`, "milter.listen"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}

func TestConfigLimits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "limits.toml")
	os.WriteFile(p, []byte("[limits]\nmime_depth = 3\nattendees = 5\ncalendar_bytes = 4096\n"), 0o600)
	f, err := loadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	c := s.Processor
	if c.MIME.MaxDepth != 3 || c.ICS.MaxAttendees != 5 || c.MIME.MaxCalendarBytes != 4096 || c.ICS.MaxBytes != 4096 {
		t.Fatalf("limits not carried: %+v %+v", c.MIME, c.ICS)
	}
	os.WriteFile(p, []byte("[limits]\nmime_parts = -1\n"), 0o600)
	if _, err := loadFile(p); err == nil || !strings.Contains(err.Error(), "limits.mime_parts") {
		t.Fatalf("negative limit: %v", err)
	}
}

func TestConfigConnLimits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(p, []byte("[milter]\nread_timeout = \"30s\"\nmax_connections = 64\n[lmtp]\nlisten = \"inet:127.0.0.1:2424\"\nforward = \"unix:/run/dovecot/lmtp\"\nwrite_timeout = \"2m\"\n"), 0o600)
	f, err := loadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Milter.ReadTimeout; r.String() != "30s" || s.Milter.MaxConnections != 64 {
		t.Fatalf("milter: %v %+v", r, s.Milter)
	}
	if w := s.LMTP.WriteTimeout; w.String() != "2m0s" {
		t.Fatalf("lmtp write_timeout %v", w)
	}
	os.WriteFile(p, []byte("[milter]\nread_timeout = \"soon\"\n"), 0o600)
	if _, err := loadFile(p); err == nil || !strings.Contains(err.Error(), "milter.read_timeout") {
		t.Fatalf("bad timeout: %v", err)
	}
}

func TestConfigLMTPPool(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	for _, c := range []struct {
		toml string
		size int
		idle time.Duration
		bad  string
	}{
		{"", 0, 0, ""}, // defaults
		{"pool_size = 8\npool_idle = \"1m\"", 8, time.Minute, ""},
		{"pool_size = 0", -1, 0, ""}, // no pool
		{"pool_size = -2", 0, 0, "lmtp.pool_size"},
		{"pool_idle = \"a while\"", 0, 0, "lmtp.pool_idle"},
	} {
		os.WriteFile(p, []byte("[lmtp]\n"+c.toml+"\n"), 0o600)
		f, err := loadFile(p)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("%q: %v, want an error naming %s", c.toml, err, c.bad)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.toml, err)
		}
		s, _ := f.Validate()
		if size, idle := s.LMTP.PoolSize, s.LMTP.PoolIdle; size != c.size || idle != c.idle {
			t.Errorf("%q: pool %d %v, want %d %v", c.toml, size, idle, c.size, c.idle)
		}
	}
}

// TestConfigErrorsHideSecrets: no configuration error shows the value of a
// secret key, whether the error is in the secret's line or the secret is
// only a line of context (issue 13, attack 15c), while the error still says
// where it is.
func TestConfigErrorsHideSecrets(t *testing.T) {
	const secret = "Hunter2Secret"
	for name, tc := range map[string]struct{ src, want string }{
		"unterminated":        {"[http]\npush_user = \"dovecot\"\npush_password = \"" + secret + "\n", "line 3"},
		"bare word":           {"[submission]\nusername = \"u\"\npassword = " + secret + "\n", "line 3"},
		"junk after it":       {"[http]\npush_password = \"" + secret + "\" junk\n", "line 2"},
		"context line":        {"[http]\npush_password = \"" + secret + "\"\nthis is not toml\n", "line 3"},
		"multi-line string":   {"[http]\npush_password = \"\"\"x\n" + secret + "\nmore\n", "line 4"},
		"inline table":        {"submission = { password = \"" + secret + "\" junk }\n", "line 1"},
		"dotted key":          {"http.push_password = '" + secret + "\n", "line 1"},
		"dsn, tabs and CRLF":  {"[x]\r\n\tdb_dsn\t=\t\"postgres://u:" + secret + "@h/db\" x\r\n", "line 2"},
		"secret named oddly":  {"[submission]\n\"Password\" = \"" + secret + "\n", "line 2"},
		"not a secret stays":  {"[http]\nlisten = \"127.0.0.1:" + "8009\n", "127.0.0.1:8009"},
		"escape in a secret":  {"[http]\npush_password = \"" + secret + "\\q\"\n", "line 2"},
		"key after a secret":  {"[http]\npush_password = \"" + secret + "\"\npush_user = \"a\" b\n", "push_user"},
		"secret in an array":  {"[http]\npush_password = [\"" + secret + "\"\n", "line 2"},
		"secret then garbage": {"[submission]\npassword=\"" + secret + "\"garbage\n", "line 2"},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(p, []byte(tc.src), 0o600)
			_, err := loadFile(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret:\n%v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

// [milter] logins and outgoing_daemons: mail without a login is nobody's
// own by default (issue 13, attack 4); a login maps to an address.
func TestConfigOwnMail(t *testing.T) {
	if d := Defaults().Milter.OutgoingDaemons; len(d) != 0 {
		t.Errorf("outgoing_daemons defaults to %q, want none (opt-in)", d)
	}
	p := filepath.Join(t.TempDir(), "o.toml")
	os.WriteFile(p, []byte("[milter]\nlogins = { \"alice\" = \"alice@example.test\" }\noutgoing_daemons = [\"pickup\"]\n"), 0o600)
	f, err := loadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Milter.Logins["alice"] != "alice@example.test" || len(f.Milter.OutgoingDaemons) != 1 {
		t.Fatalf("%+v", f.Milter)
	}
	os.WriteFile(p, []byte("[milter]\nlogins = { \"alice\" = \"alice\" }\n"), 0o600)
	if _, err := loadFile(p); err == nil || !strings.Contains(err.Error(), "milter.logins") {
		t.Fatalf("login mapped to a non-address: %v", err)
	}
}

// auto_send_limit replaces refresh_limit: the old key is read as the new
// one with a warning; its "0 = no limit", and both keys at once, are errors
// that name the new key.
func TestConfigAutoSendLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	for _, c := range []struct {
		toml    string
		limit   int
		err     string
		warning bool
	}{
		{"", 3, "", false},
		{"auto_send_limit = 5\n", 5, "", false},
		{"auto_send_limit = 0\n", 0, "", false},
		{"auto_send_limit = -1\n", 0, "auto_send_limit: -1", false},
		{"refresh_limit = 4\n", 4, "", true},
		{"refresh_limit = 0\n", 0, "refresh_limit: 0: replaced by auto_send_limit", false},
		{"refresh_limit = 4\nauto_send_limit = 2\n", 0, "refresh_limit: replaced by auto_send_limit; remove it", false},
	} {
		os.WriteFile(p, []byte(c.toml), 0o600)
		f, err := loadFile(p)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %v, want an error with %q", c.toml, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.toml, err)
			continue
		}
		s, _ := f.Validate()
		pc := s.Processor
		if pc.AutoSendLimit != c.limit {
			t.Errorf("%q: AutoSendLimit %d, want %d", c.toml, pc.AutoSendLimit, c.limit)
		}
		w := f.warnings()
		if got := len(w) == 1 && strings.Contains(w[0], "auto_send_limit = 4"); got != c.warning {
			t.Errorf("%q: warnings %q", c.toml, w)
		}
	}
}

func TestConfigUsers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users.toml")
	for _, c := range []struct {
		file, delim, create string
		events, parts       int
		bad                 string
	}{
		{file: "", delim: "+", create: filter.CreateAuto, events: filter.DefaultEventsPerUser, parts: filter.DefaultCalendarParts},
		{file: "recipient_delimiter = \"-+\"\n[users]\ncreate = \"listed\"\n[limits]\nevents_per_user = 7\ncalendar_parts = 2\n",
			delim: "-+", create: filter.CreateListed, events: 7, parts: 2},
		{file: "recipient_delimiter = \"\"\n", delim: "", create: filter.CreateAuto, events: filter.DefaultEventsPerUser, parts: filter.DefaultCalendarParts},
		{file: "recipient_delimiter = \"@\"\n", bad: "recipient_delimiter"},
		{file: "recipient_delimiter = \"+ \"\n", bad: "recipient_delimiter"},
		{file: "[users]\ncreate = \"everyone\"\n", bad: "users.create"},
		{file: "[limits]\nnew_users_per_hour = -1\n", bad: "limits.new_users_per_hour"},
	} {
		os.WriteFile(p, []byte(c.file), 0o600)
		f, err := loadFile(p)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("%q: got %v, want an error naming %s", c.file, err, c.bad)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.file, err)
		}
		s, _ := f.Validate()
		pc := s.Processor
		if pc.RecipientDelimiter != c.delim || pc.CreateUsers != c.create || pc.EventsPerUser != c.events || pc.CalendarParts != c.parts {
			t.Errorf("%q: got delimiter %q, create %q, events %d, parts %d", c.file, pc.RecipientDelimiter, pc.CreateUsers, pc.EventsPerUser, pc.CalendarParts)
		}
	}
}

// Issue 13, attack 14: a listener beyond loopback needs allow_remote and
// peers (the MTA's addresses); -test and start fail with the key named.
func TestConfigListeners(t *testing.T) {
	for _, c := range []struct {
		toml, problem string // problem "": valid
	}{
		{"[milter]\nlisten = \"inet:127.0.0.1:8891\"\n", ""},
		{"[milter]\nlisten = \"unix:/run/imipd/milter.sock\"\nsocket_mode = \"0660\"\nsocket_group = \"postfix\"\n", ""},
		{"[milter]\nlisten = \"inet:0.0.0.0:8891\"\n", "milter.allow_remote"},
		{"[milter]\nlisten = \"inet::8891\"\n", "milter.allow_remote"},
		{"[lmtp]\nlisten = \"inet:192.0.2.10:2424\"\nforward = \"unix:/run/dovecot/lmtp\"\n", "lmtp.allow_remote"},
		{"[lmtp]\nlisten = \"inet:0.0.0.0:2424\"\nforward = \"unix:/run/dovecot/lmtp\"\nallow_remote = true\n", "lmtp.peers: required"},
		{"[lmtp]\nlisten = \"inet:0.0.0.0:2424\"\nforward = \"unix:/run/dovecot/lmtp\"\nallow_remote = true\npeers = [\"192.0.2.25\", \"2001:db8::/64\"]\n", ""},
		{"[http]\nlisten = \"0.0.0.0:8009\"\n", "http.allow_remote"},
		{"[http]\nlisten = \"[::1]:8009\"\n", ""},
		{"[milter]\npeers = [\"mx.example.test\"]\n", "milter.peers"},
		{"[milter]\nlisten = \"unix:/run/imipd/milter.sock\"\nsocket_mode = \"rw\"\n", "milter.socket_mode"},
		{"[milter]\nlisten = \"inet:127.0.0.1:8891\"\nsocket_group = \"postfix\"\n", "only for a unix"},
		{"[milter]\nmax_connections_per_peer = -1\nfirst_read_timeout = \"2s\"\n", "milter.max_connections_per_peer"},
	} {
		p := filepath.Join(t.TempDir(), "l.toml")
		os.WriteFile(p, []byte(c.toml), 0o600)
		_, err := loadFile(p)
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%q: %v", c.toml, err)
		case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%q: %v, want a problem naming %s", c.toml, err, c.problem)
		}
	}
}

// TestConfigReportsEverything (issue 15, item 4): one pass reports every
// problem, each with its key: a value of the wrong type does not stop the
// other checks, push_user needs push_password, listener addresses are
// checked (port range, host, unix path), and a bad duration names its key
// and the syntax, not "timeframe".
func TestConfigReportsEverything(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	src := `timeframe = 4
default_policy = "sometimes"
local_domains = "example.org"
[milter]
listen = "inet:127.0.0.1:99999"
read_timeout = "5 minutes"
[lmtp]
listen = "unix:relative/lmtp.sock"
forward = "inet:bad_host!:24"
[http]
listen = "127.0.0.1:70000"
push_user = "dovecot"
[caldav]
listen = "127.0.0.1:http"
[limits]
attendees = "many"
`
	os.WriteFile(p, []byte(src), 0o600)
	f, err := loadFile(p)
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{
		"timeframe: wrong type: want a string in quotes, the file has a whole number",
		"default_policy:",
		"local_domains: wrong type: want a list of strings",
		`milter.listen: "inet:127.0.0.1:99999": port "99999"`,
		`milter.read_timeout: "5 minutes" is not a duration: want numbers with units`,
		`lmtp.listen: "unix:relative/lmtp.sock": want unix:/PATH with an absolute path`,
		`lmtp.forward: "inet:bad_host!:24": host "bad_host!"`,
		`http.listen: "127.0.0.1:70000": port "70000"`,
		"http.push_user: push_user and push_password go together",
		`caldav.listen: "127.0.0.1:http": port "http"`,
		"limits.attendees: wrong type: want a whole number, the file has a string",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "itip:") {
		t.Errorf("an error names the wrong thing:\n%v", err)
	}
	if f.Timeframe != "4W" {
		t.Errorf("timeframe of the wrong type: %q, want the default kept", f.Timeframe)
	}
	os.WriteFile(p, []byte("[http]\npush_user = \"dovecot\"\npush_password = \"s3cret\"\n[milter]\nlisten = \"inet:localhost:8891\"\n[lmtp]\nlisten = \"inet:[::1]:2424\"\nforward = \"unix:/run/dovecot/lmtp\"\n"), 0o600)
	if _, err := loadFile(p); err != nil {
		t.Errorf("a good file: %v", err)
	}
}

func TestCalDAVConfig(t *testing.T) {
	for _, tc := range []struct {
		c    CalDAVConfig
		want string // "" = valid
	}{
		{CalDAVConfig{}, ""},
		{CalDAVConfig{Listen: "127.0.0.1:8443"}, ""},
		{CalDAVConfig{Listen: "[::1]:8443", ProxyAuthHeader: "X-Remote-User", BaseURL: "https://cal.example.org/x"}, ""},
		{CalDAVConfig{Listen: "0.0.0.0:8443"}, "caldav.listen"},
		{CalDAVConfig{Listen: "0.0.0.0:8443", Cert: "c.pem", Key: "k.pem"}, ""},
		{CalDAVConfig{Listen: "8443"}, "caldav.listen"},
		{CalDAVConfig{Listen: "127.0.0.1:8443", Cert: "c.pem"}, "caldav.cert"},
		{CalDAVConfig{Listen: "127.0.0.1:8443", ProxyAuthHeader: "Authorization"}, "caldav.proxy_auth_header"},
		{CalDAVConfig{Listen: "127.0.0.1:8443", BaseURL: "cal.example.org"}, "caldav.base_url"},
		{CalDAVConfig{Listen: "127.0.0.1:8443", TrustedProxies: []string{"proxy.example.org"}}, "caldav.trusted_proxies"},
		{CalDAVConfig{Listen: "127.0.0.1:8443", CalendarName: "a\nb"}, "caldav.calendar_name"},
	} {
		f := Defaults()
		f.CalDAV = tc.c
		_, err := f.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.c, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one naming %s", tc.c, err, tc.want)
		}
	}
	f := Defaults()
	f.CalDAV.Listen = "127.0.0.1:8443"
	s, _ := f.Validate()
	if got := s.FeedURL("tok"); got != "http://127.0.0.1:8443/feed/tok.ics" {
		t.Errorf("FeedURL %s", got)
	}
	f.CalDAV.BaseURL = "https://cal.example.org/"
	s, _ = f.Validate()
	if got := s.FeedURL("tok"); got != "https://cal.example.org/feed/tok.ics" {
		t.Errorf("FeedURL %s", got)
	}
}

// TestValidateSettings: each key reaches the constructor that uses it,
// parsed once: durations, the pool, listeners with their peers and socket
// mode, the header for the Processor, on_error in both MTA adapters, the own-mail rules
// in the Processor, the outbox with the default time zone, CalDAV's proxies.
func TestValidateSettings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(p, []byte(`header = "X-Cal"
on_error = "tempfail"
default_timezone = "Europe/Berlin"
[milter]
listen = "unix:/run/imipd/milter.sock"
socket_mode = "0620"
socket_group = "postfix"
first_read_timeout = "2s"
max_connections_per_peer = 8
logins = { "alice" = "alice@example.test" }
outgoing_daemons = ["pickup"]
[lmtp]
listen = "inet:0.0.0.0:2424"
allow_remote = true
peers = ["192.0.2.25", "2001:db8::/64"]
forward = "unix:/run/dovecot/lmtp"
read_timeout = "1m 30s"
pool_size = 4
pool_idle = "45s"
[http]
listen = "127.0.0.1:8009"
push_user = "dovecot"
push_password = "pw"
push_resolve = "mailLogin"
[submission]
address = "inet:127.0.0.1:587"
username = "imipd"
password = "pw2"
require_tls = true
[caldav]
listen = "127.0.0.1:8443"
trusted_proxies = ["10.0.0.0/8"]
calendar_name = "Cal"
[limits]
calendar_bytes = 200000
[store]
driver = "bbolt"
`), 0o600)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"header", s.Processor.Header, "X-Cal"},
		{"milter on_error", s.Milter.TempFailOnError, true},
		{"lmtp on_error", s.LMTP.TempFailOnError, true},
		{"milter first read", s.Milter.FirstReadTimeout, 2 * time.Second},
		{"milter per peer", s.Milter.MaxConnectionsPerPeer, 8},
		{"own logins", s.Processor.Own.Logins["alice"], "alice@example.test"},
		{"own daemons", strings.Join(s.Processor.Own.Daemons, ","), "pickup"},
		{"milter listen", s.MilterListen.Addr, "unix:/run/imipd/milter.sock"},
		{"milter socket mode", s.MilterListen.Options.SocketMode.String(), "-rw--w----"},
		{"milter socket group", s.MilterListen.Options.SocketGroup, "postfix"},
		{"lmtp peers", fmt.Sprint(s.LMTPListen.Options.Peers), "[192.0.2.25/32 2001:db8::/64]"},
		{"lmtp read", s.LMTP.ReadTimeout, 90 * time.Second},
		{"lmtp forward", s.LMTP.Forward, "unix:/run/dovecot/lmtp"},
		{"lmtp pool", s.LMTP.PoolSize, 4},
		{"lmtp pool idle", s.LMTP.PoolIdle, 45 * time.Second},
		{"http listen", s.HTTPListen.Addr, "inet:127.0.0.1:8009"},
		{"push", s.HTTP.PushUser + ":" + s.HTTP.PushPassword + ":" + s.HTTP.PushResolve, "dovecot:pw:mailLogin"},
		{"outbox", s.Outbox.Address + ":" + s.Outbox.Username + ":" + s.Outbox.Password, "inet:127.0.0.1:587:imipd:pw2"},
		{"outbox tls", s.Outbox.RequireTLS, true},
		{"outbox zone", s.Outbox.DefaultZone.String(), "Europe/Berlin"},
		{"processor zone", s.Processor.DefaultZone.String(), "Europe/Berlin"},
		{"caldav listen", s.CalDAVListen, "127.0.0.1:8443"},
		{"caldav proxies", fmt.Sprint(s.CalDAV.TrustedProxies), "[10.0.0.0/8]"},
		{"caldav name", s.CalDAV.CalendarName, "Cal"},
		{"caldav put limits", s.CalDAV.Limits.MaxBytes, 200000},
		{"store", s.storeName(), s.DBPath()},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := parseTrustedProxies([]string{"127.0.0.1", "10.1.2.3/8", "::1", "::ffff:192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1/32", "10.0.0.0/8", "::1/128", "192.0.2.1/32"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("%d: %s, want %s", i, got[i], want[i])
		}
	}
	if _, err := parseTrustedProxies([]string{"proxy.example"}); err == nil {
		t.Error("a host name was accepted")
	}
}
