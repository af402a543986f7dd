package admin

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"imipd/calstore"
	"imipd/config"
	"imipd/filter"
)

// catchupSlack is subtracted from a downtime's start: Maildir names carry
// whole seconds.
const catchupSlack = time.Second

// catchup processes the mail that passed while imipd was down (README
// "Catching up after downtime"): for every downtime the store recorded at a
// start (filter.RecordStart) and no catch-up has done yet, each known
// user's Maildir (the -maildirs template) is read for messages that arrived
// since the earliest downtime began, oldest first, and processed as
// delivery would have, once-only as always: what imipd processed live
// meanwhile gets its earlier outcome and changes nothing. The downtimes are
// then cleared, so the next run finds nothing to do. An untagged message's
// X-IMIP-Processed header is not believed (nobody removed a forged one
// while imipd was down): the processed-message log decides.
func (c *ctl) catchup(ctx context.Context, args []string) error {
	fs := newFlags("catchup")
	asJSON := fs.Bool("json", false, "JSON output")
	tmpl := fs.String("maildirs", "", "each user's Maildir: a path with %u (address), %n (local part), %d (domain)")
	if _, err := parse(fs, args, 0, 0, "no arguments"); err != nil {
		return err
	}
	if err := checkMaildirTemplate(*tmpl); err != nil {
		return usagef("catchup: -maildirs: %v", err)
	}
	var downs []calstore.Downtime
	var users []calstore.User
	if err := c.store.Read(ctx, func(tx calstore.Tx) error {
		var err error
		if downs, err = tx.Downtimes(); err != nil {
			return err
		}
		users, err = tx.Users()
		return err
	}); err != nil {
		return err
	}
	t := c.newTally()
	files, missing := 0, 0
	if len(downs) > 0 {
		since := downs[0].From.Add(-catchupSlack)
		for _, u := range users {
			list, found := c.maildirMessages(expandMaildir(*tmpl, u.Address))
			if !found {
				missing++
				continue
			}
			for i, f := range list {
				c.client.Progress("catchup %s: %d/%d", u.Address, i+1, len(list))
				if f.received.Before(since) && !f.symlink {
					continue
				}
				files++
				if err := c.processFile(ctx, "catchup", u.Address, f, t); err != nil {
					return err
				}
			}
		}
		c.client.Progress("")
		if err := c.store.Write(ctx, func(tx calstore.Tx) error {
			cur, err := tx.Downtimes()
			if err != nil {
				return err
			}
			return tx.PutDowntimes(withoutDowntimes(cur, downs))
		}); err != nil {
			return err
		}
	}
	if *asJSON {
		if downs == nil {
			downs = []calstore.Downtime{}
		}
		results := t.results
		if results == nil {
			results = []scanned{}
		}
		return c.json(map[string]any{"downtimes": downs, "results": results})
	}
	if len(downs) == 0 {
		fmt.Fprintln(c.out, "no downtime to catch up")
		return nil
	}
	for _, d := range downs {
		fmt.Fprintf(c.out, "downtime %s to %s\n", d.From.Local().Format(time.RFC3339), d.To.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(c.out, "%d users (%d without a Maildir), %d messages since %s: %s\n",
		len(users), missing, files, downs[0].From.Local().Format(time.RFC3339), t)
	return nil
}

// withoutDowntimes is cur without the downtimes done (a start recorded
// meanwhile stays for the next run).
func withoutDowntimes(cur, done []calstore.Downtime) []calstore.Downtime {
	var out []calstore.Downtime
	for _, d := range cur {
		seen := false
		for _, x := range done {
			if d.From.Equal(x.From) && d.To.Equal(x.To) {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, d)
		}
	}
	return out
}

// maildirMessage is one message file and when it arrived.
type maildirMessage struct {
	path     string
	received time.Time
	symlink  bool // a symbolic link (the file, or its cur/ or new/): skipped, never read
}

// maildirMessages lists a Maildir's new/ and cur/ messages, oldest first;
// found is false when it has neither. A Maildir, cur/ or new/ that is a
// symbolic link is not listed but is one entry with symlink set, as is a
// message file that is one: root must not read another user's mail through a
// link that user planted.
func (c *ctl) maildirMessages(dir string) (list []maildirMessage, found bool) {
	// The Maildir itself must not be a link either: a user who owns the
	// directory that holds it (a home directory) could point it at another
	// user's Maildir. ReadDir refuses a directory that is a link.
	if _, err := c.client.ReadDir(dir); isSymlinkErr(err) {
		return []maildirMessage{{path: dir, symlink: true}}, true
	}
	for _, sub := range []string{"cur", "new"} {
		d := path.Join(dir, sub)
		files, err := c.client.ReadDir(d)
		if isSymlinkErr(err) {
			found = true
			list = append(list, maildirMessage{path: d, symlink: true})
			continue
		}
		if err != nil {
			continue
		}
		found = true
		for _, f := range files {
			list = append(list, maildirMessage{path.Join(d, f.Name), maildirTime(f), f.Symlink})
		}
	}
	sortMessages(list)
	return list, found
}

// sortMessages sorts by arrival, oldest first.
func sortMessages(l []maildirMessage) {
	sort.SliceStable(l, func(i, j int) bool { return l[i].received.Before(l[j].received) })
}

// scanned is one result of a message file (scan, catchup).
type scanned struct {
	File string `json:"file"`
	filter.Result
}

// tally is what a pass over message files found: every file counts once,
// as older than the timeframe, gone meanwhile, without calendar data,
// already processed, or by its outcome (a message whose calendar objects
// had different outcomes under them joined, "applied+rejected"), so the
// counts add up to the files.
type tally struct {
	now                  time.Time     // for the timeframe
	timeframe            time.Duration // 0: none
	skipped, gone, plain int           // older than the timeframe; moved meanwhile; without calendar data
	symlinks             int           // symbolic links, not followed
	repeats              int           // processed before: nothing done again
	hint                 string        // what includes the older messages
	counts               map[string]int
	results              []scanned
}

func (c *ctl) newTally() *tally {
	return &tally{now: c.proc.Time(), timeframe: c.proc.Cfg.Timeframe, counts: map[string]int{}}
}

// processFile processes one message file for user as delivery would, once
// only, unless it is older than the timeframe; a file gone meanwhile
// (delivered and moved: the live path has it) is passed over.
func (c *ctl) processFile(ctx context.Context, transport, user string, f maildirMessage, t *tally) error {
	if f.symlink {
		t.symlinks++
		c.logger().Warn(transport+": symbolic link not followed", "user", user, "path", f.path)
		return nil
	}
	if tf := c.proc.Cfg.Timeframe; tf > 0 && t.now.Sub(f.received) > tf {
		t.skipped++
		return nil
	}
	raw, err := c.client.ReadMessage(f.path)
	if isSymlinkErr(err) {
		f.symlink = true // made a link after it was listed
		return c.processFile(ctx, transport, user, f, t)
	}
	if err != nil {
		t.gone++
		return nil
	}
	rep, err := c.proc.Check(ctx, filter.CheckRequest{Transport: transport, User: user, Received: f.received, Message: bytes.NewReader(raw)})
	if err != nil {
		return fmt.Errorf("%s %s: %w", transport, f.path, err)
	}
	if !rep.Calendar {
		t.plain++
		return nil
	}
	var outcomes []string
	repeat := len(rep.Results) > 0
	for _, r := range rep.Results {
		if !slices.Contains(outcomes, string(r.Outcome)) {
			outcomes = append(outcomes, string(r.Outcome))
		}
		repeat = repeat && r.Repeat
		t.results = append(t.results, scanned{File: f.path, Result: r})
	}
	switch {
	case repeat:
		t.repeats++
	case len(outcomes) == 0:
		t.counts["without a recipient"]++
	default:
		sort.Strings(outcomes)
		t.counts[strings.Join(outcomes, "+")]++
	}
	return nil
}

// logger is the processor's logger.
func (c *ctl) logger() *slog.Logger {
	if c.proc.Log != nil {
		return c.proc.Log
	}
	return slog.Default()
}

// String is the summary: "N older than the timeframe, N without calendar
// data, N <outcome>..." (outcomes sorted).
func (t *tally) String() string {
	var keys []string
	for k := range t.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := fmt.Sprintf("%d older than the timeframe", t.skipped)
	if t.skipped > 0 {
		s += fmt.Sprintf(" (timeframe %s, by arrival: not processed", config.FormatDuration(t.timeframe))
		if t.hint != "" {
			s += "; " + t.hint
		}
		s += ")"
	}
	s += fmt.Sprintf(", %d without calendar data", t.plain)
	if t.gone > 0 {
		s += fmt.Sprintf(", %d gone meanwhile", t.gone)
	}
	if t.symlinks > 0 {
		s += fmt.Sprintf(", %d symbolic links not followed", t.symlinks)
	}
	if t.repeats > 0 {
		s += fmt.Sprintf(", %d already processed", t.repeats)
	}
	for _, k := range keys {
		s += fmt.Sprintf(", %d %s", t.counts[k], k)
	}
	return s
}

// maildirVar matches the template variables of -maildirs.
var maildirVar = regexp.MustCompile(`%[und%]`)

// checkMaildirTemplate: an absolute, clean path naming at least one of
// %u, %n, %d, each a path segment of its own making (so an address cannot
// climb out of its directory), and no other % sequence.
func checkMaildirTemplate(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("required, e.g. /var/vmail/%%d/%%n/Maildir")
	case !path.IsAbs(t) || path.Clean(t) != t:
		return fmt.Errorf("%q: want an absolute, clean path", t)
	case !regexp.MustCompile(`%[und]`).MatchString(t):
		return fmt.Errorf("%q names no user (%%u, %%n or %%d)", t)
	case strings.Contains(maildirVar.ReplaceAllString(t, ""), "%"):
		return fmt.Errorf("%q: only %%u, %%n, %%d and %%%% are known", t)
	}
	return nil
}

// expandMaildir fills the template for addr. A part that is not a plain
// path segment ("", ".", "..", or with "/") becomes "_", so no address
// names a directory outside its own.
func expandMaildir(t, addr string) string {
	local, domain, _ := strings.Cut(addr, "@")
	seg := func(s string) string {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
			return "_"
		}
		return s
	}
	return maildirVar.ReplaceAllStringFunc(t, func(v string) string {
		switch v {
		case "%u":
			return seg(addr)
		case "%n":
			return seg(local)
		case "%d":
			return seg(domain)
		}
		return "%"
	})
}

// maildirPattern is the regexp of the directories a -maildirs template can
// name (the Maildir, its cur/ and new/): what imipctl lets the daemon list
// for catchup.
func maildirPattern(t string) (*regexp.Regexp, error) {
	if err := checkMaildirTemplate(t); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("^")
	last := 0
	for _, m := range maildirVar.FindAllStringIndex(t, -1) {
		b.WriteString(regexp.QuoteMeta(t[last:m[0]]))
		if t[m[0]:m[1]] == "%%" {
			b.WriteString("%")
		} else {
			b.WriteString(`[^/]+`)
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(t[last:]))
	b.WriteString(`(/cur|/new)?$`)
	return regexp.Compile(b.String())
}
