package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"imipd/filter"
	"imipd/filter/admin"
)

// TestCorpusChains feeds the sequences of real mail in the corpus (the same
// UID over several messages, from Exchange, Outlook web, Roundcube and
// others, in the order the files are numbered, which is not always the order
// they were sent) through `imipctl process` and checks the end state RFC 5546
// prescribes.
func TestCorpusChains(t *testing.T) {
	dir := filepath.Join(corpusDir, "calmailproc")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("no corpus: ", err)
	}
	type inst struct{ rid, start, status string }
	type step struct {
		file     string
		outgoing bool
		outcome  string
	}
	cases := []struct {
		name  string
		user  string
		steps []step
		uid   string
		check func(t *testing.T, ev admin.EventView)
	}{
		{
			name: "exchange invitation then cancellation", user: "brechtel@med.uni-frankfurt.de",
			steps: []step{{"test-01-1.eml", false, "needs-action"}, {"test-01-2.eml", false, "applied"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, ev.Status == "CANCELLED" && ev.Sequence == 1, "cancelled at SEQUENCE 1: %+v", ev.Fields)
			},
		},
		{
			name: "exchange reschedule", user: "brechtel@med.uni-frankfurt.de",
			steps: []step{{"test-02-1.eml", false, "needs-action"}, {"test-02-2.eml", false, "applied"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, ev.Sequence == 1 && ev.Start == "2025-03-12T16:00:00+01:00", "moved to 12 Mar 16:00: %+v", ev.Fields)
			},
		},
		{
			name: "series, one instance cancelled, another moved (sent in the other order)", user: "brechtel@med.uni-frankfurt.de",
			steps: []step{{"test-03-1.eml", false, "needs-action"}, {"test-03-2.eml", false, "applied"}, {"test-03-3.eml", false, "applied"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, ev.RRule != "" && ev.Sequence == 0, "series kept: %+v", ev.Fields)
				got := map[string]inst{}
				for _, in := range ev.Instances {
					got[in.RecurrenceID[:10]] = inst{in.RecurrenceID, in.Start, in.Status}
				}
				want(t, got["2025-03-27"].status == "CANCELLED", "27 Mar cancelled: %+v", got)
				want(t, got["2025-03-20"].start == "2025-03-20T11:00:00+01:00" && got["2025-03-20"].status != "CANCELLED", "20 Mar moved to 11:00: %+v", got)
			},
		},
		{
			name: "five updates delivered out of order: the highest SEQUENCE wins", user: "brechtel@med.uni-frankfurt.de",
			steps: []step{{"test-07-1.eml", false, "needs-action"}, {"test-07-2.eml", false, "applied"}, {"test-07-3.eml", false, "applied"},
				{"test-07-4.eml", false, "outdated"}, {"test-07-5.eml", false, "outdated"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, ev.Sequence == 4 && ev.Start == "2025-03-21T16:00:00+01:00", "SEQUENCE 4 on 21 Mar 16:00: %+v", ev.Fields)
			},
		},
		{
			name: "cancellation delivered before the invitation", user: "markus.brechtel@uk-koeln.de",
			steps: []step{{"test-11-1.eml", false, "applied"}, {"test-11-2.eml", false, "outdated"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, ev.Status == "CANCELLED", "stays cancelled: %+v", ev.Fields)
			},
		},
		{
			name: "organizer sends (submission), attendee accepts", user: "markus.brechtel@thengo.net",
			steps: []step{{"test-05-1.eml", true, "applied"}, {"test-05-2.eml", false, "applied"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, partstat(ev.Attendees, "markus.brechtel@uk-koeln.de") == "ACCEPTED", "attendee accepted: %+v", ev.Attendees)
			},
		},
		{
			name: "organizer sends, attendee declines", user: "markus.brechtel@thengo.net",
			steps: []step{{"test-06-1.eml", true, "applied"}, {"test-06-2.eml", false, "applied"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, partstat(ev.Attendees, "markus.brechtel@uk-koeln.de") == "DECLINED", "attendee declined: %+v", ev.Attendees)
			},
		},
		{
			name: "exchange series with moved and cancelled instances, instance first", user: "brechtel@med.uni-frankfurt.de",
			steps: []step{{"test-17-0.eml", false, "needs-action"}, {"test-17-1.eml", false, "needs-action"}, {"test-17-2.eml", false, "outdated"},
				{"test-17-3.eml", false, "applied"}, {"test-17-4.eml", false, "applied"}, {"test-17-5.eml", false, "applied"},
				{"test-17-6.eml", false, "applied"}, {"test-17-7.eml", false, "applied"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, ev.Sequence == 5 && ev.RRule != "", "series at SEQUENCE 5: %+v", ev.Fields)
				got := map[string]string{}
				for _, in := range ev.Instances {
					got[in.RecurrenceID[:10]] = in.Start
				}
				want(t, got["2025-05-16"] == "2025-05-15T14:00:00+02:00", "16 May moved to 15 May 14:00: %v", got)
				want(t, got["2025-05-09"] == "2025-05-07T15:00:00+02:00", "9 May moved to 7 May 15:00: %v", got)
				want(t, len(got) == 2, "the cancelled instances are EXDATEs of the SEQUENCE 5 master, not overrides: %v", got)
			},
		},
		{
			name: "instance before its series", user: "attendee@example.com",
			steps: []step{{"test-18-0.eml", false, "needs-action"}, {"test-18-1.eml", false, "needs-action"}},
			check: func(t *testing.T, ev admin.EventView) {
				want(t, ev.RRule != "" && len(ev.Instances) == 1 && ev.Instances[0].Sequence == 2, "series with the earlier-arrived instance: %+v", ev)
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			cfg := filepath.Join(data, "imipd.toml")
			os.WriteFile(cfg, []byte("data_dir = \""+data+"\"\ndefault_policy = \"always\"\ntimeframe = \"5200W\"\n"), 0o600)
			var out bytes.Buffer
			uid := ""
			for _, s := range c.steps {
				out.Reset()
				args := []string{"-config", cfg, "process", "-json", "-user", c.user}
				if s.outgoing {
					args = append(args, "-outgoing")
				}
				if err := run(context.Background(), append(args, filepath.Join(dir, s.file)), nil, &out); err != nil {
					t.Fatalf("%s: %v", s.file, err)
				}
				var res struct {
					Results []filter.Result `json:"results"`
				}
				if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.Results) != 1 {
					t.Fatalf("%s: %v %s", s.file, err, out.String())
				}
				r := res.Results[0]
				if string(r.Outcome) != s.outcome {
					t.Errorf("%s: %s (%s), want %s", s.file, r.Outcome, r.Reason, s.outcome)
				}
				uid = r.UID
			}
			out.Reset()
			if err := run(context.Background(), []string{"-config", cfg, "event", "-json", c.user, uid}, nil, &out); err != nil {
				t.Fatal(err)
			}
			var ev admin.EventView
			if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
				t.Fatal(err)
			}
			c.check(t, ev)
		})
	}
}

func want(t *testing.T, ok bool, format string, a ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, a...)
	}
}

func partstat(as []admin.AttendeeView, addr string) string {
	for _, a := range as {
		if a.Address == addr {
			return a.PartStat
		}
	}
	return ""
}
