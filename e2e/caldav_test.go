//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCalDAVClients runs real CalDAV clients against imipd's [caldav]
// listener: vdirsyncer syncs the calendar to a folder and khal lists the
// invitation; python3-caldav accepts it by changing the user's PARTSTAT
// (the REPLY reaches smtp-sink and the pending item is closed), fails to
// move the meeting (403), and fails to log in with a wrong password.
//
// The harness's imipd is rendered from contrib/imipd.toml, where [caldav]
// is off; this test runs a second imipd of its own (own data directory,
// CalDAV and the milter on free loopback ports, outbox to its own smtp-sink)
// and delivers the invitation through its milter with go-milter's client,
// as Postfix would.
func TestCalDAVClients(t *testing.T) {
	r := newDAVRig(t)
	dir, ctl, run, base, sink := r.dir, r.ctl, r.run, r.base, r.sink

	const bob, alice, pass = "bob@example.test", "alice@remote.test", "app-password-for-bob"
	r.addUser(bob, alice, pass)
	if out := ctl("", "user", "show", "-json", bob); bytes.Contains(out, []byte(pass)) || bytes.Contains(out, []byte("$2a$")) {
		t.Fatalf("user show leaks the password or its hash:\n%s", out)
	}

	uid := fmt.Sprintf("caldav-%d@remote.test", time.Now().UnixNano())
	start := time.Now().UTC().Add(7 * 24 * time.Hour).Truncate(time.Hour)
	day := start.Format("2006-01-02")
	ics := strings.Join([]string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//e2e//EN", "METHOD:REQUEST", "BEGIN:VEVENT",
		"UID:" + uid, "SEQUENCE:0", "DTSTAMP:" + time.Now().UTC().Format("20060102T150405Z"),
		"DTSTART:" + start.Format("20060102T150405Z"), "DTEND:" + start.Add(time.Hour).Format("20060102T150405Z"),
		"SUMMARY:CalDAV e2e meeting", "ORGANIZER;CN=Alice:mailto:" + alice,
		"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + bob, "END:VEVENT", "END:VCALENDAR", ""}, "\r\n")
	eml := fmt.Sprintf("From: Alice <%s>\r\nTo: %s\r\nSubject: Invitation\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n%s",
		alice, bob, time.Now().Format(time.RFC1123Z), "m-"+uid, ics)
	if o := milterDeliver(r.milter, alice, []string{bob}, []byte(eml), 30*time.Second); !o.acked() ||
		!strings.HasPrefix(o.header, "needs-action") || !strings.Contains(o.header, "reason=invitation") {
		t.Fatalf("milter delivery of the invitation: %+v", o)
	}

	// vdirsyncer + khal.
	vconf, vdir := r.vdirsyncer(bob, pass)
	kconf := filepath.Join(dir, "khal.conf")
	os.WriteFile(kconf, []byte(fmt.Sprintf(`[calendars]
[[invitations]]
path = %q
type = calendar

[locale]
timeformat = %%H:%%M
dateformat = %%Y-%%m-%%d
longdateformat = %%Y-%%m-%%d
datetimeformat = %%Y-%%m-%%d %%H:%%M
longdatetimeformat = %%Y-%%m-%%d %%H:%%M
local_timezone = UTC
default_timezone = UTC

[sqlite]
path = %q
`, filepath.Join(vdir, "invitations"), filepath.Join(dir, "khal.db"))), 0o644)
	if out := run("", "khal", "-c", kconf, "list", day, "1d"); !strings.Contains(out, "CalDAV e2e meeting") {
		t.Fatalf("khal list %s does not show the invitation:\n%s", day, out)
	}

	// A stored attendee parameter that tries to end its line (issue 13,
	// attack 10: what an attendee's REPLY once planted) stays one value:
	// vdirsyncer syncs the collection (two such items once made it abort)
	// and khal shows one event without the injected DESCRIPTION and URL.
	hostile := strings.Join([]string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//e2e//EN", "BEGIN:VEVENT",
		"UID:hostile-" + uid, "DTSTAMP:20261125T100000Z",
		"DTSTART:" + start.Add(3*time.Hour).Format("20060102T150405Z"), "DTEND:" + start.Add(4*time.Hour).Format("20060102T150405Z"),
		"SUMMARY:Hostile CN meeting", "ORGANIZER;CN=Alice:mailto:" + alice,
		"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:" + bob,
		`ATTENDEE;CN="Carol^nDESCRIPTION:Room changed. Dial in at https://evil.example/^nURL:https://evil.example/";PARTSTAT=ACCEPTED:mailto:carol@remote.test`,
		`ATTENDEE;CN="Dave^nEND:VEVENT^nBEGIN:VEVENT^nUID:planted@evil.example^nDTSTART:` + start.Format("20060102T150405Z") + `^nSUMMARY:Planted";PARTSTAT=ACCEPTED:mailto:dave@remote.test`,
		`ATTENDEE;CN=Erin ^'the boss^';PARTSTAT=ACCEPTED:mailto:erin@remote.test`,
		"END:VEVENT", "END:VCALENDAR", ""}, "\r\n")
	for i := 0; i < 2; i++ { // two such items, as in the attack
		f := filepath.Join(dir, fmt.Sprintf("hostile-%d.ics", i))
		os.WriteFile(f, []byte(strings.ReplaceAll(hostile, "UID:hostile-", fmt.Sprintf("UID:hostile%d-", i))), 0o644)
		ctl("", "import", bob, f)
	}
	run("", "vdirsyncer", "-c", vconf, "sync")
	out := run("", "khal", "-c", kconf, "list", "--format", "{title}|{description}|{url}", day, "1d")
	if n := strings.Count(out, "Hostile CN meeting||"); n != 2 || strings.Contains(out, "Planted") || strings.Contains(out, "evil.example") {
		t.Errorf("khal shows the hostile items as other than two plain events (%d):\n%s", n, out)
	}

	// python3-caldav: accept, try to move, wrong password.
	script := filepath.Join(dir, "client.py")
	os.WriteFile(script, []byte(pyClient), 0o644)
	out = run("", debianPython, script, base+"/.well-known/caldav", bob, pass, uid)
	for _, want := range []string{"calendar: Invitations", "found: " + uid, "accepted", "move refused: 403", "wrong password refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("python3-caldav: no %q in\n%s", want, out)
		}
	}

	// The REPLY went out through the outbox to smtp-sink.
	deadline := time.Now().Add(30 * time.Second)
	var replies []sunkMessage
	for time.Now().Before(deadline) {
		if replies = sink.messagesFor(t, uid); len(replies) > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(replies) == 0 {
		t.Fatalf("no REPLY at smtp-sink; outbox:\n%s", ctl("", "outbox", "-json"))
	}
	if m := replies[0]; m.calParam["method"] != "REPLY" || !strings.Contains(m.cal, "PARTSTAT=ACCEPTED") || !strings.Contains(strings.ToLower(m.cal), "mailto:"+bob) {
		t.Errorf("REPLY at smtp-sink: method=%s\n%s", m.calParam["method"], m.cal)
	}
	var pending []struct {
		UID string `json:"uid"`
	}
	if err := json.Unmarshal(ctl("", "pending", "-json", bob), &pending); err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		if p.UID == uid {
			t.Errorf("pending item for %s still open after accepting", uid)
		}
	}
	// The moved time did not stick.
	if out := ctl("", "event", "-json", bob, uid); !bytes.Contains(out, []byte(start.Format(time.RFC3339))) {
		t.Errorf("stored event changed time:\n%s", out)
	}
	// And vdirsyncer picks the answer up.
	run("", "vdirsyncer", "-c", vconf, "sync")
	files, _ := filepath.Glob(filepath.Join(vdir, "invitations", "*.ics"))
	found := false
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(uid)) && bytes.Contains(b, []byte("PARTSTAT=ACCEPTED")) {
			found = true
		}
	}
	if !found {
		t.Errorf("vdirsyncer did not sync the accepted event (%d files)", len(files))
	}
}

// debianPython is Debian's interpreter, which sees python3-caldav (a
// python3 first on PATH, e.g. pyenv's, may not).
const debianPython = "/usr/bin/python3"

// pyClient is the python3-caldav script: argv url user password uid.
const pyClient = `import re, sys
import caldav
from caldav.lib import error

url, user, password, uid = sys.argv[1:5]
client = caldav.DAVClient(url=url, username=user, password=password)
principal = client.principal()
cals = principal.calendars()
cal = cals[0]
print("calendar:", cal.get_properties([caldav.elements.dav.DisplayName()]).get("{DAV:}displayname"))
ev = cal.event_by_uid(uid)
print("found:", uid)
data = ev.data
new = re.sub(r"(ATTENDEE[^\r\n]*)PARTSTAT=NEEDS-ACTION([^\r\n]*mailto:" + re.escape(user) + ")", r"\1PARTSTAT=ACCEPTED\2", data, flags=re.I)
assert new != data, data
ev.data = new
ev.save()
print("accepted")

ev = cal.event_by_uid(uid)
moved = re.sub(r"DTSTART:(\d{8})T(\d\d)", lambda m: "DTSTART:%sT%02d" % (m.group(1), (int(m.group(2)) + 1) % 24), ev.data)
ev.data = moved
try:
    ev.save()
    print("move accepted (wrong)")
except (error.PutError, error.AuthorizationError) as e:
    # python-caldav reports a 403 as AuthorizationError ("Forbidden").
    print("move refused:", "403" if "403" in str(e) or "Forbidden" in str(e) else str(e))

try:
    caldav.DAVClient(url=url, username=user, password="wrong-" + password).principal()
    print("wrong password accepted (wrong)")
except error.AuthorizationError as e:
    print("wrong password refused")
`
