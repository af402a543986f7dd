package filter_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"imipd/calstore"
	"imipd/filter"
	"imipd/itip/ics"
	"imipd/itip/icstest"
)

// TestScenarios runs every case under testdata/scenarios (see HACKING.md):
//
//	message.eml  the message delivered
//	before.ics   the user's stored copy before (optional)
//	after.ics    the stored copy expected after (optional: absent means
//	             unchanged when before.ics exists, no event otherwise)
//	case.txt     "key: value" lines:
//	  user       recipient (required)
//	  policy     always | known | never (default known)
//	  contact    an address the user knows (repeatable)
//	  stamp      attendee[/RECURRENCE-ID]=DTSTAMP of the last applied REPLY (repeatable)
//	  now        RFC 3339 processing time (default 2026-11-25T12:00:00Z)
//	  outgoing   yes: the user sent the message
//	  repeat     deliver the message this many times (default 1)
//	  outcome    expected outcome of the last delivery; "none": no result
//	             at all (the message is not calendar mail)
//	  reason     expected reason word (optional; "-" for none)
//	  pending    expected open pending kinds, comma-separated, or none
//	  outbox     expected outbox methods, comma-separated, or none
func TestScenarios(t *testing.T) {
	dirs, err := filepath.Glob("testdata/scenarios/*/case.txt")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, c := range dirs {
		dir := filepath.Dir(c)
		t.Run(filepath.Base(dir), func(t *testing.T) { runScenario(t, dir) })
	}
}

type scenario struct {
	kv       map[string]string
	contacts []string
	stamps   []string
}

func readCase(t *testing.T, path string) scenario {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := scenario{kv: map[string]string{}}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "contact":
			sc.contacts = append(sc.contacts, v)
		case "stamp":
			sc.stamps = append(sc.stamps, v)
		case "user", "policy", "now", "outgoing", "repeat", "outcome", "reason", "pending", "outbox", "description":
			sc.kv[k] = v
		default:
			t.Fatalf("%s: unknown key %q", path, k)
		}
	}
	return sc
}

func runScenario(t *testing.T, dir string) {
	sc := readCase(t, filepath.Join(dir, "case.txt"))
	user := sc.kv["user"]
	if user == "" {
		t.Fatal("case.txt: user is required")
	}
	ctx := context.Background()
	db, err := calstore.Open(filepath.Join(t.TempDir(), "imipd.db"), calstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	policy := sc.kv["policy"]
	if policy == "" {
		policy = "known"
	}
	before, _ := os.ReadFile(filepath.Join(dir, "before.ics"))
	err = db.Write(ctx, func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: user, Policy: policy}); err != nil {
			return err
		}
		for _, c := range sc.contacts {
			if err := tx.AddContact(calstore.Contact{User: user, Address: c}); err != nil {
				return err
			}
		}
		if before == nil {
			return nil
		}
		cal, err := ics.Decode(before, ics.Limits{})
		if err != nil {
			return err
		}
		m := itipUID(t, cal)
		ev := calstore.Event{UID: m, Data: before, ReplyStamps: map[string]time.Time{}}
		for _, s := range sc.stamps {
			k, v, _ := strings.Cut(s, "=")
			ts, err := time.Parse("20060102T150405Z", v)
			if err != nil {
				return err
			}
			a, rid, _ := strings.Cut(k, "/")
			key := a
			if rid != "" {
				key += "\x00" + rid
			}
			ev.ReplyStamps[key] = ts
		}
		return tx.PutEvent(user, ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if v := sc.kv["now"]; v != "" {
		if now, err = time.Parse(time.RFC3339, v); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filter.DefaultConfig()
	cfg.LocalDomains = []string{"example.test"}
	p := &filter.Processor{Store: db, Cfg: cfg, Now: func() time.Time { return now }}
	raw, err := os.ReadFile(filepath.Join(dir, "message.eml"))
	if err != nil {
		t.Fatal(err)
	}
	repeat := 1
	if sc.kv["repeat"] == "2" {
		repeat = 2
	}
	var rep *filter.Report
	for i := 0; i < repeat; i++ {
		env := filter.Envelope{Rcpts: []string{user}, Transport: "test", Received: now}
		if sc.kv["outgoing"] == "yes" {
			env = filter.Envelope{MailFrom: user, Transport: "test", Received: now, Outgoing: true}
		}
		rep, err = p.Process(ctx, bytes.NewReader(raw), env)
		if err != nil {
			t.Fatal(err)
		}
	}
	if sc.kv["outcome"] == "none" {
		if rep.Calendar || len(rep.Results) != 0 {
			t.Errorf("want no result (not calendar mail), got calendar=%v %+v", rep.Calendar, rep.Results)
		}
		if before != nil || fileExists(filepath.Join(dir, "after.ics")) {
			t.Error(`outcome "none" takes no before.ics or after.ics`)
		}
		return
	}
	if len(rep.Results) == 0 {
		t.Fatalf("no result for %s (calendar=%v)", user, rep.Calendar)
	}
	got := rep.Results[len(rep.Results)-1]
	if want := sc.kv["outcome"]; string(got.Outcome) != want {
		t.Errorf("outcome %s (reason %q), want %s", got.Outcome, got.Reason, want)
	}
	if want, ok := sc.kv["reason"]; ok {
		if want == "-" {
			want = ""
		}
		if got.Reason != want {
			t.Errorf("reason %q, want %q", got.Reason, want)
		}
	}
	var ev calstore.Event
	var pend []calstore.Pending
	var out []calstore.OutboxItem
	evErr := db.Read(ctx, func(tx calstore.Tx) error {
		var err error
		if pend, err = tx.PendingList(user, true); err != nil {
			return err
		}
		if out, err = tx.Outbox(); err != nil {
			return err
		}
		uid := ""
		if len(rep.Results) > 0 {
			uid = got.UID
		}
		if uid == "" {
			return calstore.ErrNotFound
		}
		ev, err = tx.Event(user, uid)
		return err
	})
	if evErr != nil && !errors.Is(evErr, calstore.ErrNotFound) {
		t.Fatal(evErr)
	}
	if want, ok := sc.kv["pending"]; ok {
		var kinds []string
		for _, p := range pend {
			kinds = append(kinds, p.Kind)
		}
		if g := joinOrNone(kinds); g != want {
			t.Errorf("pending %s, want %s", g, want)
		}
	}
	if want, ok := sc.kv["outbox"]; ok {
		var methods []string
		for _, o := range out {
			methods = append(methods, o.Method)
		}
		if g := joinOrNone(methods); g != want {
			t.Errorf("outbox %s, want %s", g, want)
		}
	}
	afterPath := filepath.Join(dir, "after.ics")
	want, err := os.ReadFile(afterPath)
	switch {
	case err == nil:
	case before != nil:
		want = before
	default:
		if ev.Data != nil {
			t.Errorf("no event expected, stored:\n%s", ev.Data)
		}
		return
	}
	if ev.Data == nil {
		t.Fatalf("no event stored, want:\n%s", want)
	}
	gc, err := ics.Decode(ev.Data, ics.Limits{})
	if err != nil {
		t.Fatalf("stored event: %v", err)
	}
	wc, err := ics.Decode(want, ics.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", afterPath, err)
	}
	if d := icstest.Diff(gc, wc, icstest.Options{IgnoreProps: []string{"PRODID", "VERSION", "CALSCALE", "METHOD"}}); d != "" {
		t.Errorf("stored event differs from %s:\n%s\nstored:\n%s", afterPath, d, ev.Data)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func joinOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

func itipUID(t *testing.T, cal *ical.Calendar) string {
	for _, c := range cal.Children {
		if c.Name == ical.CompEvent {
			if p := c.Props.Get(ical.PropUID); p != nil {
				return p.Value
			}
		}
	}
	t.Fatal("before.ics has no VEVENT with UID")
	return ""
}
