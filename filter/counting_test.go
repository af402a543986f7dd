package filter_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"imipd/filter"
)

// TestCountingDryRunsAndRepeats (issue 15, item 3): a dry run (imipctl
// check) is neither logged as "processed" nor counted; a message processed
// again (a retried delivery, a second scan) gives its earlier outcome, is
// logged as "already processed" and counted as outcome "repeat", not as
// the outcome it had the first time.
func TestCountingDryRunsAndRepeats(t *testing.T) {
	p, _ := newProc(t)
	p.Cfg.DefaultPolicy = "always"
	var logs bytes.Buffer
	p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	p.Metrics = filter.NewMetrics(prometheus.NewRegistry(), nil)
	raw, err := os.ReadFile("testdata/scenarios/request-new/message.eml")
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(dryRun bool) *filter.Report {
		t.Helper()
		var rep *filter.Report
		var err error
		if dryRun {
			rep, err = p.Check(context.Background(), filter.CheckRequest{Transport: "test", Received: p.Now(),
				User: "bob@example.test", DryRun: true, Message: bytes.NewReader(raw)})
		} else {
			rep, err = p.Process(context.Background(), filter.Delivery{Transport: "test", Received: p.Now(),
				Rcpts: []string{"bob@example.test"}, Message: bytes.NewReader(raw)})
		}
		if err != nil || len(rep.Results) != 1 {
			t.Fatalf("process: %v %+v", err, rep)
		}
		return rep
	}
	outcome := func(o string) float64 { return testutil.ToFloat64(p.Metrics.Outcomes().WithLabelValues("REQUEST", o)) }

	rep := deliver(true)
	if rep.Results[0].Outcome != "needs-action" {
		t.Fatalf("dry run: %+v", rep.Results[0])
	}
	if n := testutil.CollectAndCount(p.Metrics.Messages); n != 0 {
		t.Errorf("dry run counted in imipd_messages_total (%d series)", n)
	}
	if n := testutil.CollectAndCount(p.Metrics.Outcomes()); n != 0 {
		t.Errorf("dry run counted in imipd_outcomes_total (%d series)", n)
	}
	if l := logs.String(); strings.Contains(l, "msg=processed") || !strings.Contains(l, `msg="dry run"`) || !strings.Contains(l, "dry_run=true") {
		t.Errorf("dry run log:\n%s", l)
	}

	logs.Reset()
	if r := deliver(false).Results[0]; r.Outcome != "needs-action" || r.Repeat {
		t.Fatalf("delivery: %+v", r)
	}
	for range 2 {
		if r := deliver(false).Results[0]; r.Outcome != "needs-action" || !r.Repeat {
			t.Fatalf("repeated delivery: %+v, want the earlier outcome marked as a repeat", r)
		}
	}
	if a, r := outcome("needs-action"), outcome(filter.OutcomeRepeat); a != 1 || r != 2 {
		t.Errorf("imipd_outcomes_total: needs-action %v, repeat %v; want 1 and 2", a, r)
	}
	if l := logs.String(); strings.Count(l, "msg=processed") != 1 || strings.Count(l, `msg="already processed"`) != 2 {
		t.Errorf("log:\n%s", l)
	}
}
