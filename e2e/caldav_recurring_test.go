//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCalDAVRecurring (issue 14, item 1): python3-caldav accepts and then
// declines a recurring invitation (an RRULE of three parts, an override,
// an EXDATE, a VTIMEZONE) through its own iCalendar library, which writes
// the event back in its own words; imipd takes each answer and its REPLY
// reaches smtp-sink. Then it accepts one occurrence alone by adding an
// override (as Thunderbird does): that override is stored and its REPLY
// carries only it. vdirsyncer then uploads the same event rewritten (RRULE
// parts re-ordered, EXDATE in UTC): accepted, nothing stored or sent.
func TestCalDAVRecurring(t *testing.T) {
	r := newDAVRig(t)
	const bob, alice, pass = "bob@example.test", "alice@remote.test", "app-password-for-bob"
	r.addUser(bob, alice, pass)

	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// The next Tuesday at least a week ahead, 14:00 in Berlin.
	t0 := time.Now().In(berlin).AddDate(0, 0, 7)
	t0 = time.Date(t0.Year(), t0.Month(), t0.Day(), 14, 0, 0, 0, berlin)
	for t0.Weekday() != time.Tuesday {
		t0 = t0.AddDate(0, 0, 1)
	}
	local := func(d time.Time) string { return d.Format("20060102T150405") }
	exdate := t0.AddDate(0, 0, 7) // the second Tuesday
	moved := t0.AddDate(0, 0, 9)  // the second Thursday, an hour later
	const rrule = "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=8"
	uid := unique("recurring") + "@remote.test"
	stamp := time.Now().UTC().Format("20060102T150405Z")
	comp := func(extra ...string) []string {
		return append(append([]string{"BEGIN:VEVENT", "UID:" + uid, "SEQUENCE:0", "DTSTAMP:" + stamp}, extra...),
			`SUMMARY:Budget review\, Q1`, "ORGANIZER;CN=Alice:mailto:"+alice,
			"ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:"+bob,
			"ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@remote.test", "END:VEVENT")
	}
	lines := []string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//e2e//EN", "METHOD:REQUEST",
		"BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
		"BEGIN:STANDARD", "DTSTART:19701025T030000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100", "END:STANDARD",
		"BEGIN:DAYLIGHT", "DTSTART:19700329T020000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200", "END:DAYLIGHT",
		"END:VTIMEZONE"}
	lines = append(lines, comp("DTSTART;TZID=Europe/Berlin:"+local(t0), "DTEND;TZID=Europe/Berlin:"+local(t0.Add(time.Hour)),
		rrule, "EXDATE;TZID=Europe/Berlin:"+local(exdate))...)
	lines = append(lines, comp("RECURRENCE-ID;TZID=Europe/Berlin:"+local(moved),
		"DTSTART;TZID=Europe/Berlin:"+local(moved.Add(time.Hour)), "DTEND;TZID=Europe/Berlin:"+local(moved.Add(2*time.Hour)))...)
	ics := strings.Join(append(lines, "END:VCALENDAR", ""), "\r\n")
	eml := fmt.Sprintf("From: Alice <%s>\r\nTo: %s\r\nSubject: Invitation\r\nDate: %s\r\nMessage-ID: <m-%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n%s",
		alice, bob, time.Now().Format(time.RFC1123Z), uid, ics)
	if o := milterDeliver(r.milter, alice, []string{bob}, []byte(eml), 30*time.Second); !o.acked() || !strings.HasPrefix(o.header, "needs-action") {
		t.Fatalf("milter delivery of the invitation: %+v", o)
	}
	vconf, vdir := r.vdirsyncer(bob, pass)
	stored := string(r.ctl("", "export", bob))
	if !strings.Contains(stored, rrule) || !strings.Contains(stored, "EXDATE") || !strings.Contains(stored, "RECURRENCE-ID") {
		t.Fatalf("stored:\n%s", stored)
	}

	script := filepath.Join(r.dir, "answer.py")
	os.WriteFile(script, []byte(pyAnswer), 0o644)
	replies := func(n int) []sunkMessage {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			m := r.sink.messagesFor(t, uid)
			if len(m) >= n {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d REPLYs at smtp-sink, want %d; outbox:\n%s", len(m), n, r.ctl("", "outbox", "-json"))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i, partstat := range []string{"ACCEPTED", "DECLINED"} {
		out := r.run("", debianPython, script, r.base+"/.well-known/caldav", bob, pass, uid, partstat)
		t.Logf("python3-caldav:\n%s", out)
		if !strings.Contains(out, "saved: "+partstat) {
			t.Fatalf("python3-caldav did not save %s:\n%s", partstat, out)
		}
		var got *sunkMessage
		for _, m := range replies(i + 1) {
			if strings.Contains(m.cal, "PARTSTAT="+partstat) {
				got = &m
			}
		}
		if got == nil || got.calParam["method"] != "REPLY" || !strings.Contains(got.cal, "RECURRENCE-ID") ||
			!strings.Contains(strings.ToLower(got.cal), "partstat="+strings.ToLower(partstat)+":mailto:"+bob) {
			t.Fatalf("no REPLY %s for the series and its override at smtp-sink: %+v", partstat, got)
		}
	}
	// One occurrence, the third Tuesday, accepted alone: an override the
	// library adds, a copy of the master without its recurrence.
	third := t0.AddDate(0, 0, 14)
	out := r.run("", debianPython, script, r.base+"/.well-known/caldav", bob, pass, uid, "ACCEPTED", third.UTC().Format("20060102T150405Z"))
	if !strings.Contains(out, "saved: ACCEPTED") {
		t.Fatalf("python3-caldav did not save the occurrence:\n%s", out)
	}
	one := false
	for _, m := range replies(3) {
		one = one || strings.Count(m.cal, "BEGIN:VEVENT") == 1 && strings.Contains(m.cal, "RECURRENCE-ID;TZID=Europe/Berlin:"+local(third)) &&
			strings.Contains(m.cal, "PARTSTAT=ACCEPTED")
	}
	if !one {
		t.Fatalf("no REPLY for the third Tuesday alone at smtp-sink")
	}
	after := string(r.ctl("", "export", bob))
	if !strings.Contains(after, "RECURRENCE-ID;TZID=Europe/Berlin:"+local(third)) || strings.Count(after, "PARTSTAT=ACCEPTED:mailto:"+bob) != 1 {
		t.Errorf("stored after accepting the third Tuesday:\n%s", after)
	}
	if !strings.Contains(after, rrule) || !strings.Contains(after, "EXDATE;TZID=Europe/Berlin:"+local(exdate)) ||
		strings.Count(after, "PARTSTAT=DECLINED:mailto:"+bob) != 2 {
		t.Errorf("stored after the answers:\n%s", after)
	}

	// vdirsyncer: the same event, rewritten, goes up unchanged.
	r.run("", "vdirsyncer", "-c", vconf, "sync")
	files, _ := filepath.Glob(filepath.Join(vdir, "invitations", "*.ics"))
	var file string
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), uid) {
			file = f
		}
	}
	if file == "" {
		t.Fatalf("vdirsyncer did not sync %s (%d files)", uid, len(files))
	}
	b, _ := os.ReadFile(file)
	local2 := string(b)
	for _, pair := range [][2]string{{rrule, "RRULE:COUNT=8;FREQ=WEEKLY;BYDAY=TH,TU"},
		{"EXDATE;TZID=Europe/Berlin:" + local(exdate), "EXDATE:" + exdate.UTC().Format("20060102T150405Z")}} {
		if !strings.Contains(local2, pair[0]) {
			t.Fatalf("%q not in vdirsyncer's copy:\n%s", pair[0], local2)
		}
		local2 = strings.Replace(local2, pair[0], pair[1], 1)
	}
	os.WriteFile(file, []byte(local2), 0o644)
	queued := strings.Count(string(r.ctl("", "outbox", "-json")), uid)
	if out := r.run("", "vdirsyncer", "-c", vconf, "sync"); !strings.Contains(out, "imipd_remote") {
		t.Errorf("vdirsyncer uploaded nothing:\n%s", out)
	}
	if now := string(r.ctl("", "export", bob)); now != after {
		t.Errorf("vdirsyncer's round trip changed the stored event:\nbefore:\n%s\nafter:\n%s", after, now)
	}
	// What a write sends is queued in the write's transaction.
	if n := strings.Count(string(r.ctl("", "outbox", "-json")), uid); n != queued {
		t.Errorf("vdirsyncer's round trip queued %d messages", n-queued)
	}
}

// pyAnswer answers with python3-caldav's own call, which sets the PARTSTAT
// through the icalendar library and writes the whole event back: argv url
// user password uid partstat [occurrence]. With an occurrence (UTC) it adds
// an override for it as Thunderbird does, with the icalendar library.
const pyAnswer = `import copy, datetime, sys
import caldav, icalendar

url, user, password, uid, partstat = sys.argv[1:6]
client = caldav.DAVClient(url=url, username=user, password=password)
cal = client.principal().calendars()[0]
ev = cal.event_by_uid(uid)
rrule = lambda data: [l for l in data.splitlines() if l.upper().startswith("RRULE")]
print("rrule read:", rrule(ev.data))
if len(sys.argv) > 6:
    when = datetime.datetime.strptime(sys.argv[6], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    obj = ev.icalendar_instance
    master = [c for c in obj.walk("VEVENT") if "RECURRENCE-ID" not in c][0]
    start = master.decoded("DTSTART")
    local = when.astimezone(start.tzinfo)
    ov = icalendar.Event()
    for k, v in master.items():
        if k not in ("RRULE", "EXDATE", "RDATE", "DTSTART", "DTEND", "ATTENDEE"):
            ov.add(k, v)
    ov.add("RECURRENCE-ID", local)
    ov.add("DTSTART", local)
    ov.add("DTEND", local + (master.decoded("DTEND") - start))
    for a in master.get("ATTENDEE"):
        a = copy.deepcopy(a)
        if str(a).lower() == "mailto:" + user:
            a.params["PARTSTAT"] = partstat
            a.params.pop("RSVP", None)
        ov.add("ATTENDEE", a)
    obj.add_component(ov)
    ev.data = obj.to_ical()
else:
    ev.change_attendee_status(attendee="mailto:" + user, PARTSTAT=partstat)
ev.save()
print("rrule written:", rrule(ev.data))
print("saved:", partstat)
`
