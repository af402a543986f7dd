// Package admin implements imipctl's commands (docs/rules.md "Admin CLI") against
// a store, so the same code answers on the command line (store opened
// directly) and on the daemon's admin socket (the daemon's open store): the
// output is the same either way.
package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-vcard"

	"imipd/address"
	"imipd/caldav"
	"imipd/calstore"
	"imipd/config"
	"imipd/filter"
	"imipd/itip"
	"imipd/outbox"
)

// Usage is the command summary.
const Usage = `usage: imipctl [-config FILE | -data DIR] [-local] COMMAND [flags] [args]

commands:
  user add [-policy P] [-tz ZONE] [-alias A]... [-delegate D]... ADDRESS
  user set [-policy P] [-tz ZONE] [-alias A]... [-delegate D]... ADDRESS
  user show [-json] ADDRESS
  user remove ADDRESS
  user password USER            (the app password on standard input)
  user feed [-revoke] USER
  users [-json]
  contacts add USER ADDRESS...
  contacts import USER FILE.vcf
  contacts list [-json] USER
  import USER FILE.ics
  export USER
  events [-json] USER
  event [-json] USER UID
  pending [-json] [-all] USER
  respond [-as DELEGATE] [-instance RECURRENCE-ID] USER ID ACTION
  log [-json] [-n N] [USER]
  outbox [-json]
  outbox retry ID
  check [-user USER] FILE.eml
  process [-json] -user USER [-outgoing] FILE.eml
  scan [-json] [-timeframe D] -user USER MAILDIR
  catchup [-json] -maildirs TEMPLATE
  migrate -to postgres|bbolt    (copy the store between bbolt and [store]'s database)
`

// UsageError is a wrong invocation: exit status 2.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return UsageError{fmt.Sprintf(format, a...)} }

// Env is what a command runs against.
type Env struct {
	// Cfg is the configuration imipd runs with: the server defaults
	// (policy, time zone) that user show and users print, and the feed
	// URL (caldav.base_url) that user feed prints.
	Cfg   config.Settings
	Store calstore.Store
	Proc  *filter.Processor
	Out   io.Writer
	// Client is the side imipctl runs on: files named on the command line
	// are its files, progress goes to its terminal.
	Client Client
}

// Client gives a command what lives on imipctl's side. LocalClient is the
// direct one; on the admin socket the daemon asks imipctl over the socket.
type Client interface {
	ReadFile(path string) ([]byte, error)    // "-" is standard input
	ReadDir(path string) ([]FileInfo, error) // a directory's regular files and symbolic links; not through a link
	ReadMessage(path string) ([]byte, error) // a file ReadDir listed, not through a symbolic link
	Progress(format string, a ...any)        // a transient status line; no-op when not on a terminal
}

// FileInfo is a directory entry as ReadDir reports it.
type FileInfo struct {
	Name    string    `json:"name"`
	ModTime time.Time `json:"mtime"`
	Size    int64     `json:"size"`
	Symlink bool      `json:"symlink,omitempty"` // a symbolic link: listed to be counted, never read
}

type ctl struct {
	cfg    config.Settings
	out    io.Writer
	store  calstore.Store
	proc   *filter.Processor
	client Client
}

// Run runs one command (args[0]) with its arguments.
func Run(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	c := &ctl{cfg: env.Cfg, out: env.Out, store: env.Store, proc: env.Proc, client: env.Client}
	cmd, cargs := args[0], args[1:]
	switch cmd {
	case "help":
		fmt.Fprint(c.out, Usage)
		return nil
	case "user":
		return c.user(ctx, cargs)
	case "users":
		return c.users(ctx, cargs)
	case "contacts":
		return c.contacts(ctx, cargs)
	case "import":
		return c.importICS(ctx, cargs)
	case "export":
		return c.export(ctx, cargs)
	case "events":
		return c.events(ctx, cargs)
	case "event":
		return c.event(ctx, cargs)
	case "pending":
		return c.pending(ctx, cargs)
	case "respond":
		return c.respond(ctx, cargs)
	case "log":
		return c.log(ctx, cargs)
	case "outbox":
		return c.outbox(ctx, cargs)
	case "check":
		return c.check(ctx, cargs)
	case "scan":
		return c.scan(ctx, cargs)
	case "catchup":
		return c.catchup(ctx, cargs)
	case "process":
		return c.process(ctx, cargs)
	}
	return usagef("unknown command %q", cmd)
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses a command's flags, which may come before, between or after
// its arguments (everything after "--" is an argument), and checks the
// number of arguments: between min and max (-1: any).
func parse(fs *flag.FlagSet, args []string, min, max int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...) // flag.Parse stopped at "--"
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if n := len(pos); n < min || (max >= 0 && n > max) {
		return nil, usagef("%s: want %s", fs.Name(), what)
	}
	return pos, nil
}

// CommandUsage returns the lines of Usage for the command args name (all
// of a group's lines, "user", when args name no known subcommand), or ""
// for no known command.
func CommandUsage(args []string) string {
	if len(args) == 0 {
		return ""
	}
	var all, sub []string
	for _, l := range strings.Split(Usage, "\n") {
		if !strings.HasPrefix(l, "  "+args[0]+" ") && l != "  "+args[0] {
			continue
		}
		all = append(all, l+"\n")
		if len(args) > 1 && strings.HasPrefix(l, "  "+args[0]+" "+args[1]+" ") {
			sub = append(sub, l+"\n")
		}
	}
	if len(sub) > 0 {
		return strings.Join(sub, "")
	}
	return strings.Join(all, "")
}

// listJSON prints a listing; an empty one is [] rather than null, so
// scripts can iterate without a special case.
func listJSON[T any](c *ctl, l []T) error {
	if l == nil {
		l = []T{}
	}
	return c.json(l)
}

func (c *ctl) json(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *ctl) user(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("user: want add, set, show, remove, password or feed")
	}
	sub := args[0]
	fs := newFlags("user " + sub)
	policy := fs.String("policy", "", "always | known | never")
	tz := fs.String("tz", "", "IANA time zone of the user's descriptions (Europe/Berlin); \"default\": the server's default_timezone")
	var aliases, delegates multi
	fs.Var(&aliases, "alias", "further address of the user (repeatable)")
	fs.Var(&delegates, "delegate", "address that may act for the user (repeatable)")
	asJSON := fs.Bool("json", false, "JSON output")
	revoke := fs.Bool("revoke", false, "feed: remove the feed token")
	rest, err := parse(fs, args[1:], 1, 1, "ADDRESS")
	if err != nil {
		return err
	}
	addr := address.Normalize(rest[0])
	if !strings.Contains(addr, "@") {
		return usagef("user %s: %q is not an address", sub, rest[0])
	}
	if *policy != "" {
		p, err := itip.ParsePolicy(*policy)
		if err != nil {
			return usagef("%v", err)
		}
		*policy = string(p)
	}
	if *tz != "" && *tz != "default" {
		if _, err := filter.LoadZone(*tz); err != nil {
			return usagef("user %s -tz: %v", sub, err)
		}
	}
	switch sub {
	case "add", "set":
		return c.store.Write(ctx, func(tx calstore.Tx) error {
			u, err := tx.User(addr)
			switch {
			case sub == "add" && err == nil:
				return fmt.Errorf("user %s: %w", addr, calstore.ErrExists)
			case sub == "set" && err != nil:
				return fmt.Errorf("user %s: %w", addr, err)
			case sub == "add":
				u = calstore.User{Address: addr, Created: c.proc.Time().UTC()}
			}
			if *policy != "" || sub == "add" {
				u.Policy = *policy
			}
			switch *tz {
			case "":
			case "default":
				u.TimeZone = ""
			default:
				u.TimeZone = *tz
			}
			u.Aliases = append(u.Aliases, aliases...)
			u.Delegates = append(u.Delegates, delegates...)
			if err := tx.PutUser(u); err != nil {
				return err
			}
			fmt.Fprintf(c.out, "user %s: policy %s, time zone %s\n", u.Address, policyText(u.Policy, c.cfg.Processor.DefaultPolicy), zoneText(u.TimeZone, c.cfg.Processor.DefaultZone))
			return nil
		})
	case "show":
		return c.store.Read(ctx, func(tx calstore.Tx) error {
			u, err := tx.User(addr)
			if err != nil {
				return fmt.Errorf("user %s: %w", addr, err)
			}
			if *asJSON {
				return c.json(showUser(u))
			}
			fmt.Fprintf(c.out, "address:   %s\npolicy:    %s\ntime zone: %s\naliases:   %s\ndelegates: %s\ncreated:   %s\ncaldav:    %s\nfeed:      %s\n", u.Address,
				policyText(u.Policy, c.cfg.Processor.DefaultPolicy), zoneText(u.TimeZone, c.cfg.Processor.DefaultZone), strings.Join(u.Aliases, ", "), strings.Join(u.Delegates, ", "), u.Created.Format(time.RFC3339),
				yesNo(u.PasswordHash != "", "app password set", "no app password"), yesNo(u.FeedHash != "", "active", "none"))
			return nil
		})
	case "password":
		data, err := c.client.ReadFile("-")
		if err != nil {
			return fmt.Errorf("user password: reading the password from standard input: %w", err)
		}
		pass := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if pass == "" || strings.ContainsAny(pass, "\r\n") {
			return usagef("user password: want one line with the password on standard input")
		}
		hash, err := caldav.HashPassword(pass)
		if err != nil {
			return usagef("user password: %v", err)
		}
		u, err := c.changeUser(ctx, addr, func(u *calstore.User) { u.PasswordHash = hash })
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "user %s: CalDAV app password set (log in as %s)\n", u.Address, u.Address)
		return nil
	case "feed":
		token, hash := "", ""
		if !*revoke && c.cfg.CalDAVBaseURL() == "" {
			// A path alone is no URL a calendar app can subscribe to; the
			// old feed stays as it is.
			return fmt.Errorf("user feed: no public URL to print: set caldav.base_url to the URL users reach imipd's CalDAV listener at (e.g. https://cal.example.org), and caldav.listen, which serves the feed")
		}
		if !*revoke {
			if token, hash, err = caldav.NewFeedToken(); err != nil {
				return err
			}
		}
		u, err := c.changeUser(ctx, addr, func(u *calstore.User) { u.FeedHash = hash })
		if err != nil {
			return err
		}
		if *revoke {
			fmt.Fprintf(c.out, "user %s: feed revoked\n", u.Address)
			return nil
		}
		// Only the token's hash is kept: this is the one time it is shown;
		// running the command again makes a new URL and ends the old one.
		fmt.Fprintln(c.out, c.cfg.FeedURL(token))
		return nil
	case "remove":
		return c.store.Write(ctx, func(tx calstore.Tx) error {
			if err := tx.DeleteUser(addr); err != nil {
				return fmt.Errorf("user %s: %w", addr, err)
			}
			fmt.Fprintf(c.out, "user %s removed\n", addr)
			return nil
		})
	}
	return usagef("user: unknown subcommand %q", sub)
}

// changeUser changes addr's record in one write transaction (a local
// user not stored yet is made first) and returns the record as written.
func (c *ctl) changeUser(ctx context.Context, addr string, change func(*calstore.User)) (calstore.User, error) {
	var u calstore.User
	err := c.store.Write(ctx, func(tx calstore.Tx) error {
		if err := c.localUser(tx, addr); err != nil {
			return fmt.Errorf("user %s: %w", addr, err)
		}
		var err error
		if u, err = tx.User(addr); err != nil {
			return fmt.Errorf("user %s: %w", addr, err)
		}
		change(&u)
		return tx.PutUser(u)
	})
	return u, err
}

// userView is a user as listings show it: the stored record without the
// password and feed hashes, with whether they are set.
type userView struct {
	calstore.User
	CalDAVPassword bool `json:"caldav_password"`
	Feed           bool `json:"feed"`
}

func showUser(u calstore.User) userView {
	v := userView{User: u, CalDAVPassword: u.PasswordHash != "", Feed: u.FeedHash != ""}
	v.PasswordHash, v.FeedHash = "", ""
	return v
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func zoneText(z string, def *time.Location) string {
	if z != "" {
		return z
	}
	if def == nil {
		def = time.UTC
	}
	return def.String() + " (server default)"
}

func policyText(p string, def itip.Policy) string {
	if p == "" {
		return string(def) + " (server default)"
	}
	return p
}

func (c *ctl) users(ctx context.Context, args []string) error {
	fs := newFlags("users")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parse(fs, args, 0, 0, "no arguments"); err != nil {
		return err
	}
	return c.store.Read(ctx, func(tx calstore.Tx) error {
		us, err := tx.Users()
		if err != nil {
			return err
		}
		if *asJSON {
			views := make([]userView, 0, len(us))
			for _, u := range us {
				views = append(views, showUser(u))
			}
			return listJSON(c, views)
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tPOLICY\tALIASES\tDELEGATES")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Address, policyText(u.Policy, c.cfg.Processor.DefaultPolicy), strings.Join(u.Aliases, ","), strings.Join(u.Delegates, ","))
		}
		return tw.Flush()
	})
}

func (c *ctl) contacts(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("contacts: want add, import or list")
	}
	fs := newFlags("contacts " + args[0])
	asJSON := fs.Bool("json", false, "JSON output")
	switch args[0] {
	case "add":
		rest, err := parse(fs, args[1:], 2, -1, "USER ADDRESS...")
		if err != nil {
			return err
		}
		var cs []calstore.Contact
		for _, a := range rest[1:] {
			cs = append(cs, calstore.Contact{User: rest[0], Address: a, Source: calstore.SourceManual})
		}
		if err := c.addContacts(ctx, rest[0], cs); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%d contact(s) added for %s\n", len(cs), rest[0])
		return nil
	case "import":
		rest, err := parse(fs, args[1:], 2, 2, "USER FILE.vcf")
		if err != nil {
			return err
		}
		data, err := c.client.ReadFile(rest[1])
		if err != nil {
			return err
		}
		var cs []calstore.Contact
		dec := vcard.NewDecoder(bytes.NewReader(data))
		for {
			card, err := dec.Decode()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", rest[1], err)
			}
			name := card.PreferredValue(vcard.FieldFormattedName)
			for _, e := range card.Values(vcard.FieldEmail) {
				cs = append(cs, calstore.Contact{User: rest[0], Address: e, Name: name, Source: calstore.SourceVCard})
			}
		}
		if err := c.addContacts(ctx, rest[0], cs); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%d address(es) imported for %s\n", len(cs), rest[0])
		return nil
	case "list":
		rest, err := parse(fs, args[1:], 1, 1, "USER")
		if err != nil {
			return err
		}
		return c.store.Read(ctx, func(tx calstore.Tx) error {
			cs, err := tx.Contacts(rest[0])
			if err != nil {
				return err
			}
			if *asJSON {
				return listJSON(c, cs)
			}
			tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tNAME\tSOURCE")
			for _, ct := range cs {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", ct.Address, ct.Name, ct.Source)
			}
			return tw.Flush()
		})
	}
	return usagef("contacts: unknown subcommand %q", args[0])
}

// localUser creates the record of a user at a local domain on first use,
// as delivery does (docs/rules.md "Users and addresses"); others must be added first.
func (c *ctl) localUser(tx calstore.UserTx, addr string) error {
	_, err := tx.User(addr)
	if errors.Is(err, calstore.ErrNotFound) && c.proc.IsLocal(address.Normalize(addr)) {
		return tx.PutUser(calstore.User{Address: address.Normalize(addr), Created: c.proc.Time().UTC()})
	}
	return err
}

// addContacts adds cs to user's contacts in one write transaction (a
// local user not stored yet is made first).
func (c *ctl) addContacts(ctx context.Context, user string, cs []calstore.Contact) error {
	return c.store.Write(ctx, func(tx calstore.Tx) error {
		if err := c.localUser(tx, user); err != nil {
			return err
		}
		for _, ct := range cs {
			if err := tx.AddContact(ct); err != nil {
				return fmt.Errorf("contact %s of %s: %w", ct.Address, user, err)
			}
		}
		return nil
	})
}

func (c *ctl) importICS(ctx context.Context, args []string) error {
	rest, err := parse(newFlags("import"), args, 2, 2, "USER FILE.ics")
	if err != nil {
		return err
	}
	data, err := c.client.ReadFile(rest[1])
	if err != nil {
		return err
	}
	n, err := c.proc.Import(ctx, rest[0], bytes.NewReader(data))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d event(s) imported for %s\n", n, address.Normalize(rest[0]))
	return nil
}

func (c *ctl) export(ctx context.Context, args []string) error {
	rest, err := parse(newFlags("export"), args, 1, 1, "USER")
	if err != nil {
		return err
	}
	return c.proc.Export(ctx, rest[0], c.out)
}

func (c *ctl) events(ctx context.Context, args []string) error {
	fs := newFlags("events")
	asJSON := fs.Bool("json", false, "JSON output")
	rest, err := parse(fs, args, 1, 1, "USER")
	if err != nil {
		return err
	}
	var views []EventView
	err = c.store.Read(ctx, func(tx calstore.Tx) error {
		evs, err := tx.Events(rest[0])
		if err != nil {
			return err
		}
		for _, ev := range evs {
			v, err := viewEvent(ev)
			if err != nil {
				// A damaged copy (written before calendar apps' writes
				// were checked) is listed, not in the way of the others.
				v.Status = "unreadable"
			}
			views = append(views, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sortByStart(views)
	if *asJSON {
		return listJSON(c, views)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tSUMMARY\tORGANIZER\tSEQ\tSTATUS\tYOU\tUID")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.Start, v.Summary, v.Organizer, v.Sequence, v.Status, ownStatus(v, rest[0]), v.UID)
	}
	return tw.Flush()
}

// sortByStart orders events by when they start (an all-day date at its
// midnight UTC), then by UID; events without a readable start come last.
func sortByStart(views []EventView) {
	start := func(v EventView) (time.Time, bool) {
		if t, err := time.Parse(time.RFC3339, v.Start); err == nil {
			return t, true
		}
		t, err := time.Parse("2006-01-02", v.Start)
		return t, err == nil
	}
	sort.SliceStable(views, func(i, j int) bool {
		ti, oki := start(views[i])
		tj, okj := start(views[j])
		switch {
		case oki != okj:
			return oki
		case oki && !ti.Equal(tj):
			return ti.Before(tj)
		}
		return views[i].UID < views[j].UID
	})
}

func ownStatus(v EventView, user string) string {
	user = address.Normalize(user)
	if v.Organizer == user {
		return "organizer"
	}
	for _, a := range v.Attendees {
		if a.Address == user {
			return a.PartStat
		}
	}
	return ""
}

func (c *ctl) event(ctx context.Context, args []string) error {
	fs := newFlags("event")
	asJSON := fs.Bool("json", false, "JSON output")
	rest, err := parse(fs, args, 2, 2, "USER UID")
	if err != nil {
		return err
	}
	var ev calstore.Event
	if err := c.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		if ev, err = tx.Event(rest[0], rest[1]); err != nil {
			return err
		}
		ev.History, err = tx.EventHistory(rest[0], rest[1])
		return err
	}); err != nil {
		return fmt.Errorf("event %s of %s: %w", rest[1], rest[0], err)
	}
	v, err := viewEvent(ev)
	if err != nil {
		return err
	}
	v.History = ev.History
	if *asJSON {
		return c.json(v)
	}
	fmt.Fprintf(c.out, "%s\n  uid:       %s\n  organizer: %s\n  when:      %s – %s\n  sequence:  %d\n  status:    %s\n", v.Summary, v.UID, v.Organizer, v.Start, v.End, v.Sequence, v.Status)
	if v.RRule != "" {
		fmt.Fprintf(c.out, "  repeats:   %s\n", v.RRule)
	}
	for _, a := range v.Attendees {
		fmt.Fprintf(c.out, "  attendee:  %s %s %s\n", a.Address, a.PartStat, a.Role)
	}
	for _, in := range v.Instances {
		fmt.Fprintf(c.out, "  instance %s: %s – %s %s\n", in.RecurrenceID, in.Start, in.End, in.Status)
	}
	fmt.Fprintln(c.out, "history:")
	for _, h := range ev.History {
		fmt.Fprintf(c.out, "  %s %s %s %s %s\n", h.Time.Format(time.RFC3339), h.Method, h.Outcome, h.Reason, h.Summary)
	}
	fmt.Fprintln(c.out, "data:")
	_, err = c.out.Write(ev.Data)
	return err
}

// pendingView is a pending item as pending -json shows it; actions only
// while the item is open (a decided or obsolete one takes none).
type pendingView struct {
	ID      uint64   `json:"id"`
	Kind    string   `json:"kind"`
	UID     string   `json:"uid,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Actions []string `json:"actions,omitempty"`
	Summary string   `json:"summary,omitempty"`
	Status  string   `json:"status"`
	From    string   `json:"from,omitempty"`
	Created string   `json:"created"`
}

func (c *ctl) pending(ctx context.Context, args []string) error {
	fs := newFlags("pending")
	asJSON := fs.Bool("json", false, "JSON output")
	all := fs.Bool("all", false, "include decided and obsolete items")
	rest, err := parse(fs, args, 1, 1, "USER")
	if err != nil {
		return err
	}
	var items []calstore.Pending
	if err := c.store.Read(ctx, func(tx calstore.Tx) error {
		items, err = tx.PendingList(rest[0], !*all)
		return err
	}); err != nil {
		return err
	}
	views := []pendingView{}
	for _, p := range items {
		v := pendingView{ID: p.ID, Kind: p.Kind, UID: p.UID, Reason: p.Reason, Summary: p.Summary, Status: p.Status, From: p.From, Created: p.Created.Format(time.RFC3339)}
		if p.Status == calstore.PendingOpen {
			v.Actions = p.Actions
		}
		views = append(views, v)
	}
	if *asJSON {
		return c.json(views)
	}
	for _, v := range views {
		fmt.Fprintf(c.out, "#%d %s (%s) %s\n    %s\n", v.ID, v.Kind, v.Reason, v.Status, v.Summary)
		if len(v.Actions) > 0 {
			fmt.Fprintf(c.out, "    actions: %s\n", strings.Join(v.Actions, " | "))
		}
	}
	if len(views) == 0 {
		fmt.Fprintln(c.out, "nothing pending")
	}
	return nil
}

func (c *ctl) respond(ctx context.Context, args []string) error {
	fs := newFlags("respond")
	as := fs.String("as", "", "a delegate of USER deciding on USER's behalf")
	instance := fs.String("instance", "", "answer only this occurrence (20250311T140000 in the event's zone, 20250311T130000Z, 2025-03-11); ID may then be the event's UID")
	rest, err := parse(fs, args, 3, 3, "USER ID ACTION")
	if err != nil {
		return err
	}
	if *instance != "" {
		return c.respondInstance(ctx, rest, *instance, *as)
	}
	id, err := strconv.ParseUint(rest[1], 10, 64)
	if err != nil {
		return usagef("respond: %q is not a pending id", rest[1])
	}
	res, err := c.proc.Respond(ctx, filter.RespondRequest{User: rest[0], Pending: id, Action: rest[2], As: *as})
	if errors.Is(err, itip.ErrAction) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	c.printAnswer(fmt.Sprintf("pending %d", id), res.Result)
	return nil
}

// printAnswer prints what a decision did and what it queued.
func (c *ctl) printAnswer(what string, res itip.Result) {
	fmt.Fprintf(c.out, "%s: %s", what, res.Outcome)
	if res.Reason != "" {
		fmt.Fprintf(c.out, " (%s)", res.Reason)
	}
	fmt.Fprintln(c.out)
	for _, s := range res.Send {
		fmt.Fprintf(c.out, "queued %s to %s\n", s.Method, strings.Join(s.To, ", "))
	}
}

// respondInstance answers one occurrence: USER, the pending item or UID,
// ACTION in rest.
func (c *ctl) respondInstance(ctx context.Context, rest []string, instance, as string) error {
	res, err := c.proc.Respond(ctx, filter.RespondRequest{User: rest[0], Ref: rest[1], Instance: instance, Action: rest[2], As: as})
	if errors.Is(err, itip.ErrAction) || errors.Is(err, itip.ErrNoInstance) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	c.printAnswer(fmt.Sprintf("%s, occurrence %s", res.UID, res.RecurrenceID), res.Result)
	return nil
}

func (c *ctl) log(ctx context.Context, args []string) error {
	fs := newFlags("log")
	asJSON := fs.Bool("json", false, "JSON output")
	n := fs.Int("n", 100, "entries (0 = all)")
	rest, err := parse(fs, args, 0, 1, "[USER]")
	if err != nil {
		return err
	}
	user := ""
	if len(rest) == 1 {
		user = rest[0]
	}
	var entries []calstore.LogEntry
	if err := c.store.Read(ctx, func(tx calstore.Tx) error {
		entries, err = tx.Log(user, *n)
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return listJSON(c, entries)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tUSER\tOUTCOME\tREASON\tMETHOD\tFROM\tUID\tMESSAGE-ID")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.User, e.Outcome, e.Reason, e.Method, e.From, e.UID, e.MessageID)
	}
	return tw.Flush()
}

type outboxView struct {
	ID        uint64   `json:"id"`
	To        []string `json:"to"`
	Method    string   `json:"method,omitempty"`
	UID       string   `json:"uid,omitempty"`
	Status    string   `json:"status"`
	Attempts  int      `json:"attempts"`
	LastError string   `json:"last_error,omitempty"`
}

func (c *ctl) outbox(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "retry" {
		rest, err := parse(newFlags("outbox retry"), args[1:], 1, 1, "ID")
		if err != nil {
			return err
		}
		id, err := strconv.ParseUint(rest[0], 10, 64)
		if err != nil {
			return usagef("outbox retry: %q is not an outbox id", rest[0])
		}
		if err := outbox.Retry(ctx, c.store, id, c.proc.Time()); err != nil {
			return fmt.Errorf("outbox %d: %w", id, err)
		}
		if c.proc.OnEnqueue != nil {
			c.proc.OnEnqueue() // the daemon's sender looks now
		}
		fmt.Fprintf(c.out, "outbox %d: queued\n", id)
		return nil
	}
	fs := newFlags("outbox")
	asJSON := fs.Bool("json", false, "JSON output")
	if _, err := parse(fs, args, 0, 0, "no arguments"); err != nil {
		return err
	}
	var items []calstore.OutboxItem
	if err := c.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		items, err = tx.Outbox()
		return err
	}); err != nil {
		return err
	}
	views := []outboxView{}
	for _, o := range items {
		views = append(views, outboxView{ID: o.ID, To: o.To, Method: o.Method, UID: o.UID, Status: o.Status, Attempts: o.Attempts, LastError: o.LastError})
	}
	if *asJSON {
		return c.json(views)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tMETHOD\tTO\tUID\tATTEMPTS\tLAST ERROR")
	for _, v := range views {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", v.ID, v.Status, v.Method, strings.Join(v.To, ","), v.UID, v.Attempts, v.LastError)
	}
	return tw.Flush()
}

// check describes a message and what would happen, changing nothing.
func (c *ctl) check(ctx context.Context, args []string) error {
	fs := newFlags("check")
	user := fs.String("user", "", "recipient to evaluate for (default: local recipients in To/Cc)")
	rest, err := parse(fs, args, 1, 1, "FILE.eml")
	if err != nil {
		return err
	}
	raw, err := c.client.ReadFile(rest[0])
	if err != nil {
		return err
	}
	rep, err := c.proc.Check(ctx, filter.CheckRequest{Transport: "cli", DryRun: true, Received: c.proc.Time(), User: *user, Message: bytes.NewReader(raw)})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "message:  %s\nfrom:     %s\n", rep.MessageID, rep.From)
	if rep.Sender != "" {
		fmt.Fprintf(c.out, "sender:   %s\n", rep.Sender)
	}
	if !rep.Calendar {
		fmt.Fprintln(c.out, "calendar: none (plain mail, passed on untouched)")
		return nil
	}
	for _, d := range rep.Description {
		fmt.Fprintf(c.out, "calendar: %s\n", d)
	}
	if len(rep.Description) == 0 {
		fmt.Fprintln(c.out, "calendar: present, but not usable iTIP (see below)")
	}
	for _, o := range rep.Objects {
		fmt.Fprintf(c.out, "object:   %s\n", o)
	}
	if len(rep.Results) == 0 {
		fmt.Fprintln(c.out, "no local recipient (use -user to evaluate for one)")
	}
	for _, r := range rep.Results {
		fmt.Fprintf(c.out, "for %s: would be %s", r.User, r.Outcome)
		if r.Reason != "" {
			fmt.Fprintf(c.out, " (%s)", r.Reason)
		}
		if r.Summary != "" {
			fmt.Fprintf(c.out, ": %s", r.Summary)
		}
		if r.Pending > 0 {
			fmt.Fprintf(c.out, "; asks the user")
		}
		if r.Sends > 0 {
			fmt.Fprintf(c.out, "; sends %d message(s)", r.Sends)
		}
		fmt.Fprintln(c.out)
	}
	return nil
}

func (c *ctl) process(ctx context.Context, args []string) error {
	fs := newFlags("process")
	asJSON := fs.Bool("json", false, "JSON output")
	user := fs.String("user", "", "the user the message is delivered to (or, with -outgoing, sent by)")
	outgoing := fs.Bool("outgoing", false, "the user sent this message")
	rest, err := parse(fs, args, 1, 1, "FILE.eml")
	if err != nil {
		return err
	}
	if *user == "" {
		return usagef("process: -user is required")
	}
	raw, err := c.client.ReadFile(rest[0])
	if err != nil {
		return err
	}
	rep, err := c.proc.Check(ctx, filter.CheckRequest{Transport: "cli", User: *user, Outgoing: *outgoing, Received: c.proc.Time(), Message: bytes.NewReader(raw)})
	if err != nil {
		return err
	}
	if *asJSON {
		res := rep.Results
		if res == nil {
			res = []filter.Result{}
		}
		return c.json(map[string]any{"results": res})
	}
	if !rep.Calendar {
		fmt.Fprintln(c.out, "no calendar data")
	}
	sort.SliceStable(rep.Results, func(i, j int) bool { return rep.Results[i].User < rep.Results[j].User })
	for _, r := range rep.Results {
		fmt.Fprintf(c.out, "%s: %s", r.User, filter.HeaderValue([]filter.Result{r}))
		fmt.Fprintln(c.out)
	}
	return nil
}

// scan processes the messages of a Maildir (new/ and cur/, or the files of
// a plain directory) that arrived inside the timeframe, oldest first, for
// one user: a backfill with the same once-only guarantee as delivery (the
// processed-message log), so a second run or a concurrent delivery of the
// same message applies it once.
func (c *ctl) scan(ctx context.Context, args []string) error {
	fs := newFlags("scan")
	asJSON := fs.Bool("json", false, "JSON output: one result per calendar message")
	user := fs.String("user", "", "the mailbox owner")
	timeframe := fs.String("timeframe", "", `this scan's timeframe instead of the configured one ("8W"; "0": no limit)`)
	rest, err := parse(fs, args, 1, 1, "MAILDIR")
	if err != nil {
		return err
	}
	if *user == "" {
		return usagef("scan: -user is required")
	}
	if *timeframe != "" {
		// Old mail on purpose: the messages' age neither skips them here
		// nor makes the rules ignore them (itip: Input.Timeframe).
		tf := time.Duration(0)
		if *timeframe != "0" {
			if tf, err = config.ParseDuration(*timeframe); err != nil {
				return usagef("scan: -timeframe %q: want a duration (\"8W\", \"90D\") or 0 for no limit", *timeframe)
			}
		}
		p := *c.proc
		p.Cfg.Timeframe = tf
		c.proc = &p
	}
	files, found := c.maildirMessages(rest[0])
	if !found {
		list, err := c.client.ReadDir(rest[0])
		if err != nil {
			return fmt.Errorf("scan %s: %w", rest[0], err)
		}
		for _, f := range list {
			files = append(files, maildirMessage{path.Join(rest[0], f.Name), maildirTime(f), f.Symlink})
		}
		sortMessages(files)
	}
	t := c.newTally()
	t.hint = "-timeframe 0 includes them, or a longer -timeframe"
	for i, f := range files {
		c.client.Progress("scan %s: %d/%d", rest[0], i+1, len(files))
		if err := c.processFile(ctx, "scan", *user, f, t); err != nil {
			return err
		}
	}
	c.client.Progress("")
	if *asJSON {
		return listJSON(c, t.results)
	}
	fmt.Fprintf(c.out, "%d messages: %s\n", len(files), t)
	return nil
}

// maildirTime is when a Maildir message arrived: the Unix time its name
// starts with (Maildir's unique names), else the file's modification time.
func maildirTime(f FileInfo) time.Time {
	if i := strings.IndexByte(f.Name, '.'); i > 0 {
		if sec, err := strconv.ParseInt(f.Name[:i], 10, 64); err == nil && sec > 0 {
			return time.Unix(sec, 0)
		}
	}
	return f.ModTime
}
