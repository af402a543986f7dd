package caldav_test

import (
	"strings"
	"testing"

	"imipd/caldav"
	"imipd/filter"
)

// An invitation to Bob's subaddress (bob+team@, docs/rules.md "Users and
// addresses") is Bob's to answer from his calendar app as from imipctl:
// his PARTSTAT on the subaddressed ATTENDEE is an answer, and deleting the
// event declines it.
func TestCalDAVAnswerSubaddress(t *testing.T) {
	e := newDAVEnv(t, caldav.Options{})
	inv := strings.ReplaceAll(strings.Replace(davInvite, "mailto:bob@example.test", "mailto:bob+team@example.test", 1), "%s", "%[1]s")
	inv = strings.Replace(inv, "UID:%[1]s", "UID:sub-1@remote.test", 1)
	inv = strings.Replace(inv, "DTSTART:%[1]s", "DTSTART:20261202T090000Z", 1)
	inv = strings.Replace(inv, "DTEND:%[1]s", "DTEND:20261202T100000Z", 1)
	inv = strings.Replace(inv, "SUMMARY:%[1]s", "SUMMARY:Team", 1)
	r := process(t, e.proc, mail("Alice <alice@remote.test>", "bob+team@example.test", "sub-1@remote.test", "REQUEST", inv),
		filter.Delivery{MailFrom: "alice@remote.test", Rcpts: []string{"bob+team@example.test"}})
	if r.Outcome != "needs-action" || r.User != davUser {
		t.Fatalf("invitation: %s %s for %s", r.Outcome, r.Reason, r.User)
	}
	path := calPath + "sub-1@remote.test.ics"
	data, etag := e.fetch(t, path)
	accepted := strings.Replace(data, "PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob+team", "PARTSTAT=ACCEPTED:mailto:bob+team", 1)
	if accepted == data {
		t.Fatalf("test data: PARTSTAT not found in\n%s", data)
	}
	resp, body := e.do(t, "PUT", path, davUser, davPass, accepted, map[string]string{"Content-Type": "text/calendar", "If-Match": etag})
	if resp.StatusCode != 204 {
		t.Fatalf("accept: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(e.stored(t, "sub-1@remote.test"), "PARTSTAT=ACCEPTED:mailto:bob+team@example.test") {
		t.Errorf("stored after accept:\n%s", e.stored(t, "sub-1@remote.test"))
	}
	if resp, body := e.do(t, "DELETE", path, davUser, davPass, "", nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(e.stored(t, "sub-1@remote.test"), "PARTSTAT=DECLINED:mailto:bob+team@example.test") {
		t.Errorf("stored after delete:\n%s", e.stored(t, "sub-1@remote.test"))
	}
	if n := len(e.outbox(t)); n != 2 {
		t.Errorf("%d REPLYs in the outbox, want 2", n)
	}
}
