package itip_test

import (
	"bytes"
	"testing"
	"time"

	"imipd/itip"
	"imipd/itip/ics"
)

// Apply never changes its input: filter caches decoded stored calendars,
// and REPLY copies on write, sharing what it does not change with the
// stored copy. Each case applies (the master's attendee, and an instance
// that gets a new override) and the stored copy must marshal as before.
func TestApplyLeavesStoredAlone(t *testing.T) {
	for _, c := range benchReplies {
		t.Run(c.name, func(t *testing.T) {
			st, err := ics.Decode([]byte(c.stored), ics.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			before := ics.Marshal(st)
			mc, err := ics.Decode([]byte(c.msg), ics.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := itip.ParseMessage(mc)
			if err != nil {
				t.Fatal(err)
			}
			r := itip.Apply(itip.Input{Msg: m, Stored: st, User: itip.User{Address: "bar@example.org", Policy: itip.Always},
				From: "foo@example.org", Now: time.Date(2014, 8, 2, 0, 0, 0, 0, time.UTC)})
			if r.Outcome != itip.Applied || r.Cal == nil {
				t.Fatalf("%s/%s, want applied", r.Outcome, r.Reason)
			}
			if !bytes.Contains(ics.Marshal(r.Cal), []byte("PARTSTAT=ACCEPTED")) {
				t.Errorf("result lacks the answer:\n%s", ics.Marshal(r.Cal))
			}
			if after := ics.Marshal(st); !bytes.Equal(after, before) {
				t.Errorf("stored copy changed:\n%s\nnow:\n%s", before, after)
			}
		})
	}
}
