package ics

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
)

// corpusDir is where the optional corpus of real calendar data lies, test
// data beside the repository; TestCorpus is skipped where it is absent.
const corpusDir = "../../../shared/corpus"

// TestCorpus decodes every *.ics of the shared real-world corpus, checks the
// round trip, and resolves every TZID found. It reports counts; it fails
// only on a panic or a broken round trip.
func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus not present: %v", err)
	}
	var files []string
	filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(strings.ToLower(path), ".ics") {
			files = append(files, path)
		}
		return nil
	})
	decoded := 0
	tzids := map[string]bool{} // "file\x00tzid" -> resolved
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cal, err := Decode(data, Limits{})
		if err != nil {
			t.Logf("decode %s: %v", f, err)
			continue
		}
		decoded++
		again, err := Decode(Marshal(cal), Limits{})
		if err != nil || !reflect.DeepEqual(cal, again) {
			t.Errorf("%s: round trip failed: %v", f, err)
		}
		z := NewZones(cal)
		for _, id := range collectTZIDs(cal.Component) {
			_, err := z.Location(id)
			tzids[filepath.Base(f)+"\x00"+id] = err == nil
			if err != nil {
				t.Logf("%s: TZID %q: %v", f, id, err)
			}
		}
	}
	distinct, distinctOK := map[string]bool{}, 0
	ok := 0
	for k, v := range tzids {
		if v {
			ok++
		}
		id := k[strings.IndexByte(k, 0)+1:]
		distinct[id] = distinct[id] || v
	}
	var names []string
	for id, v := range distinct {
		if v {
			distinctOK++
		}
		names = append(names, id)
	}
	sort.Strings(names)
	t.Logf("corpus: %d/%d .ics files decode; TZIDs (per file): %d/%d resolve; distinct TZID strings: %d/%d resolve",
		decoded, len(files), ok, len(tzids), distinctOK, len(distinct))
	for _, n := range names {
		t.Logf("  %-5v %q", distinct[n], n)
	}
}

// collectTZIDs returns the TZID parameters and VTIMEZONE TZIDs in c.
func collectTZIDs(c *ical.Component) []string {
	var out []string
	var walk func(c *ical.Component)
	walk = func(c *ical.Component) {
		for name, props := range c.Props {
			for _, p := range props {
				if name == ical.PropTimezoneID && c.Name == ical.CompTimezone {
					out = append(out, UnescapeText(p.Value))
				}
				out = append(out, p.Params.Values(ical.PropTimezoneID)...)
			}
		}
		for _, ch := range c.Children {
			walk(ch)
		}
	}
	walk(c)
	return out
}
