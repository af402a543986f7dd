package itip_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"imipd/address"
	"imipd/itip"
	"imipd/itip/ics"
)

const fuzzStored = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:1\r\nDTSTAMP:20261101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20261201T100000\r\nDTEND;TZID=Europe/Berlin:20261201T110000\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\nORGANIZER:mailto:org@remote.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.test\r\nATTENDEE:mailto:carol@remote.test\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"

// FuzzApply feeds arbitrary stored objects and messages through the rules:
// no panic, and whatever is stored must encode and decode again.
func FuzzApply(f *testing.F) {
	msgs := []string{
		"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:2\r\nDTSTAMP:20261102T000000Z\r\nDTSTART:20261201T100000Z\r\nORGANIZER:mailto:org@remote.test\r\nATTENDEE:mailto:bob@example.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:1\r\nDTSTAMP:20261102T000000Z\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261208T100000\r\nATTENDEE;PARTSTAT=DECLINED:mailto:carol@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:1\r\nDTSTAMP:20261102T000000Z\r\nRECURRENCE-ID;RANGE=THISANDFUTURE:20261215T090000Z\r\nORGANIZER:mailto:org@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nMETHOD:ADD\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:3\r\nDTSTAMP:20261102T000000Z\r\nDTSTART:20261231T100000Z\r\nORGANIZER:mailto:org@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		"BEGIN:VCALENDAR\r\nMETHOD:COUNTER\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:1\r\nDTSTAMP:20261102T000000Z\r\nDTSTART:20261202T100000Z\r\nATTENDEE:mailto:carol@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
	}
	for i, m := range msgs {
		f.Add(fuzzStored, m, "org@remote.test", uint8(i))
		f.Add("", m, "carol@remote.test", uint8(i+7))
	}
	f.Fuzz(func(t *testing.T, stored, message, from string, flags uint8) {
		mc, err := ics.Decode([]byte(message), ics.Limits{})
		if err != nil {
			return
		}
		m, err := itip.ParseMessage(mc)
		if err != nil {
			return
		}
		in := itip.Input{
			Msg: m,
			User: itip.User{Address: "bob@example.test", Aliases: []string{"org@remote.test"}, Policy: []itip.Policy{itip.Always, itip.Known, itip.Never}[flags%3],
				Delimiter: []string{"+", "", "-+"}[int(flags>>5)%3]},
			From:     address.Normalize(from),
			Now:      time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
			Outgoing: flags&8 != 0,
			Force:    flags&16 != 0,
		}
		if stored != "" {
			if sc, err := ics.Decode([]byte(stored), ics.Limits{}); err == nil {
				in.Stored = sc
			}
		}
		var before []byte
		if in.Stored != nil {
			before = ics.Marshal(in.Stored)
		}
		res := itip.Apply(in)
		if res.Outcome == "" {
			t.Fatal("empty outcome")
		}
		// Apply never changes its input: the stored copy may be shared (a
		// cached decode, copy on write).
		if in.Stored != nil && !bytes.Equal(ics.Marshal(in.Stored), before) {
			t.Fatalf("Apply changed the stored calendar:\n%s\nnow:\n%s", before, ics.Marshal(in.Stored))
		}
		if res.Cal != nil {
			out := ics.Marshal(res.Cal)
			if _, err := ics.Decode(out, ics.Limits{MaxBytes: 64 << 20, MaxComponents: 1 << 20, MaxProperties: 1 << 20, MaxAttendees: 1 << 20, MaxRecurrenceDates: 1 << 20}); err != nil {
				t.Fatalf("stored object does not decode: %v\n%s", err, out)
			}
		}
		// What is stored can be served over CalDAV, where go-webdav writes
		// it with go-ical's encoder (ics.Escaped), when what was stored
		// before could.
		if res.Cal != nil && (in.Stored == nil || ical.NewEncoder(io.Discard).Encode(ics.Escaped(in.Stored)) == nil) {
			if err := ical.NewEncoder(io.Discard).Encode(ics.Escaped(res.Cal)); err != nil {
				t.Fatalf("stored object cannot be served over CalDAV: %v\n%s", err, ics.Marshal(res.Cal))
			}
		}
		for _, s := range res.Send {
			if s.Cal == nil || len(s.To) == 0 {
				t.Fatalf("outgoing %s without calendar or recipient", s.Method)
			}
		}
	})
}
