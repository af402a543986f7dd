package filter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"imipd/itip"
)

// File is imipd's configuration file (TOML, SPEC "Interfaces"). Every key
// has an embedded default, so an empty file (or none) is a working setup.
type File struct {
	DataDir                    string   `toml:"data_dir"`
	LocalDomains               []string `toml:"local_domains"`
	DefaultPolicy              string   `toml:"default_policy"`
	Timeframe                  string   `toml:"timeframe"`
	Header                     string   `toml:"header"`
	TrustedAuthServIDs         []string `toml:"trusted_authserv_ids"`
	RequireAuthenticatedSender bool     `toml:"require_authenticated_sender"`
	LearnSentContacts          *bool    `toml:"learn_sent_contacts"`
	RefreshLimit               *int     `toml:"refresh_limit"`

	Milter     MilterConfig     `toml:"milter"`
	LMTP       LMTPConfig       `toml:"lmtp"`
	HTTP       HTTPConfig       `toml:"http"`
	Submission SubmissionConfig `toml:"submission"`
	CalDAV     CalDAVConfig     `toml:"caldav"`
}

// MilterConfig is the [milter] table.
type MilterConfig struct {
	Listen string `toml:"listen"`
	// OutgoingDaemons are values of the {daemon_name} macro that mark mail
	// submitted locally (sendmail/pickup through non_smtpd_milters) as
	// outgoing; contrib's master.cf sets milter_macro_daemon_name=pickup on
	// the cleanup service for that. SMTP AUTH marks submission mail anyway.
	OutgoingDaemons []string `toml:"outgoing_daemons"`
}

// LMTPConfig is the [lmtp] table.
type LMTPConfig struct {
	Listen  string `toml:"listen"`
	Forward string `toml:"forward"`
}

// HTTPConfig is the [http] table.
type HTTPConfig struct {
	Listen       string `toml:"listen"`
	PushUser     string `toml:"push_user"`
	PushPassword string `toml:"push_password"`
	PushResolve  string `toml:"push_resolve"`
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

// CalDAVConfig is the [caldav] table.
type CalDAVConfig struct {
	Listen string `toml:"listen"`
	Cert   string `toml:"cert"`
	Key    string `toml:"key"`
}

// Defaults is the embedded configuration imipd runs on without a file.
func Defaults() File {
	return File{
		DataDir:       "./imipd-data",
		DefaultPolicy: "known",
		Timeframe:     "4W",
		Header:        "X-IMIP-Processed",
		Milter:        MilterConfig{Listen: "inet:127.0.0.1:8891", OutgoingDaemons: []string{"pickup"}},
		HTTP:          HTTPConfig{Listen: "127.0.0.1:8009", PushResolve: "recipientOnly"},
		Submission:    SubmissionConfig{Address: "inet:127.0.0.1:587"},
	}
}

// ConfigError lists every problem of a configuration file, each naming its key.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

// LoadFile reads a configuration file over the defaults. Unknown keys and bad
// values are errors naming the key; all of them are reported at once.
func LoadFile(path string) (File, error) {
	f := Defaults()
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return f, &ConfigError{Problems: []string{fmt.Sprintf("%s: %s", path, pe.ErrorWithPosition())}}
		}
		return f, fmt.Errorf("config %s: %w", path, err)
	}
	var problems []string
	for _, k := range md.Undecoded() {
		problems = append(problems, fmt.Sprintf("%s: unknown key %q", path, k.String()))
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
	if tf, err := itip.ParseTimeframe(f.Timeframe); err != nil {
		bad("timeframe", "%v", err)
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
	if f.RefreshLimit != nil {
		if *f.RefreshLimit < 0 {
			bad("refresh_limit", "%d: want 0 (no limit) or more", *f.RefreshLimit)
		}
		c.RefreshLimit = *f.RefreshLimit
	}
	for key, v := range map[string]string{"milter.listen": f.Milter.Listen, "lmtp.listen": f.LMTP.Listen, "lmtp.forward": f.LMTP.Forward, "submission.address": f.Submission.Address} {
		if v != "" && !strings.HasPrefix(v, "inet:") && !strings.HasPrefix(v, "unix:") {
			bad(key, "%q: want inet:HOST:PORT or unix:/PATH", v)
		}
	}
	if f.LMTP.Listen != "" && f.LMTP.Forward == "" {
		bad("lmtp.forward", "required when lmtp.listen is set")
	}
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
