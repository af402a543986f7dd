package itip_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip"
	"imipd/itip/ics"
	"imipd/itip/icstest"
)

// sabreDir is where sabre/vobject 4.6's iTIP tests lie as data, beside the
// repository; the test is skipped where they are absent. Expectations come
// from RFC 5546 and docs/rules.md, not from that directory.
const sabreDir = "../../shared/peer-cases/sabre"

// sabreDeviations are the process cases where imipd deliberately disagrees
// with sabre/vobject, each by a rule of RFC 5546 or docs/rules.md ("Bad
// input" for a missing ORGANIZER, "User interaction" for a party crasher).
// The test asserts that imipd does differ there, so a deviation that silently
// disappears is noticed.
var sabreDeviations = map[string]string{
	"BrokerProcessMessageTest_02": "REQUEST without ORGANIZER: RFC 5546 §3.2.2 requires ORGANIZER, imipd rejects (missing-organizer); sabre replaces the object",
	"BrokerProcessMessageTest_03": "CANCEL without ORGANIZER: RFC 5546 §3.2.5 requires ORGANIZER and imipd, as Open-Xchange, requires the sender to be the organizer; imipd rejects (missing-organizer)",
	"BrokerProcessMessageTest_01": "REQUEST without ORGANIZER: RFC 5546 §3.2.2 requires ORGANIZER, imipd rejects (missing-organizer); sabre stores it",
	"BrokerProcessReplyTest_05":   "party crasher: imipd makes it a pending decision for the organizer (as Open-Xchange does); sabre adds the attendee silently",
	"BrokerProcessReplyTest_11":   "party crasher on a new exception: pending decision, not added silently (as Open-Xchange does)",
}

func readMeta(t *testing.T, dir string) map[string]string {
	f, err := os.Open(filepath.Join(dir, "meta.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok {
			m[k] = v
		}
	}
	return m
}

var endEvent = regexp.MustCompile(`(?m)^END:VEVENT\r?$`)

// stamp adds a DTSTAMP to components that lack one. sabre's fixtures omit it
// although RFC 5546 §3.2 requires DTSTAMP in every method and imipd rejects
// objects without it (docs/rules.md "Bad input"; TestSabreMissingDTStamp checks that);
// stamping keeps the rules under test comparable.
func stamp(s string) string {
	if strings.Contains(s, "DTSTAMP") {
		return s
	}
	return endEvent.ReplaceAllString(s, "DTSTAMP:20140801T000000Z\nEND:VEVENT")
}

func decodeFile(t *testing.T, path string, stampIt bool) *ical.Calendar {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if stampIt {
		s = stamp(s)
	}
	cal, err := ics.Decode([]byte(s), ics.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cal
}

func TestSabreProcess(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(sabreDir, "*", "meta.txt"))
	if len(dirs) == 0 {
		t.Skip("no sabre peer cases at " + sabreDir)
	}
	agree, agreeApplied, differ, total := 0, 0, 0, 0
	for _, mp := range dirs {
		dir := filepath.Dir(mp)
		name := filepath.Base(dir)
		meta := readMeta(t, dir)
		if meta["kind"] != "process" {
			continue
		}
		total++
		t.Run(name, func(t *testing.T) {
			stored := decodeFile(t, filepath.Join(dir, "old.ics"), true)
			msgCal := decodeFile(t, filepath.Join(dir, "message.ics"), true)
			var res itip.Result
			msg, err := itip.ParseMessage(msgCal)
			if err != nil {
				res = itip.Result{Outcome: itip.Rejected, Reason: itip.Reason(err.Error())}
			} else {
				res = itip.Apply(itip.Input{
					Msg:    msg,
					Stored: stored,
					User:   itip.User{Address: address.Normalize(meta["recipient"]), Policy: itip.Always},
					From:   address.Normalize(meta["sender"]),
					Now:    time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC),
				})
			}
			mismatch := ""
			switch meta["expect"] {
			case "falsy":
				if res.Cal != nil {
					mismatch = "sabre applies nothing, imipd stored:\n" + string(ics.Marshal(res.Cal))
				}
			case "calendar":
				want := decodeFile(t, filepath.Join(dir, "expected.ics"), false)
				if res.Cal == nil {
					mismatch = "imipd applied nothing: " + string(res.Outcome) + " " + string(res.Reason)
				} else if d := icstest.Diff(res.Cal, want, icstest.Options{
					IgnoreProps: []string{"PRODID", "CALSCALE", "VERSION", "DTSTAMP", "METHOD"},
					// RFC 6638 SCHEDULE-STATUS is CalDAV server bookkeeping that
					// sabre adds on delivery; imipd has no CalDAV scheduling.
					IgnoreParams: []string{"SCHEDULE-STATUS"},
				}); d != "" {
					mismatch = d
				}
			default:
				t.Skipf("expect %q not compared", meta["expect"])
			}
			if why, dev := sabreDeviations[name]; dev {
				if mismatch == "" {
					t.Errorf("documented deviation no longer differs: %s", why)
				}
				differ++
				t.Logf("deviation (%s): %s", why, mismatch)
				return
			}
			if mismatch != "" {
				t.Errorf("outcome %s/%s; %s", res.Outcome, res.Reason, mismatch)
				return
			}
			agree++
			if meta["expect"] == "calendar" {
				agreeApplied++
			}
		})
	}
	t.Logf("sabre process cases: %d, agree %d (%d of them expecting a calendar), documented deviations %d", total, agree, agreeApplied, differ)
}

func TestSabreMissingDTStamp(t *testing.T) {
	cal, err := ics.Decode([]byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:x\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:a@b\r\nORGANIZER:mailto:c@d\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), ics.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = itip.ParseMessage(cal)
	var pe *itip.ParseError
	if !errors.As(err, &pe) || pe.Reason != "missing-dtstamp" {
		t.Fatalf("got %v, want missing-dtstamp", err)
	}
}
