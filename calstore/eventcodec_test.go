package calstore

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// eventCases are events whose encoding must match encoding/json's byte for
// byte and decode back alike: plain, empty, nil and odd values, keys that
// need escapes (the NUL of an instance stamp, HTML characters, non-ASCII,
// invalid UTF-8), zones, nanoseconds, years at the edges.
func eventCases() []Event {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	cet := time.FixedZone("", 3600)
	cases := []Event{
		{},
		{UID: "a@example.test", Data: []byte{}, Updated: t0},
		{UID: "a@example.test", Data: []byte("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"), Updated: t0.In(cet), Change: 7},
		{UID: `odd "uid" <&> \ é`, Data: []byte{0, 1, 2, 255}, Updated: t0.Add(123456789 * time.Nanosecond),
			ReplyStamps: map[string]time.Time{
				"bob@example.test":                     t0,
				"bob@example.test\x0020260301T090000Z": t0.Add(time.Hour).In(cet),
				"<x>&y":                                t0.Add(time.Nanosecond),
				"\xff\xfe":                             t0,
				"ünï@example.test":                     time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
				"late@example.test":                    time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			}},
		{UID: "empty-stamps", ReplyStamps: map[string]time.Time{}, Updated: t0, Change: 1 << 63},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		ev := Event{UID: fmt.Sprintf("uid-%d@example.test", i), Data: make([]byte, r.IntN(3000)), Updated: t0.Add(time.Duration(r.Int64N(1e18))), Change: r.Uint64N(1 << 40)}
		for j := range ev.Data {
			ev.Data[j] = byte(r.IntN(256))
		}
		if r.IntN(4) > 0 {
			ev.ReplyStamps = map[string]time.Time{}
			for k := range r.IntN(120) {
				ev.ReplyStamps[fmt.Sprintf("att%d@remote.test", k)] = t0.Add(time.Duration(r.Int64N(1e15)))
			}
		}
		cases = append(cases, ev)
	}
	return cases
}

// TestEventCodec: encodeEvent writes json.Marshal's bytes; decodeEvent
// reads them (by the fast path) into what json.Unmarshal gives.
func TestEventCodec(t *testing.T) {
	for i, ev := range eventCases() {
		want, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeEvent(ev)
		if err != nil || string(got) != string(want) {
			t.Fatalf("case %d: encodeEvent:\n%s (%v)\nwant json.Marshal:\n%s", i, got, err, want)
		}
		var std, fast Event
		if err := json.Unmarshal(want, &std); err != nil {
			t.Fatal(err)
		}
		if err := decodeEvent(want, &fast); err != nil || !reflect.DeepEqual(fast, std) {
			t.Fatalf("case %d: decodeEvent: %+v (%v)\nwant %+v", i, fast, err, std)
		}
	}
	// A year encoding/json refuses is refused.
	if _, err := encodeEvent(Event{Updated: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("year 10000 encoded")
	}
}

// TestEventCodecSlowPath: what the fast path does not take decodes as
// encoding/json decodes it.
func TestEventCodecSlowPath(t *testing.T) {
	for _, in := range []string{
		`{"uid":"a\u0040b","data":"AAE=","updated":"2026-11-25T10:00:00Z"}`,
		`{ "uid": "a", "data": "AAE=", "updated": "2026-11-25T10:00:00Z" }`,
		`{"updated":"2026-11-25T10:00:00Z","uid":"a","UID":"b"}`,
		`{"uid":"a","data":null,"reply_stamps":null,"updated":"2026-11-25T10:00:00Z","change":0}`,
		`{"uid":"a","reply_stamps":{"x":"2026-11-25T10:00:00Z","x":"2026-11-25T11:00:00Z"},"updated":"2026-11-25T10:00:00Z"}`,
		`{"uid":"a","history":[],"updated":"2026-11-25T10:00:00Z"}`,
		`{"uid":"a","updated":"2026-11-25T10:00:00Z","change":12e1}`,
	} {
		var std, fast Event
		errStd := json.Unmarshal([]byte(in), &std)
		errFast := decodeEvent([]byte(in), &fast)
		if (errStd == nil) != (errFast == nil) || !reflect.DeepEqual(std, fast) {
			t.Errorf("%s:\ndecodeEvent %+v (%v)\njson        %+v (%v)", in, fast, errFast, std, errStd)
		}
	}
}

// FuzzEventCodec: for any stored bytes, decodeEvent agrees with
// json.Unmarshal (error or value), and encodeEvent of the value is
// json.Marshal's.
func FuzzEventCodec(f *testing.F) {
	for _, ev := range eventCases()[:8] {
		b, _ := json.Marshal(ev)
		f.Add(b)
	}
	f.Add([]byte(`{"uid":"a","data":"AAE","updated":"2026-11-25T10:00:00Z"}`))
	f.Add([]byte(`{"uid":"a","change":01,"updated":"2026-11-25T10:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var std, fast Event
		errStd := json.Unmarshal(in, &std)
		errFast := decodeEvent(in, &fast)
		if (errStd == nil) != (errFast == nil) {
			t.Fatalf("json: %v, decodeEvent: %v", errStd, errFast)
		}
		if errStd != nil {
			return
		}
		if !reflect.DeepEqual(std, fast) {
			t.Fatalf("decodeEvent %+v\njson        %+v", fast, std)
		}
		want, errW := json.Marshal(std)
		got, errG := encodeEvent(std)
		if (errW == nil) != (errG == nil) || string(want) != string(got) {
			t.Fatalf("encodeEvent %s (%v)\njson.Marshal %s (%v)", got, errG, want, errW)
		}
	})
}

// meetingEvent is the stored form of a big meeting after its replies: 12 KB
// of iCalendar and a reply stamp per attendee.
func meetingEvent() Event {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ev := Event{UID: "allhands@example.test", Data: make([]byte, 12<<10), Updated: t0, Change: 1234, ReplyStamps: map[string]time.Time{}}
	line := "ATTENDEE;PARTSTAT=ACCEPTED:mailto:a@remote.test\r\n"
	for i := range ev.Data {
		ev.Data[i] = line[i%len(line)]
	}
	for k := range 100 {
		ev.ReplyStamps[fmt.Sprintf("att%d@remote.test", k)] = t0.Add(time.Duration(k) * time.Second)
	}
	return ev
}

func BenchmarkEventCodec(b *testing.B) {
	ev := meetingEvent()
	buf, err := encodeEvent(ev)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeEvent(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got Event
			if err := decodeEvent(buf, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// utcSeconds reads what time.Time.UnmarshalText reads, to the last field of
// the value, or declines.
func TestUTCSeconds(t *testing.T) {
	in := []string{
		"2026-11-25T10:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-29T12:00:00Z",
		"2023-02-29T12:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
		"2026-11-25T24:00:00Z", "2026-11-25T23:60:00Z", "2026-11-25T23:59:60Z", "2026-11-25 10:00:00Z",
		"2026-11-25T10:00:00z", "2026-11-25T10:00:00+00:00", "2026-11-25T10:00:00.5Z", "2x26-11-25T10:00:00Z",
		"2026-1-125T10:00:00Z", "", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		in = append(in, fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", r.IntN(10000), r.IntN(14), r.IntN(33), r.IntN(25), r.IntN(61), r.IntN(61)))
	}
	for _, s := range in {
		got, ok := utcSeconds([]byte(s))
		var want time.Time
		err := want.UnmarshalText([]byte(s))
		if ok && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Errorf("utcSeconds(%q) = %v, UnmarshalText: %v, %v", s, got, want, err)
		}
		if !ok && err == nil && len(s) == 20 && s[19] == 'Z' {
			t.Errorf("utcSeconds(%q) declined a time UnmarshalText reads (%v)", s, want)
		}
	}
}
