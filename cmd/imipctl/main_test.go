package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imipd/filter/admin"
)

// corpusDir is where the optional corpus of real mail lies, test data
// beside the repository; the test is skipped where it is absent.
const corpusDir = "../../../shared/corpus"

// TestCheckCorpus runs `imipctl check` over every file of the corpus:
// nothing may panic or fail, and every message the manifest lists with a
// METHOD (other than bounces and the malformed file) must be detected.
func TestCheckCorpus(t *testing.T) {
	manifest, err := os.ReadFile(filepath.Join(corpusDir, "MANIFEST.md"))
	if err != nil {
		t.Skip("no corpus: ", err)
	}
	want := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(manifest))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) < 7 || !strings.Contains(f[1], "/") {
			continue
		}
		name, kind, method, notes := strings.TrimSpace(f[1]), strings.TrimSpace(f[3]), strings.TrimSpace(f[4]), f[6]
		if kind == "email" && method != "-" && !strings.Contains(notes, "bounce") && !strings.Contains(notes, "MALFORMED") {
			want[name] = true
		}
	}
	data := t.TempDir()
	// check reads the store (a missing one is an error): make it first.
	if err := run(context.Background(), []string{"-data", data, "user", "add", "bob@example.test"}, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*"))
	detected, messages, expected := 0, 0, 0
	for _, path := range files {
		rel, _ := filepath.Rel(corpusDir, path)
		if strings.HasSuffix(path, ".ics") || strings.HasSuffix(path, ".md") {
			continue
		}
		messages++
		var out bytes.Buffer
		err := run(context.Background(), []string{"-data", data, "check", "-user", "bob@example.test", path}, nil, &out)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		found := strings.Contains(out.String(), "\ncalendar: ") && !strings.Contains(out.String(), "calendar: none")
		if found {
			detected++
		}
		if want[rel] {
			expected++
			if !found {
				t.Errorf("%s: calendar not detected:\n%s", rel, out.String())
			}
		}
	}
	t.Logf("corpus: %d messages checked, %d with calendar data detected, %d of %d expected by the manifest", messages, detected, expected, len(want))
}

// TestProcessJSON pins the process -json shape scripts rely on (docs/rules.md
// "Interfaces").
func TestProcessJSON(t *testing.T) {
	data := t.TempDir()
	var out bytes.Buffer
	msg := "../../filter/testdata/scenarios/request-new/message.eml"
	if err := run(context.Background(), []string{"-data", data, "contacts", "add", "bob@example.test", "alice@remote.test"}, nil, &out); err == nil {
		t.Fatal("contacts add for an unknown user should fail")
	}
	for _, args := range [][]string{
		{"-data", data, "user", "add", "-policy", "known", "bob@example.test"},
		{"-data", data, "contacts", "add", "bob@example.test", "alice@remote.test"},
	} {
		if err := run(context.Background(), args, nil, &out); err != nil {
			t.Fatal(args, err)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"-data", data, "process", "-json", "-user", "bob@example.test", msg}, nil, &out); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(got.Results) != 1 || got.Results[0]["outcome"] != "needs-action" || got.Results[0]["reason"] != "invitation" || got.Results[0]["method"] != "REQUEST" || got.Results[0]["user"] != "bob@example.test" || got.Results[0]["repeat"] != false {
		t.Fatalf("results %v", got.Results)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-data", data, "events", "-json", "bob@example.test"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	var evs []map[string]any
	if err := json.Unmarshal(out.Bytes(), &evs); err != nil || len(evs) != 1 {
		t.Fatalf("events: %v %s", err, out.String())
	}
	for _, k := range []string{"uid", "summary", "organizer", "sequence", "start", "end", "attendees"} {
		if _, ok := evs[0][k]; !ok {
			t.Errorf("events -json lacks %q", k)
		}
	}
	// Empty strings and lists are left out, as everywhere in imipctl's JSON
	// (README "JSON output"): this event has no STATUS, RRULE or overrides.
	for _, k := range []string{"status", "rrule", "instances"} {
		if _, ok := evs[0][k]; ok {
			t.Errorf("events -json has the empty %q", k)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"-data", data, "pending", "-json", "bob@example.test"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"kind": "invitation"`) {
		t.Fatalf("pending: %s", out.String())
	}
	if err := run(context.Background(), []string{"-data", data, "respond", "bob@example.test", "1", "accept"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"-data", data, "outbox", "-json"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"method": "REPLY"`) || !strings.Contains(out.String(), `"status": "queued"`) {
		t.Fatalf("outbox: %s", out.String())
	}
	if err := run(context.Background(), []string{"-data", data, "frobnicate"}, nil, &out); err == nil {
		t.Fatal("unknown command accepted")
	} else if _, ok := err.(admin.UsageError); !ok {
		t.Fatalf("unknown command: %T %v, want usage error", err, err)
	}
}
