package imip

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir is where the corpus of real messages lies, beside the
// repository; TestCorpus is skipped where it is absent.
const corpusDir = "../../../shared/corpus"

type manifestRow struct {
	file, kind, method, notes string
}

func readManifest(t *testing.T) map[string]manifestRow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, "MANIFEST.md"))
	if err != nil {
		t.Fatalf("reading manifest: %v", err)
	}
	rows := map[string]manifestRow{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, "|")
		if len(f) < 8 {
			continue
		}
		r := manifestRow{
			file:   strings.TrimSpace(f[1]),
			kind:   strings.TrimSpace(f[3]),
			method: strings.TrimSpace(f[4]),
			notes:  strings.TrimSpace(f[6]),
		}
		if r.kind == "email" || r.kind == "ical" {
			rows[r.file] = r
		}
	}
	return rows
}

// TestCorpus parses every file of the shared corpus (no panic, bounded result),
// and checks detection on the messages the manifest describes.
func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("no corpus at %s", corpusDir)
	}
	rows := readManifest(t)
	var files, emails, expect, found, negatives, negOK, forwarded int
	err := filepath.WalkDir(corpusDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(corpusDir, path)
		rel = filepath.ToSlash(rel)
		if rel == "MANIFEST.md" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		msg, err := Parse(bytes.NewReader(b), Limits{})
		if msg == nil {
			t.Errorf("%s: nil message (err %v)", rel, err)
			return nil
		}
		sameWhenSkipping(t, b, Limits{}, 4096, msg, err)
		row, ok := rows[rel]
		if !ok || row.kind != "email" {
			return nil // bare iCalendar files are not messages
		}
		emails++
		if msg.forwarded {
			forwarded++
		}
		notes := strings.ToLower(row.notes)
		bounce := strings.Contains(notes, "bounce") || strings.Contains(notes, "dsn")
		switch {
		case bounce:
			negatives++
			if len(msg.Parts) == 0 {
				negOK++
			} else {
				t.Errorf("%s: bounce, got %d calendar parts", rel, len(msg.Parts))
			}
		case row.method != "-" && !strings.Contains(row.notes, "MALFORMED"):
			expect++
			if len(msg.Parts) > 0 {
				found++
			} else {
				t.Errorf("%s: method %s, no calendar part found (err %v)", rel, row.method, err)
			}
		}
		var methods []string
		for _, p := range msg.Parts {
			methods = append(methods, p.path+":"+p.contentType+":"+p.Method)
		}
		t.Logf("%-70s parts=%d fwd=%v err=%v %v", rel, len(msg.Parts), msg.forwarded, err, methods)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("corpus: %d files, %d messages; calendar expected in %d, found in %d; bounces %d, %d without parts; forwarded %d",
		files, emails, expect, found, negatives, negOK, forwarded)
}
