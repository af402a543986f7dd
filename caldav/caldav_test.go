package caldav_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-webdav"
	gocaldav "github.com/emersion/go-webdav/caldav"

	"imipd/caldav"
	"imipd/calstore"
	"imipd/filter"
	"imipd/internal/filtertest"
)

const (
	davUser = "bob@example.test"
	davPass = "correct horse battery"
)

const davInvite = filtertest.Invite

type davEnv struct {
	proc   *filter.Processor
	db     *calstore.DB
	srv    *httptest.Server
	h      *caldav.Server
	cl     *gocaldav.Client
	kicked atomic.Int32
}

func newDAVEnv(t *testing.T, opt caldav.Options) *davEnv {
	t.Helper()
	p, db := newProc(t)
	e := &davEnv{proc: p, db: db}
	p.OnEnqueue = func() { e.kicked.Add(1) }
	hash, err := caldav.HashPassword(davPass)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Write(context.Background(), func(tx calstore.Tx) error {
		if err := tx.PutUser(calstore.User{Address: davUser, PasswordHash: hash}); err != nil {
			return err
		}
		if err := tx.AddContact(calstore.Contact{User: davUser, Address: "alice@remote.test"}); err != nil {
			return err
		}
		// An event bob organizes.
		return tx.PutEvent(davUser, calstore.Event{UID: "own-1@example.test", Data: []byte(strings.ReplaceAll(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:own-1@example.test
DTSTAMP:20261125T100000Z
DTSTART:20261210T090000Z
DTEND:20261210T100000Z
SUMMARY:Bob's own
ORGANIZER:mailto:bob@example.test
ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:alice@remote.test
END:VEVENT
END:VCALENDAR
`, "\n", "\r\n"))})
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range [][4]string{
		{"planning-1@remote.test", "20261201T090000Z", "20261201T100000Z", "Planning"},
		{"odd/uid 2@remote.test", "20270301T090000Z", "20270301T100000Z", "Later"},
	} {
		r := process(t, p, mail("Alice <alice@remote.test>", davUser, fmt.Sprintf("inv-%d@remote.test", i), "REQUEST",
			fmt.Sprintf(davInvite, ev[0], ev[1], ev[2], ev[3])), filter.Delivery{MailFrom: "alice@remote.test", Rcpts: []string{davUser}})
		if r.Outcome != "needs-action" {
			t.Fatalf("invitation %s: outcome %s %s", ev[0], r.Outcome, r.Reason)
		}
	}
	e.h = newServer(p, opt)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	e.cl, err = gocaldav.NewClient(webdav.HTTPClientWithBasicAuth(e.srv.Client(), davUser, davPass), e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *davEnv) do(t *testing.T, method, path, user, pass string, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const calPath = "/dav/calendars/bob@example.test/invitations/"
const planPath = calPath + "planning-1@remote.test.ics"

func (e *davEnv) pending(t *testing.T) []calstore.Pending {
	t.Helper()
	var l []calstore.Pending
	e.db.Read(context.Background(), func(tx calstore.Tx) error {
		var err error
		l, err = tx.PendingList(davUser, true)
		return err
	})
	return l
}

func (e *davEnv) outbox(t *testing.T) []calstore.OutboxItem {
	t.Helper()
	var l []calstore.OutboxItem
	e.db.Read(context.Background(), func(tx calstore.Tx) error {
		var err error
		l, err = tx.Outbox()
		return err
	})
	return l
}

func (e *davEnv) stored(t *testing.T, uid string) string {
	t.Helper()
	var ev calstore.Event
	if err := e.db.Read(context.Background(), func(tx calstore.Tx) error {
		var err error
		ev, err = tx.Event(davUser, uid)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return string(ev.Data)
}

// fetch returns the event's iCalendar text and ETag.
func (e *davEnv) fetch(t *testing.T, path string) (string, string) {
	t.Helper()
	resp, body := e.do(t, "GET", path, davUser, davPass, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body, resp.Header.Get("ETag")
}

func TestCalDAVDiscoveryAndList(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	ctx := context.Background()

	resp, _ := e.do(t, "GET", "/.well-known/caldav", davUser, davPass, "", nil)
	if resp.Request.URL.Path != "/dav/bob@example.test/" {
		t.Errorf("/.well-known/caldav led to %s", resp.Request.URL.Path)
	}
	princ, err := e.cl.FindCurrentUserPrincipal(ctx)
	if err != nil || princ != "/dav/bob@example.test/" {
		t.Fatalf("principal %q %v", princ, err)
	}
	home, err := e.cl.FindCalendarHomeSet(ctx, princ)
	if err != nil || home != "/dav/calendars/bob@example.test/" {
		t.Fatalf("home set %q %v", home, err)
	}
	cals, err := e.cl.FindCalendars(ctx, home)
	if err != nil || len(cals) != 1 || cals[0].Name != "Invitations" || cals[0].Path != calPath {
		t.Fatalf("calendars %+v %v", cals, err)
	}

	all, err := e.cl.QueryCalendar(ctx, calPath, &gocaldav.CalendarQuery{CompFilter: gocaldav.CompFilter{Name: "VCALENDAR", Comps: []gocaldav.CompFilter{{Name: "VEVENT"}}}})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, co := range all {
		paths[co.Path] = co.ETag
	}
	oddPath := calPath + "~" + "b2RkL3VpZCAyQHJlbW90ZS50ZXN0" + ".ics"
	for _, p := range []string{planPath, calPath + "own-1@example.test.ics", oddPath} {
		if paths[p] == "" {
			t.Errorf("query without range: %s missing (got %v)", p, paths)
		}
	}
	if len(all) != 3 {
		t.Errorf("query without range: %d objects", len(all))
	}

	dec, err := e.cl.QueryCalendar(ctx, calPath, &gocaldav.CalendarQuery{CompFilter: gocaldav.CompFilter{Name: "VCALENDAR", Comps: []gocaldav.CompFilter{{
		Name: "VEVENT", Start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != 1 || dec[0].Path != planPath {
		t.Errorf("query 1 Dec: got %d objects %v", len(dec), dec)
	}

	mg, err := e.cl.MultiGetCalendar(ctx, calPath, &gocaldav.CalendarMultiGet{Paths: []string{planPath, oddPath}})
	if err != nil || len(mg) != 2 {
		t.Fatalf("multiget: %d %v", len(mg), err)
	}
	for _, co := range mg {
		uid, _ := co.Data.Events()[0].Props.Text(ical.PropUID)
		if co.Path == oddPath && uid != "odd/uid 2@remote.test" {
			t.Errorf("multiget %s: UID %q", co.Path, uid)
		}
		if co.Data.Props.Get(ical.PropMethod) != nil {
			t.Errorf("multiget %s: METHOD in a calendar resource", co.Path)
		}
	}

	_, etag := e.fetch(t, planPath)
	if want := `"` + caldav.ETag([]byte(e.stored(t, "planning-1@remote.test"))) + `"`; etag != want {
		t.Errorf("ETag %s, want %s", etag, want)
	}
	if resp, body := e.do(t, "GET", "/dav/calendars/mallory@example.test/invitations/planning-1@remote.test.ics", davUser, davPass, "", nil); resp.StatusCode != 404 {
		t.Errorf("another user's object: %d %s", resp.StatusCode, body)
	}
}

func TestCalDAVCTagAndSync(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	propfind := `<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:prop><cs:getctag/><d:sync-token/><d:displayname/></d:prop></d:propfind>`
	hdr := map[string]string{"Depth": "0", "Content-Type": "application/xml"}
	resp, body := e.do(t, "PROPFIND", calPath, davUser, davPass, propfind, hdr)
	if resp.StatusCode != 207 || !strings.Contains(body, ">3</getctag>") || !strings.Contains(body, "urn:imipd:sync:3<") || !strings.Contains(body, "Invitations") {
		t.Fatalf("PROPFIND ctag: %d %s", resp.StatusCode, body)
	}
	sync := func(token string) (int, string) {
		b := `<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>` + token + `</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>`
		resp, body := e.do(t, "REPORT", calPath, davUser, davPass, b, map[string]string{"Content-Type": "application/xml"})
		return resp.StatusCode, body
	}
	code, body := sync("")
	if code != 207 || strings.Count(body, "<D:response>") != 3 || !strings.Contains(body, "<D:sync-token>urn:imipd:sync:3</D:sync-token>") {
		t.Fatalf("initial sync: %d %s", code, body)
	}
	if code, body := sync("urn:imipd:sync:3"); code != 207 || strings.Count(body, "<D:response>") != 0 {
		t.Fatalf("sync, nothing changed: %d %s", code, body)
	}
	if code, body := sync("urn:imipd:sync:99"); code != 403 || !strings.Contains(body, "valid-sync-token") {
		t.Fatalf("sync, future token: %d %s", code, body)
	}
	if _, err := e.proc.Respond(context.Background(), filter.RespondRequest{User: davUser, UID: "planning-1@remote.test", Action: "accept"}); err != nil {
		t.Fatal(err)
	}
	code, body = sync("urn:imipd:sync:3")
	if code != 207 || strings.Count(body, "<D:response>") != 1 || !strings.Contains(body, "planning-1@remote.test.ics") || !strings.Contains(body, "urn:imipd:sync:4<") {
		t.Fatalf("sync after a change: %d %s", code, body)
	}
}

func TestCalDAVAnswerByPartstat(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	if n := len(e.pending(t)); n != 2 {
		t.Fatalf("%d open pending items before, want 2", n)
	}
	data, etag := e.fetch(t, planPath)

	// Moving someone else's meeting is refused, and nothing changes.
	moved := strings.Replace(data, "DTSTART:20261201T090000Z", "DTSTART:20261201T080000Z", 1)
	resp, body := e.do(t, "PUT", planPath, davUser, davPass, moved, map[string]string{"Content-Type": "text/calendar", "If-Match": etag})
	if resp.StatusCode != 403 || !strings.Contains(body, "DTSTART") || !strings.Contains(body, "PARTSTAT") {
		t.Fatalf("moving the meeting: %d %s", resp.StatusCode, body)
	}
	renamed := strings.Replace(data, "SUMMARY:Planning", "SUMMARY:Mine now", 1)
	if resp, body := e.do(t, "PUT", planPath, davUser, davPass, renamed, map[string]string{"Content-Type": "text/calendar"}); resp.StatusCode != 403 || !strings.Contains(body, "SUMMARY") {
		t.Fatalf("renaming: %d %s", resp.StatusCode, body)
	}
	carol := strings.Replace(data, "PARTSTAT=ACCEPTED:mailto:carol", "PARTSTAT=DECLINED:mailto:carol", 1)
	if resp, body := e.do(t, "PUT", planPath, davUser, davPass, carol, map[string]string{"Content-Type": "text/calendar"}); resp.StatusCode != 403 || !strings.Contains(body, "ATTENDEE") {
		t.Fatalf("changing another attendee: %d %s", resp.StatusCode, body)
	}

	accepted := strings.Replace(data, "PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob", "PARTSTAT=ACCEPTED:mailto:bob", 1)
	accepted = strings.Replace(accepted, "DTSTAMP:20261125T100000Z", "DTSTAMP:20261126T100000Z", 1) // clients restamp
	if accepted == data {
		t.Fatalf("test data: PARTSTAT not found in\n%s", data)
	}
	// A stale ETag: 412, nothing sent.
	if resp, body := e.do(t, "PUT", planPath, davUser, davPass, accepted, map[string]string{"Content-Type": "text/calendar", "If-Match": `"stale"`}); resp.StatusCode != 412 {
		t.Fatalf("stale If-Match: %d %s", resp.StatusCode, body)
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Fatalf("outbox after refused writes: %d items", n)
	}
	resp, body = e.do(t, "PUT", planPath, davUser, davPass, accepted, map[string]string{"Content-Type": "text/calendar", "If-Match": etag})
	if resp.StatusCode != 201 && resp.StatusCode != 204 {
		t.Fatalf("accept: %d %s", resp.StatusCode, body)
	}
	newTag := resp.Header.Get("ETag")
	if newTag == "" || newTag == etag {
		t.Errorf("accept: ETag %q (before %q)", newTag, etag)
	}
	for _, pi := range e.pending(t) {
		if pi.UID == "planning-1@remote.test" {
			t.Errorf("pending item still open after accepting: %+v", pi)
		}
	}
	ob := e.outbox(t)
	if len(ob) != 1 || ob[0].Method != "REPLY" || ob[0].To[0] != "alice@remote.test" || !strings.Contains(string(ob[0].Body), "PARTSTAT=ACCEPTED") {
		t.Fatalf("outbox after accepting: %+v", ob)
	}
	if e.kicked.Load() == 0 {
		t.Error("the sender was not woken")
	}
	if s := e.stored(t, "planning-1@remote.test"); !strings.Contains(s, "PARTSTAT=ACCEPTED:mailto:bob") || !strings.Contains(s, "DTSTART:20261201T090000Z") {
		t.Errorf("stored after accepting:\n%s", s)
	}

	// Changing the answer later (no pending item open): the same decision,
	// a new REPLY. Alarms and TRANSP are kept, nothing sent for them.
	data, etag = e.fetch(t, planPath)
	tent := strings.Replace(data, "PARTSTAT=ACCEPTED:mailto:bob", "PARTSTAT=TENTATIVE:mailto:bob", 1)
	if resp, body := e.do(t, "PUT", planPath, davUser, davPass, tent, map[string]string{"Content-Type": "text/calendar", "If-Match": etag}); resp.StatusCode >= 300 {
		t.Fatalf("tentative: %d %s", resp.StatusCode, body)
	}
	if ob := e.outbox(t); len(ob) != 2 || !strings.Contains(string(ob[1].Body), "PARTSTAT=TENTATIVE") {
		t.Fatalf("outbox after tentative: %d items", len(ob))
	}
	data, _ = e.fetch(t, planPath)
	alarm := strings.Replace(data, "END:VEVENT", "TRANSP:TRANSPARENT\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Planning\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT", 1)
	if resp, body := e.do(t, "PUT", planPath, davUser, davPass, alarm, map[string]string{"Content-Type": "text/calendar"}); resp.StatusCode >= 300 {
		t.Fatalf("alarm: %d %s", resp.StatusCode, body)
	}
	if s := e.stored(t, "planning-1@remote.test"); !strings.Contains(s, "TRIGGER:-PT15M") || !strings.Contains(s, "TRANSP:TRANSPARENT") {
		t.Errorf("stored after alarm:\n%s", s)
	}
	if n := len(e.outbox(t)); n != 2 {
		t.Errorf("an alarm sent something: %d outbox items", n)
	}

	// Deleting declines; the event stays, DECLINED.
	_, etag = e.fetch(t, planPath)
	if resp, body := e.do(t, "DELETE", planPath, davUser, davPass, "", map[string]string{"If-Match": `"stale"`}); resp.StatusCode != 412 {
		t.Fatalf("DELETE with stale If-Match: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "DELETE", planPath, davUser, davPass, "", map[string]string{"If-Match": etag}); resp.StatusCode != 204 {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	if ob := e.outbox(t); len(ob) != 3 || !strings.Contains(string(ob[2].Body), "PARTSTAT=DECLINED") {
		t.Fatalf("outbox after DELETE: %d items", len(ob))
	}
	if s := e.stored(t, "planning-1@remote.test"); !strings.Contains(s, "PARTSTAT=DECLINED:mailto:bob") {
		t.Errorf("stored after DELETE:\n%s", s)
	}
}

func TestCalDAVRefusedWrites(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	own := calPath + "own-1@example.test.ics"
	data, _ := e.fetch(t, own)
	changed := strings.Replace(data, "SUMMARY:Bob's own", "SUMMARY:Renamed", 1)
	if resp, body := e.do(t, "PUT", own, davUser, davPass, changed, map[string]string{"Content-Type": "text/calendar"}); resp.StatusCode != 403 || !strings.Contains(body, "organizer") {
		t.Errorf("organizer PUT: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "DELETE", own, davUser, davPass, "", nil); resp.StatusCode != 403 || !strings.Contains(body, "organizer") {
		t.Errorf("organizer DELETE: %d %s", resp.StatusCode, body)
	}
	newEv := strings.ReplaceAll(data, "own-1@example.test", "new-1@example.test")
	if resp, body := e.do(t, "PUT", calPath+"new-1@example.test.ics", davUser, davPass, newEv, map[string]string{"Content-Type": "text/calendar", "If-None-Match": "*"}); resp.StatusCode != 403 {
		t.Errorf("new event: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "MKCOL", "/dav/calendars/bob@example.test/other/", davUser, davPass, "", nil); resp.StatusCode != 403 {
		t.Errorf("MKCOL: %d %s", resp.StatusCode, body)
	}
	if n := len(e.outbox(t)); n != 0 {
		t.Errorf("refused writes sent %d messages", n)
	}
}

func TestCalDAVAuth(t *testing.T) {
	e := newDAVEnv(t, caldav.WithMaxFailures(caldav.Options{ProxyAuthHeader: "X-Remote-User"}, 10))
	if resp, _ := e.do(t, "PROPFIND", calPath, "", "", "", map[string]string{"Depth": "0"}); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: %d", resp.StatusCode)
	}
	if resp, _ := e.do(t, "GET", planPath, "nobody@example.test", davPass, "", nil); resp.StatusCode != 401 {
		t.Errorf("unknown user: %d", resp.StatusCode)
	}
	for i := 0; i < 9; i++ {
		if resp, _ := e.do(t, "GET", planPath, davUser, "wrong", "", nil); resp.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d", i, resp.StatusCode)
		}
	}
	if resp, _ := e.do(t, "GET", planPath, davUser, davPass, "", nil); resp.StatusCode != 200 {
		t.Errorf("right password after 9 failures: %d", resp.StatusCode)
	}
	e.do(t, "GET", planPath, davUser, "wrong", "", nil)
	resp, body := e.do(t, "GET", planPath, davUser, "wrong again", "", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after 10 failures: %d %s", resp.StatusCode, body)
	}
	// The app that logged in before keeps working (issue 13, attack 6:
	// it used to get 429 too).
	if resp, body := e.do(t, "GET", planPath, davUser, davPass, "", nil); resp.StatusCode != 200 {
		t.Errorf("right password, logged in before, after 10 failures: %d %s", resp.StatusCode, body)
	}
	// Another user from the same peer is not blocked.
	if resp, _ := e.do(t, "GET", planPath, "other@example.test", "x", "", nil); resp.StatusCode != 401 {
		t.Errorf("other user: %d", resp.StatusCode)
	}
	// The reverse proxy's header, from loopback.
	if resp, body := e.do(t, "GET", planPath, "", "", "", map[string]string{"X-Remote-User": davUser}); resp.StatusCode != 200 {
		t.Errorf("proxy header: %d %s", resp.StatusCode, body)
	}
	// From elsewhere, the header is not trusted, and passwords need TLS.
	req := httptest.NewRequest("GET", planPath, nil)
	req.RemoteAddr = "192.0.2.7:4711"
	req.Header.Set("X-Remote-User", davUser)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != 403 || !strings.Contains(rec.Body.String(), "TLS") {
		t.Errorf("proxy header from a remote peer: %d %s", rec.Code, rec.Body.String())
	}
	tlsH := newServer(e.proc, caldav.Options{TLS: true})
	req = httptest.NewRequest("GET", planPath, nil)
	req.RemoteAddr = "192.0.2.7:4711"
	req.SetBasicAuth(davUser, davPass)
	rec = httptest.NewRecorder()
	tlsH.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("basic auth over TLS from a remote peer: %d %s", rec.Code, rec.Body.String())
	}
}

func TestCalDAVFeed(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	token, hash, err := caldav.NewFeedToken()
	if err != nil {
		t.Fatal(err)
	}
	setFeed := func(h string) {
		e.db.Write(context.Background(), func(tx calstore.Tx) error {
			u, err := tx.User(davUser)
			if err != nil {
				return err
			}
			u.FeedHash = h
			return tx.PutUser(u)
		})
	}
	setFeed(hash)
	resp, body := e.do(t, "GET", "/feed/"+token+".ics", "", "", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/calendar") || !strings.Contains(body, "UID:planning-1@remote.test") || !strings.Contains(body, "BEGIN:VCALENDAR") {
		t.Fatalf("feed: %d %s", resp.StatusCode, body)
	}
	var export bytes.Buffer
	if err := e.proc.Export(context.Background(), davUser, &export); err != nil || export.String() != body {
		t.Errorf("feed differs from export (%v)", err)
	}
	if resp, _ := e.do(t, "PUT", "/feed/"+token+".ics", "", "", "x", nil); resp.StatusCode != 405 {
		t.Errorf("PUT on the feed: %d", resp.StatusCode)
	}
	if resp, _ := e.do(t, "GET", "/feed/"+strings.ToUpper(token)+".ics", "", "", "", nil); resp.StatusCode != 404 {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	setFeed("")
	if resp, _ := e.do(t, "GET", "/feed/"+token+".ics", "", "", "", nil); resp.StatusCode != 404 {
		t.Errorf("revoked token: %d", resp.StatusCode)
	}
}

// The feed (and export) leave out a VTIMEZONE observance whose rule no zone
// has, stored before intake refused it: python-icalendar (caldav, khal)
// fails on the whole feed over one such zone (issue 13, attacks 5 and 10,
// found listing a replayed store). The event stays, with its TZID.
func TestCalDAVFeedNeverZone(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	err := e.db.Write(context.Background(), func(tx calstore.Tx) error {
		return tx.PutEvent(davUser, calstore.Event{UID: "tz-never@remote.test", Data: []byte(strings.ReplaceAll(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//t//EN
BEGIN:VTIMEZONE
TZID:Never
BEGIN:STANDARD
DTSTART:19700101T000000
RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:tz-never@remote.test
DTSTAMP:20261125T100000Z
DTSTART;TZID=Never:20261203T130000
SUMMARY:Kept
ORGANIZER:mailto:carol@remote.test
END:VEVENT
END:VCALENDAR
`, "\n", "\r\n"))})
	})
	if err != nil {
		t.Fatal(err)
	}
	var export bytes.Buffer
	if err := e.proc.Export(context.Background(), davUser, &export); err != nil {
		t.Fatal(err)
	}
	if got := export.String(); strings.Contains(got, "BYMONTHDAY=30") || strings.Contains(got, "TZID:Never") ||
		!strings.Contains(got, "UID:tz-never@remote.test") {
		t.Errorf("export:\n%s", got)
	}
}
