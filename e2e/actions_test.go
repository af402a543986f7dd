//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The organizer's pending decisions and automatic answers, end to end:
// real mail through the milter-shape Postfix into the running imipd, the
// user's decisions through imipctl over the admin socket, and what imipd
// sends observed at smtp-sink, its [submission] server for this test.

const (
	actAlice = "alice@example.test"
	actDave  = "dave@remote.test"
)

// startSinkImipd starts smtp-sink and restarts imipd with [submission]
// pointing at it, as TestOutboxSink does; at the end of the test imipd runs
// again on the shared configuration and the sink is stopped.
func startSinkImipd(t *testing.T) *sinkServer {
	t.Helper()
	if E.imipdBin == "" {
		t.Skip("cmd/imipd not built yet")
	}
	if _, err := os.Stat(smtpSink); err != nil {
		t.Skipf("%s missing (Debian's postfix package)", smtpSink)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	sink := &sinkServer{port: ports[0], dir: filepath.Join(E.root, "sink-actions"), log: filepath.Join(E.root, "sink-actions.log")}
	sink.start(t)
	t.Cleanup(sink.stop)
	submitVia(t, inetAddr(sink.port))
	return sink
}

// actDumpOnFailure logs imipd's state for uid when t failed (TestMain dumps
// the daemons' logs as well).
func actDumpOnFailure(t *testing.T, sink *sinkServer, user, uid string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		run := func(args ...string) string {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, E.imipctlBin, append([]string{"-config", E.imipdConf}, args...)...).CombinedOutput()
			if err != nil {
				return fmt.Sprintf("%s(error: %v)", out, err)
			}
			return string(out)
		}
		t.Logf("---- %s failed: state for %s ----", t.Name(), uid)
		t.Logf("imipctl outbox:\n%s", run("outbox"))
		t.Logf("imipctl pending -all %s:\n%s", user, run("pending", "-all", user))
		t.Logf("imipctl event %s %s:\n%s", user, uid, run("event", user, uid))
		t.Logf("imipctl log -n 30 %s:\n%s", user, run("log", "-n", "30", user))
		if b, err := os.ReadFile(sink.log); err == nil {
			t.Logf("sink log:\n%s", b)
		}
		if b, err := os.ReadFile(E.imipdLog()); err == nil {
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("imipd log (tail):\n%s", b)
		}
	})
}

// actOrganize has alice send an invitation over the submission service
// (SMTP AUTH: the milter records her own copy) and waits until her copy is
// stored.
func actOrganize(t *testing.T, prefix string, attendees ...string) (uid string, start time.Time) {
	t.Helper()
	uid = unique(prefix) + "@example.test"
	start = time.Now().UTC().Add(7 * 24 * time.Hour).Truncate(time.Hour)
	inv := request(uid, actAlice, attendees, attendees...)
	inv.start = start
	if err := submitAuth(E.mx, actAlice, attendees, inv.bytes()); err != nil {
		t.Fatalf("submission as alice: %v", err)
	}
	deadline := time.Now().Add(deliveryWait)
	for findEvent(events(t, actAlice), uid) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("alice's own copy of %s not recorded after %v", uid, deliveryWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return uid, start
}

// actInbound delivers msg to rcpt through the milter-shape Postfix and returns
// the imipd header of the delivered copy.
func actInbound(t *testing.T, rcpt string, msg itipMessage) string {
	t.Helper()
	mustSend(t, E.mx, msg.from, []string{rcpt}, msg.bytes())
	return oneHeader(t, waitMail(t, rcpt, msg.mid))
}

type actPendingItem struct {
	ID      uint64   `json:"id"`
	Kind    string   `json:"kind"`
	UID     string   `json:"uid"`
	Reason  string   `json:"reason"`
	Actions []string `json:"actions"`
	Summary string   `json:"summary"`
	Status  string   `json:"status"`
	From    string   `json:"from"`
}

func actPendingFor(t *testing.T, user, uid string, all bool) []actPendingItem {
	t.Helper()
	args := []string{"pending", "-json"}
	if all {
		args = append(args, "-all")
	}
	out := imipctl(t, append(args, user)...)
	var l []actPendingItem
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("imipctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var mine []actPendingItem
	for _, p := range l {
		if p.UID == uid {
			mine = append(mine, p)
		}
	}
	return mine
}

// actOnePending returns the user's only open pending item for uid, which must
// be of kind.
func actOnePending(t *testing.T, user, uid, kind string) actPendingItem {
	t.Helper()
	l := actPendingFor(t, user, uid, false)
	if len(l) != 1 || l[0].Kind != kind {
		t.Fatalf("open pending items of %s for %s: %+v, want one %s", user, uid, l, kind)
	}
	t.Logf("pending: %+v", l[0])
	return l[0]
}

func actOutboxFor(t *testing.T, uid string) []outboxJSON {
	t.Helper()
	var l []outboxJSON
	out := imipctl(t, "outbox", "-json")
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("imipctl outbox -json: %v\n%s", err, out)
	}
	var mine []outboxJSON
	for _, it := range l {
		if it.UID == uid {
			mine = append(mine, it)
		}
	}
	return mine
}

// waitSunk waits until uid has n outbox items, all sent (smtp-sink has then
// written each message completely), and returns the sink's messages for
// uid.
func waitSunk(t *testing.T, sink *sinkServer, uid string, n int) []sunkMessage {
	t.Helper()
	deadline := time.Now().Add(deliveryWait)
	for {
		items := actOutboxFor(t, uid)
		sent := 0
		for _, it := range items {
			if it.Status == "failed" {
				t.Fatalf("outbox item failed: %+v", it)
			}
			if it.Status == "sent" {
				sent++
			}
		}
		if len(items) > n {
			t.Fatalf("outbox for %s: %d items, want %d: %+v", uid, len(items), n, items)
		}
		if len(items) == n && sent == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox for %s after %v: %+v, want %d sent", uid, deliveryWait, items, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ms := sink.messagesFor(t, uid)
	if len(ms) != n {
		t.Fatalf("smtp-sink has %d messages for %s, want %d", len(ms), uid, n)
	}
	for _, m := range ms {
		t.Logf("sink: %s", sinkDescribe(m))
	}
	return ms
}

var sinkAngleAddr = regexp.MustCompile(`<([^>]*)>`)

// sinkRcpts returns the envelope recipients smtp-sink recorded.
func sinkRcpts(m sunkMessage) []string {
	var out []string
	for _, v := range m.header.Values("X-Rcpt-Args") {
		if s := sinkAngleAddr.FindStringSubmatch(v); s != nil {
			out = append(out, strings.ToLower(s[1]))
		}
	}
	slices.Sort(out)
	return out
}

// sinkCalLines returns the calendar part's lines named name
// (parameters included, e.g. "ATTENDEE;PARTSTAT=ACCEPTED:mailto:x").
func sinkCalLines(m sunkMessage, name string) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(m.cal, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(l, name+":") || strings.HasPrefix(l, name+";") {
			out = append(out, l)
		}
	}
	return out
}

func sinkCalValue(m sunkMessage, name string) string {
	l := sinkCalLines(m, name)
	if len(l) == 0 {
		return ""
	}
	_, v, _ := strings.Cut(l[0], ":")
	return v
}

func sinkCalAttendees(m sunkMessage) []string {
	var out []string
	for _, l := range sinkCalLines(m, "ATTENDEE") {
		if i := strings.Index(strings.ToLower(l), "mailto:"); i >= 0 {
			out = append(out, strings.ToLower(l[i+len("mailto:"):]))
		}
	}
	slices.Sort(out)
	return out
}

func sinkDescribe(m sunkMessage) string {
	h := m.header
	return fmt.Sprintf("MAIL %s RCPT %v | From %q To %q Sender %q Auto-Submitted %q X-Auto-Response-Suppress %q | %s; method=%s; charset=%s | METHOD:%s SEQUENCE:%s DTSTART:%s ORGANIZER:%s ATTENDEE:%v",
		h.Get("X-Mail-Args"), sinkRcpts(m), h.Get("From"), h.Get("To"), h.Get("Sender"), h.Get("Auto-Submitted"), h.Get("X-Auto-Response-Suppress"),
		m.calType, m.calParam["method"], m.calParam["charset"],
		sinkCalValue(m, "METHOD"), sinkCalValue(m, "SEQUENCE"), sinkCalValue(m, "DTSTART"), sinkCalValue(m, "ORGANIZER"), sinkCalAttendees(m))
}

// checkSentIMIP checks the RFC 6047 form of a message imipd sent: from alice,
// To its envelope recipients, multipart/alternative with text/plain and
// text/calendar; method=METHOD; charset=UTF-8, and Auto-Submitted only on
// automatic answers.
func checkSentIMIP(t *testing.T, m sunkMessage, method string, auto bool) {
	t.Helper()
	h := m.header
	if !strings.Contains(h.Get("X-Mail-Args"), "<"+actAlice+">") {
		t.Errorf("envelope sender %q, want <%s>", h.Get("X-Mail-Args"), actAlice)
	}
	if !strings.Contains(h.Get("From"), actAlice) {
		t.Errorf("From %q", h.Get("From"))
	}
	for _, r := range sinkRcpts(m) {
		if !strings.Contains(strings.ToLower(h.Get("To")), r) {
			t.Errorf("recipient %s not in To %q", r, h.Get("To"))
		}
	}
	for _, k := range []string{"Date", "Message-Id", "Subject"} {
		if h.Get(k) == "" {
			t.Errorf("no %s header", k)
		}
	}
	if mt, _, _ := h.ContentType(); mt != "multipart/alternative" {
		t.Errorf("Content-Type %q, want multipart/alternative", mt)
	}
	if m.textType != "text/plain" || m.calType != "text/calendar" || m.calParam["method"] != method || !strings.EqualFold(m.calParam["charset"], "utf-8") {
		t.Errorf("parts: %q, %q %v; want text/plain and text/calendar; method=%s; charset=UTF-8", m.textType, m.calType, m.calParam, method)
	}
	if got := sinkCalValue(m, "METHOD"); got != method {
		t.Errorf("METHOD:%s, want %s", got, method)
	}
	if !strings.Contains(strings.ToLower(sinkCalValue(m, "ORGANIZER")), actAlice) {
		t.Errorf("ORGANIZER %q, want alice", sinkCalValue(m, "ORGANIZER"))
	}
	switch as := h.Get("Auto-Submitted"); {
	case auto && as != "auto-replied":
		t.Errorf("automatic answer: Auto-Submitted %q, want auto-replied", as)
	case !auto && h.Has("Auto-Submitted"):
		t.Errorf("the user's decision carries Auto-Submitted: %q", as)
	}
}

func actICSTime(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// actEvent is an event as imipctl events -json shows it (the fields the
// tests read).
type actEvent struct {
	UID       string `json:"uid"`
	Sequence  int    `json:"sequence"`
	Start     string `json:"start"`
	End       string `json:"end"`
	Attendees []struct {
		Address  string `json:"address"`
		Partstat string `json:"partstat"`
	} `json:"attendees"`
}

func actEventOf(t *testing.T, user, uid string) actEvent {
	t.Helper()
	var evs []actEvent
	out := imipctl(t, "events", "-json", user)
	if err := json.Unmarshal(out, &evs); err != nil {
		t.Fatalf("imipctl events -json %s: %v\n%s", user, err, out)
	}
	for _, e := range evs {
		if e.UID == uid {
			return e
		}
	}
	t.Fatalf("imipctl events -json %s: no %s\n%s", user, uid, out)
	return actEvent{}
}

func actCounter(uid, from string, start time.Time) itipMessage {
	return itipMessage{method: "COUNTER", uid: uid, organizer: actAlice, attendees: []attendee{{from, "NEEDS-ACTION"}},
		from: from, to: actAlice, mid: unique("counter") + "@remote.test", start: start}
}

func actRefresh(uid, from string, extra ...string) itipMessage {
	return itipMessage{method: "REFRESH", uid: uid, organizer: actAlice, attendees: []attendee{{from, "NEEDS-ACTION"}},
		from: from, to: actAlice, mid: unique("refresh") + "@remote.test", extra: extra}
}

// TestActionsSink: every organizer action and automatic answer, with what
// imipd sends observed at smtp-sink.
func TestActionsSink(t *testing.T) {
	sink := startSinkImipd(t)
	alice, dave := actAlice, actDave
	bob, carol := "bob@example.test", "carol@example.test"

	// 1. REFRESH from an attendee: the current event goes back to him as
	// REQUEST, automatically (Auto-Submitted: auto-replied).
	t.Run("RefreshAnswered", func(t *testing.T) {
		uid, start := actOrganize(t, "act-refresh", bob, dave)
		actDumpOnFailure(t, sink, alice, uid)
		h := actInbound(t, alice, actRefresh(uid, dave))
		if !strings.HasPrefix(h, "applied") || !strings.Contains(h, "method=REFRESH") || !strings.Contains(h, "reason=refresh-answered") {
			t.Errorf("alice's %s for dave's REFRESH: %q, want applied; reason=refresh-answered", hdr, h)
		}
		ms := waitSunk(t, sink, uid, 1)
		m := ms[0]
		checkSentIMIP(t, m, "REQUEST", true)
		if r := sinkRcpts(m); !slices.Equal(r, []string{dave}) {
			t.Errorf("envelope recipients %v, want [%s]", r, dave)
		}
		if !strings.Contains(m.header.Get("To"), dave) {
			t.Errorf("To %q", m.header.Get("To"))
		}
		if got := m.header.Get("X-Auto-Response-Suppress"); got != "All" {
			t.Errorf("X-Auto-Response-Suppress %q, want All", got)
		}
		// The current event: alice's copy as it is stored.
		if got := sinkCalValue(m, "DTSTART"); got != actICSTime(start) {
			t.Errorf("DTSTART %q, want %s", got, actICSTime(start))
		}
		if got := sinkCalValue(m, "SEQUENCE"); got != "0" {
			t.Errorf("SEQUENCE %q, want 0", got)
		}
		if got := sinkCalAttendees(m); !slices.Equal(got, []string{bob, dave}) {
			t.Errorf("ATTENDEEs %v, want [%s %s]", got, bob, dave)
		}
		if len(actPendingFor(t, alice, uid, false)) != 0 {
			t.Errorf("an attendee's REFRESH left a pending item: %+v", actPendingFor(t, alice, uid, false))
		}
	})

	// 2. COUNTER accepted: the event takes the proposal, SEQUENCE+1, and
	// every attendee but alice gets the update as REQUEST.
	t.Run("CounterAccepted", func(t *testing.T) {
		uid, start := actOrganize(t, "act-counter-ok", bob, carol, dave)
		actDumpOnFailure(t, sink, alice, uid)
		proposed := start.Add(26 * time.Hour)
		h := actInbound(t, alice, actCounter(uid, dave, proposed))
		if !strings.HasPrefix(h, "needs-action") || !strings.Contains(h, "method=COUNTER") || !strings.Contains(h, "reason=counter") {
			t.Errorf("alice's %s for dave's COUNTER: %q, want needs-action; reason=counter", hdr, h)
		}
		p := actOnePending(t, alice, uid, "counter")
		if !slices.Equal(p.Actions, []string{"accept", "decline"}) {
			t.Errorf("counter actions %v", p.Actions)
		}
		if n := len(actOutboxFor(t, uid)); n != 0 {
			t.Fatalf("a COUNTER queued %d messages before alice decided", n)
		}
		out := imipctl(t, "respond", alice, fmt.Sprint(p.ID), "accept")
		t.Logf("imipctl respond accept: %s", bytes.TrimSpace(out))
		if !strings.Contains(string(out), "queued REQUEST") {
			t.Errorf("imipctl respond accept: %s", out)
		}
		ms := waitSunk(t, sink, uid, len(actOutboxFor(t, uid)))
		var covered []string
		for _, m := range ms {
			checkSentIMIP(t, m, "REQUEST", false)
			covered = append(covered, sinkRcpts(m)...)
			if got := sinkCalValue(m, "SEQUENCE"); got != "1" {
				t.Errorf("SEQUENCE %q, want 1", got)
			}
			if got := sinkCalValue(m, "DTSTART"); got != actICSTime(proposed) {
				t.Errorf("DTSTART %q, want the proposed %s", got, actICSTime(proposed))
			}
			if got := sinkCalValue(m, "DTEND"); got != actICSTime(proposed.Add(time.Hour)) {
				t.Errorf("DTEND %q, want the proposed %s", got, actICSTime(proposed.Add(time.Hour)))
			}
			for _, l := range sinkCalLines(m, "ATTENDEE") {
				if strings.Contains(strings.ToLower(l), dave) && !strings.Contains(l, "PARTSTAT=ACCEPTED") {
					t.Errorf("the proposer's ATTENDEE after acceptance: %s", l)
				}
			}
		}
		slices.Sort(covered)
		if !slices.Equal(covered, []string{bob, carol, dave}) {
			t.Errorf("REQUESTs went to %v, want each of [%s %s %s] once (not alice)", covered, bob, carol, dave)
		}
		ev := actEventOf(t, alice, uid)
		if st, err := time.Parse(time.RFC3339, ev.Start); err != nil || !st.Equal(proposed) {
			t.Errorf("alice's copy starts %q, want %s", ev.Start, proposed.Format(time.RFC3339))
		}
		if ev.Sequence != 1 {
			t.Errorf("alice's copy SEQUENCE %d, want 1", ev.Sequence)
		}
		if l := actPendingFor(t, alice, uid, true); len(l) != 1 || l[0].Status != "done" {
			t.Errorf("the counter item after accept: %+v, want done", l)
		}
	})

	// 3. COUNTER declined: DECLINECOUNTER to the proposer only, the event
	// unchanged.
	t.Run("CounterDeclined", func(t *testing.T) {
		uid, start := actOrganize(t, "act-counter-no", bob, dave)
		actDumpOnFailure(t, sink, alice, uid)
		actInbound(t, alice, actCounter(uid, dave, start.Add(3*time.Hour)))
		p := actOnePending(t, alice, uid, "counter")
		out := imipctl(t, "respond", alice, fmt.Sprint(p.ID), "decline")
		t.Logf("imipctl respond decline: %s", bytes.TrimSpace(out))
		if !strings.Contains(string(out), "queued DECLINECOUNTER to "+dave) {
			t.Errorf("imipctl respond decline: %s", out)
		}
		m := waitSunk(t, sink, uid, 1)[0]
		checkSentIMIP(t, m, "DECLINECOUNTER", false)
		if r := sinkRcpts(m); !slices.Equal(r, []string{dave}) {
			t.Errorf("envelope recipients %v, want [%s]", r, dave)
		}
		if got := sinkCalAttendees(m); !slices.Equal(got, []string{dave}) {
			t.Errorf("ATTENDEEs %v, want [%s]", got, dave)
		}
		if got := sinkCalValue(m, "SEQUENCE"); got != "0" {
			t.Errorf("SEQUENCE %q, want 0", got)
		}
		ev := actEventOf(t, alice, uid)
		if st, err := time.Parse(time.RFC3339, ev.Start); err != nil || !st.Equal(start) || ev.Sequence != 0 {
			t.Errorf("alice's copy after decline: start %q sequence %d, want unchanged %s, 0", ev.Start, ev.Sequence, start.Format(time.RFC3339))
		}
	})

	// 4. Party crasher: an uninvited attendee's REPLY waits for alice;
	// "add" sends him the event and the others an update.
	t.Run("PartyCrasherAdded", func(t *testing.T) {
		erin := "erin@remote.test"
		uid, _ := actOrganize(t, "act-crasher", bob, dave)
		actDumpOnFailure(t, sink, alice, uid)
		h := actInbound(t, alice, reply(uid, alice, erin, "ACCEPTED"))
		if !strings.HasPrefix(h, "needs-action") || !strings.Contains(h, "reason=party-crasher") {
			t.Errorf("alice's %s for erin's REPLY: %q, want needs-action; reason=party-crasher", hdr, h)
		}
		p := actOnePending(t, alice, uid, "party-crasher")
		if !slices.Equal(p.Actions, []string{"add", "ignore"}) {
			t.Errorf("party-crasher actions %v", p.Actions)
		}
		out := imipctl(t, "respond", alice, fmt.Sprint(p.ID), "add")
		t.Logf("imipctl respond add: %s", bytes.TrimSpace(out))
		ms := waitSunk(t, sink, uid, 2)
		var toErin, update *sunkMessage
		for i := range ms {
			checkSentIMIP(t, ms[i], "REQUEST", false)
			switch r := sinkRcpts(ms[i]); {
			case slices.Equal(r, []string{erin}):
				toErin = &ms[i]
			case slices.Equal(r, []string{bob, dave}):
				update = &ms[i]
			default:
				t.Errorf("unexpected REQUEST to %v", r)
			}
			if got := sinkCalAttendees(ms[i]); !slices.Equal(got, []string{bob, dave, erin}) {
				t.Errorf("ATTENDEEs %v, want [%s %s %s]", got, bob, dave, erin)
			}
		}
		if toErin == nil || update == nil {
			t.Errorf("want one REQUEST to erin and one update to bob and dave")
		}
		ev := actEventOf(t, alice, uid)
		found := false
		for _, a := range ev.Attendees {
			if a.Address == erin {
				found = true
				t.Logf("alice's copy lists erin with PARTSTAT %s", a.Partstat)
			}
		}
		if !found {
			t.Errorf("alice's copy does not list erin: %+v", ev.Attendees)
		}
	})

	// 5. A pending invitation closes itself when the organizer cancels.
	t.Run("PendingObsolete", func(t *testing.T) {
		org := "org-obsolete@remote.test"
		imipctl(t, "contacts", "add", bob, org)
		uid := unique("act-obsolete") + "@remote.test"
		actDumpOnFailure(t, sink, bob, uid)
		id := invite(t, org, bob, uid)
		actOnePending(t, bob, uid, "invitation")
		c := request(uid, org, []string{bob}, bob)
		c.method, c.mid = "CANCEL", unique("cancel")+"@remote.test"
		h := actInbound(t, bob, c)
		if !strings.HasPrefix(h, "applied") || !strings.Contains(h, "reason=cancelled") {
			t.Errorf("bob's %s for the CANCEL: %q, want applied; reason=cancelled", hdr, h)
		}
		if open := actPendingFor(t, bob, uid, false); len(open) != 0 {
			t.Errorf("open pending items after the CANCEL: %+v", open)
		}
		all := actPendingFor(t, bob, uid, true)
		if len(all) != 1 || all[0].ID != id || all[0].Kind != "invitation" || all[0].Status != "obsolete" {
			t.Errorf("imipctl pending -all -json bob: %+v, want invitation %d obsolete", all, id)
		}
		// An obsolete item cannot be answered any more.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, E.imipctlBin, "-config", E.imipdConf, "respond", bob, fmt.Sprint(id), "accept").CombinedOutput()
		t.Logf("imipctl respond on the obsolete item: %v: %s", err, bytes.TrimSpace(out))
		if err == nil {
			t.Errorf("imipctl respond on an obsolete item succeeded: %s", out)
		}
		if n := len(actOutboxFor(t, uid)); n != 0 {
			t.Errorf("%d outbox items for the obsolete invitation", n)
		}
	})

	// 6. Loop protection: a REFRESH that is itself automatic gets nothing;
	// a plain REFRESH after it (the control) is answered once.
	t.Run("RefreshAutoSubmitted", func(t *testing.T) {
		uid, _ := actOrganize(t, "act-loop", bob, dave)
		actDumpOnFailure(t, sink, alice, uid)
		h := actInbound(t, alice, actRefresh(uid, dave, "Auto-Submitted: auto-generated"))
		if !strings.HasPrefix(h, "ignored") || !strings.Contains(h, "reason=auto-submitted") {
			t.Errorf("alice's %s for an auto-generated REFRESH: %q, want ignored; reason=auto-submitted", hdr, h)
		}
		// Another automatic kind (RFC 3834), with a parameter.
		h = actInbound(t, alice, actRefresh(uid, dave, "Auto-Submitted: Auto-Replied; owner-email=\"dave@remote.test\""))
		if !strings.HasPrefix(h, "ignored") || !strings.Contains(h, "reason=auto-submitted") {
			t.Errorf("alice's %s for an auto-replied REFRESH: %q, want ignored; reason=auto-submitted", hdr, h)
		}
		if l := actOutboxFor(t, uid); len(l) != 0 {
			t.Errorf("an auto-generated REFRESH queued %+v", l)
		}
		var log []struct{ UID, Outcome, Reason, Method string }
		out := imipctl(t, "log", "-json", alice)
		if err := json.Unmarshal(out, &log); err != nil {
			t.Fatalf("imipctl log -json: %v\n%s", err, out)
		}
		ok := false
		for _, l := range log {
			if l.UID == uid && l.Method == "REFRESH" && l.Outcome == "ignored" && l.Reason == "auto-submitted" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("imipctl log -json alice: no ignored/auto-submitted REFRESH entry for %s", uid)
		}
		re := regexp.MustCompile(`(?m)^.*uid=` + regexp.QuoteMeta(uid) + ` .*outcome=ignored reason=auto-submitted.*$`)
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(E.imipdLog())
			if l := re.Find(b); l != nil {
				t.Logf("imipd log: %s", l)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("imipd log: no line matching %s", re)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Controls: the same REFRESH with "Auto-Submitted: no" (RFC 3834:
		// not automatic) and without the field is answered; the sink then
		// holds exactly those two answers for this event.
		for _, extra := range [][]string{{"Auto-Submitted: no"}, nil} {
			h = actInbound(t, alice, actRefresh(uid, dave, extra...))
			if !strings.Contains(h, "reason=refresh-answered") {
				t.Errorf("alice's %s for the control REFRESH %q: %q", hdr, extra, h)
			}
		}
		for _, m := range waitSunk(t, sink, uid, 2) {
			checkSentIMIP(t, m, "REQUEST", true)
			if r := sinkRcpts(m); !slices.Equal(r, []string{dave}) {
				t.Errorf("envelope recipients %v, want [%s]", r, dave)
			}
		}
	})
}
