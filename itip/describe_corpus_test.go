package itip_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"imipd/itip"
	"imipd/itip/ics"
	"imipd/itip/imip"
)

// corpusDir is where the corpus of real mail lies, beside the repository;
// TestDescribeCorpus is skipped where it is absent.
const corpusDir = "../../shared/corpus"

var update = flag.Bool("update", false, "rewrite testdata/describe.golden from the corpus")

// TestDescribeCorpus describes every calendar object of the corpus for the
// message's first To address (bare iCalendar files: for nobody), in
// Europe/Berlin, and compares with testdata/describe.golden, which a person
// read: each line must read naturally (issue 14, item 5). go test
// ./itip -run TestDescribeCorpus -update rewrites it.
func TestDescribeCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("no corpus at %s", corpusDir)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no zone database: ", err)
	}
	var files []string
	err = filepath.WalkDir(corpusDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out bytes.Buffer
	for _, path := range files {
		rel, _ := filepath.Rel(corpusDir, path)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		reader := &itip.User{Zone: berlin}
		var parts [][]byte
		if strings.HasSuffix(path, ".ics") {
			parts = [][]byte{b}
		} else {
			msg, _ := imip.Parse(bytes.NewReader(b), imip.Limits{})
			if msg == nil {
				continue
			}
			if len(msg.To) > 0 {
				reader.Address = msg.To[0]
			}
			for _, p := range msg.Parts {
				parts = append(parts, p.Data)
			}
		}
		for i, data := range parts {
			cal, err := ics.Decode(data, ics.DefaultLimits())
			if err != nil {
				continue
			}
			m, err := itip.ParseMessage(cal)
			if err != nil {
				continue
			}
			name := rel
			if len(parts) > 1 {
				name = fmt.Sprintf("%s#%d", rel, i+1)
			}
			fmt.Fprintf(&out, "%s\n\t%s\n", name, itip.Describe(m, reader))
		}
	}
	golden := filepath.Join("testdata", "describe.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./itip -run TestDescribeCorpus -update writes it)", err)
	}
	if got := out.String(); got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("line %d:\n got  %s\n want %s", i+1, g, w)
			}
		}
	}
}
