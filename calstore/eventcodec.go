package calstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The stored form of an Event is the JSON encoding/json gives it. A delivery
// reads and writes one event inside its transaction, and with group commit
// that work is serial: encoding/json spends most of it on the reply stamps
// (a map of times, by reflection, keys sorted) and on scanning the
// base64-encoded iCalendar text twice. encodeEvent and decodeEvent do the
// same faster: encodeEvent writes the very bytes json.Marshal writes, and
// decodeEvent reads exactly the form encodeEvent writes, handing anything
// else (escapes, other field order, unknown fields, whitespace) to
// json.Unmarshal. FuzzEventCodec checks both against encoding/json.

// errEventSlowPath is decodeEvent's signal to fall back to encoding/json.
var errEventSlowPath = errors.New("event: not in the compact form")

// encodeEvent returns json.Marshal(ev).
func encodeEvent(ev Event) ([]byte, error) {
	b := make([]byte, 0, 64+base64.StdEncoding.EncodedLen(len(ev.Data))+56*len(ev.ReplyStamps))
	b = append(b, `{"uid":`...)
	b = appendJSONString(b, ev.UID)
	b = append(b, `,"data":`...)
	if ev.Data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, ev.Data)
		b = append(b, '"')
	}
	var err error
	if len(ev.ReplyStamps) > 0 {
		b = append(b, `,"reply_stamps":{`...)
		for i, k := range slices.Sorted(maps.Keys(ev.ReplyStamps)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			if b, err = appendJSONTime(b, ev.ReplyStamps[k]); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"updated":`...)
	if b, err = appendJSONTime(b, ev.Updated); err != nil {
		return nil, err
	}
	if ev.Change != 0 {
		b = append(b, `,"change":`...)
		b = strconv.AppendUint(b, ev.Change, 10)
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as encoding/json writes it: as is when every
// byte is printable ASCII that needs no escape (encoding/json escapes <, >
// and & too), else by encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds; an error for a year outside 0-9999).
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append(b, '"'), nil
}

// decodeEvent decodes a stored event: the compact form encodeEvent writes
// directly, anything else with encoding/json.
func decodeEvent(buf []byte, ev *Event) error {
	if err := decodeEventFast(buf, ev); err == nil {
		return nil
	}
	*ev = Event{}
	return decode(buf, ev)
}

// decodeEventFast reads {"uid":S,"data":B64,"reply_stamps":{S:T,...},
// "updated":T,"change":N} with optional reply_stamps and change, no
// whitespace, strings without escapes or control characters and valid
// UTF-8, each field at most once. Anything else is errEventSlowPath.
func decodeEventFast(buf []byte, ev *Event) error {
	d := fastDec{b: buf}
	if !d.lit("{") {
		return errEventSlowPath
	}
	var e Event
	seen := 0
	for first := true; ; first = false {
		if d.lit("}") && !first {
			break
		}
		if !first && !d.lit(",") {
			return errEventSlowPath
		}
		key, ok := d.str()
		if !ok || !d.lit(":") {
			return errEventSlowPath
		}
		var bit int
		switch string(key) {
		case "uid":
			bit = 1
			s, ok := d.str()
			if !ok {
				return errEventSlowPath
			}
			e.UID = string(s)
		case "data":
			bit = 2
			// Not d.str: base64 has no byte str rejects, and the decoder
			// refuses any other (an escape, a control character, non-ASCII).
			s, ok := d.raw()
			if !ok {
				return errEventSlowPath
			}
			e.Data = make([]byte, base64.StdEncoding.DecodedLen(len(s)))
			n, err := base64.StdEncoding.Decode(e.Data, s)
			if err != nil {
				return errEventSlowPath
			}
			e.Data = e.Data[:n]
		case "reply_stamps":
			bit = 4
			if !d.lit("{") {
				return errEventSlowPath
			}
			e.ReplyStamps = map[string]time.Time{}
			for i := 0; !d.lit("}"); i++ {
				if i > 0 && !d.lit(",") {
					return errEventSlowPath
				}
				k, ok := d.str()
				if !ok || !d.lit(":") {
					return errEventSlowPath
				}
				if _, dup := e.ReplyStamps[string(k)]; dup {
					return errEventSlowPath
				}
				t, ok := d.time()
				if !ok {
					return errEventSlowPath
				}
				e.ReplyStamps[string(k)] = t
			}
		case "updated":
			bit = 8
			t, ok := d.time()
			if !ok {
				return errEventSlowPath
			}
			e.Updated = t
		case "change":
			bit = 16
			n, ok := d.uint()
			if !ok {
				return errEventSlowPath
			}
			e.Change = n
		default:
			return errEventSlowPath
		}
		if seen&bit != 0 {
			return errEventSlowPath
		}
		seen |= bit
	}
	if d.i != len(buf) {
		return errEventSlowPath
	}
	*ev = e
	return nil
}

// fastDec is decodeEventFast's cursor.
type fastDec struct {
	b []byte
	i int
}

func (d *fastDec) lit(s string) bool {
	if bytes.HasPrefix(d.b[d.i:], []byte(s)) {
		d.i += len(s)
		return true
	}
	return false
}

// str reads a string without escapes or control characters, valid UTF-8;
// the slice aliases the input.
func (d *fastDec) str() ([]byte, bool) {
	start := d.i
	s, ok := d.raw()
	if !ok || bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		d.i = start
		return nil, false
	}
	for _, c := range s {
		if c < 0x20 {
			d.i = start
			return nil, false
		}
	}
	return s, true
}

// raw reads a string up to the next quote, unchecked; the slice aliases
// the input.
func (d *fastDec) raw() ([]byte, bool) {
	if !d.lit(`"`) {
		return nil, false
	}
	rest := d.b[d.i:]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	d.i += j + 1
	return rest[:j], true
}

// time reads a string as time.Time.UnmarshalJSON does.
func (d *fastDec) time() (time.Time, bool) {
	s, ok := d.raw()
	if !ok {
		return time.Time{}, false
	}
	if t, ok := utcSeconds(s); ok {
		return t, true
	}
	var t time.Time
	if err := t.UnmarshalText(s); err != nil {
		return time.Time{}, false
	}
	return t, true
}

// utcSeconds parses the form nearly every stored time has,
// "YYYY-MM-DDTHH:MM:SSZ", as time.Time.UnmarshalText does (a UTC time); ok
// is false for any other form, which UnmarshalText then reads.
func utcSeconds(s []byte) (time.Time, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

// daysIn is the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int) int {
	if month == 2 {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - (month-1)%7%2
}

// uint reads a non-negative integer without sign, fraction or exponent.
func (d *fastDec) uint() (uint64, bool) {
	j := d.i
	for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
		j++
	}
	if j == d.i || (d.b[d.i] == '0' && j-d.i > 1) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.b[d.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	d.i = j
	return n, true
}
