package ics

import (
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

func TestPropTime(t *testing.T) {
	cal := mustDecode(t, fixExchange)
	z := NewZones(cal)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		line     string
		want     time.Time
		allDay   bool
		floating bool
		err      error
	}{
		{"DTSTART:20240115T093000Z", time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC), false, false, nil},
		{"DTSTART:20240115T093000", time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC), false, true, nil},
		{"DTSTART;VALUE=DATE:20240115", time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC), true, false, nil},
		{"DTSTART:20240229", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true, false, nil},
		{"DTSTART;TZID=Europe/Berlin;VALUE=DATE:20240115", time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC), true, false, nil},
		{"DTSTART;TZID=Europe/Berlin:20240115T093000", time.Date(2024, 1, 15, 9, 30, 0, 0, berlin), false, false, nil},
		{"DTSTART;TZID=Europe/Berlin:20240715T093000", time.Date(2024, 7, 15, 7, 30, 0, 0, time.UTC), false, false, nil},
		{"DTSTART;TZID=W. Europe Standard Time:20240715T093000", time.Date(2024, 7, 15, 7, 30, 0, 0, time.UTC), false, false, nil},
		{"DTSTART;TZID=Europe/Berlin:20240115T093000Z", time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC), false, false, nil},
		// RFC 5545 3.3.5: a time in the spring gap uses the offset before
		// it; an ambiguous time is the first occurrence.
		{"DTSTART;TZID=Europe/Berlin:20240331T023000", time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC), false, false, nil},
		{"DTSTART;TZID=Europe/Berlin:20241027T023000", time.Date(2024, 10, 27, 0, 30, 0, 0, time.UTC), false, false, nil},
		{"DTSTART;TZID=Europe/Berlin:20241027T033000", time.Date(2024, 10, 27, 2, 30, 0, 0, time.UTC), false, false, nil},
		{"DTSTART;TZID=Nowhere:20240115T093000", time.Time{}, false, false, ErrUnknownTZ},
		{"DTSTART:20240230", time.Time{}, false, false, ErrSyntax},
		{"DTSTART:2024011", time.Time{}, false, false, ErrSyntax},
		{"DTSTART:20240115T246000", time.Time{}, false, false, ErrSyntax},
		{"DTSTART:20240115X093000", time.Time{}, false, false, ErrSyntax},
		{"DTSTART;VALUE=DATE:20240115T093000", time.Time{}, false, false, ErrSyntax},
		{"DTSTART:20240115,20240116", time.Time{}, false, false, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			p := mustDecode(t, "BEGIN:VCALENDAR\r\n"+tt.line+"\r\nEND:VCALENDAR\r\n").Props.Get("DTSTART")
			got, err := z.PropTime(p)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.T.Equal(tt.want) || got.AllDay != tt.allDay || got.Floating != tt.floating {
				t.Fatalf("got %+v (%s), want %s allDay=%v floating=%v", got, got.T.UTC(), tt.want.UTC(), tt.allDay, tt.floating)
			}
		})
	}
	// The event's own times through its VTIMEZONE-named TZID.
	ev := event(t, cal)
	st, err := z.PropTime(ev.Props.Get(ical.PropDateTimeStart))
	if err != nil || !st.T.Equal(time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)) || st.T.Location().String() != "Europe/Berlin" {
		t.Fatalf("DTSTART: %v %v", st, err)
	}
	// CDO zone known only from its VTIMEZONE: winter and summer.
	cdo := mustDecode(t, fixCDO)
	zc, evc := NewZones(cdo), event(t, cdo)
	s, err := zc.PropTime(evc.Props.Get(ical.PropDateTimeStart))
	if err != nil || !s.T.Equal(time.Date(2024, 1, 15, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("CDO DTSTART %v %v", s, err)
	}
	e, err := zc.PropTime(evc.Props.Get(ical.PropDateTimeEnd))
	if err != nil || !e.T.Equal(time.Date(2024, 7, 15, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("CDO DTEND %v %v", e, err)
	}
}

func TestPropTimesMulti(t *testing.T) {
	cal := mustDecode(t, fixExchange)
	z, ev := NewZones(cal), event(t, cal)
	ts, err := z.compTimes(ev, "exdate")
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{
		time.Date(2025, 1, 13, 9, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 20, 9, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 27, 9, 0, 0, 0, time.UTC),
	}
	if len(ts) != len(want) {
		t.Fatalf("got %v", ts)
	}
	for i := range want {
		if !ts[i].T.Equal(want[i]) {
			t.Errorf("%d: got %s want %s", i, ts[i].T.UTC(), want[i])
		}
	}
	tests := []struct {
		line string
		n    int
		err  bool
	}{
		{"RDATE;VALUE=DATE:20240101,20240102,", 2, false},
		{"RDATE;VALUE=PERIOD:20240101T100000Z/20240101T110000Z,20240102T100000Z/PT1H", 2, false},
		{"EXDATE:20240101T100000Z, 20240102T100000Z", 2, false},
		{"EXDATE:20240101T100000Z,bogus", 0, true},
	}
	for _, tt := range tests {
		p := mustDecode(t, "BEGIN:VCALENDAR\r\n"+tt.line+"\r\nEND:VCALENDAR\r\n").Props
		var prop *ical.Prop
		for _, ps := range p {
			prop = &ps[0]
		}
		ts, err := z.PropTimes(prop)
		if (err != nil) != tt.err || len(ts) != tt.n {
			t.Errorf("%s: got %v, %v", tt.line, ts, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want Duration
		str  string
	}{
		{"P1D", Duration{days: 1}, "P1D"},
		{"PT1H30M", Duration{exact: 90 * time.Minute}, "PT1H30M"},
		{"-P1W", Duration{days: 7, negative: true}, "-P1W"},
		{"P1DT2H", Duration{days: 1, exact: 2 * time.Hour}, "P1DT2H"},
		{"+PT15M", Duration{exact: 15 * time.Minute}, "PT15M"},
		{"-PT15M", Duration{exact: 15 * time.Minute, negative: true}, "-PT15M"},
		{"PT0S", Duration{}, "PT0S"},
		{"P2W3D", Duration{days: 17}, "P17D"},
		{"PT1H5S", Duration{exact: time.Hour + 5*time.Second}, "PT1H5S"},
		{"p1dt1h", Duration{days: 1, exact: time.Hour}, "P1DT1H"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v, %v", tt.in, got, err)
			continue
		}
		if got.String() != tt.str {
			t.Errorf("%s: String() = %s", tt.in, got.String())
		}
	}
	for _, bad := range []string{"", "P", "PT", "1D", "P1", "PD", "P1H", "PT1D", "P1DT", "PT1M1H", "P1D1W", "P1DT1HT", "P1234567890D", "PT99999999999999H", "P-1D", "P 1D"} {
		if d, err := ParseDuration(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: got %+v, %v", bad, d, err)
		}
	}
}

func TestDurationAddTo(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// 2024-03-30 12:00 CET + P1D = 2024-03-31 12:00 CEST (23 h later).
	start := time.Date(2024, 3, 30, 12, 0, 0, 0, berlin)
	d, _ := ParseDuration("P1D")
	if got := d.AddTo(start); !got.Equal(time.Date(2024, 3, 31, 12, 0, 0, 0, berlin)) || got.Sub(start) != 23*time.Hour {
		t.Errorf("P1D across DST: %s", got)
	}
	d, _ = ParseDuration("PT24H")
	if got := d.AddTo(start); got.Sub(start) != 24*time.Hour {
		t.Errorf("PT24H: %s", got)
	}
	d, _ = ParseDuration("-P1DT2H")
	if got := d.AddTo(start); !got.Equal(time.Date(2024, 3, 29, 10, 0, 0, 0, berlin)) {
		t.Errorf("-P1DT2H: %s", got)
	}
}
