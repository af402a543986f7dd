package itip

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Citations of rules resolve inside the repository: every
// docs/rules.md "Section" names a heading of docs/rules.md, and nothing
// cites the design document or the Open-Xchange article the rules were
// first written from, which live outside the repository.
var (
	ruleCite = regexp.MustCompile(`docs/rules\.md((?:,? *"[^"\n]+")+)`)
	quoted   = regexp.MustCompile(`"([^"\n]+)"`)
	// Outside citations: the SPEC in any form, and the seed as a source
	// ("seed, "Section"", "(seed", "the seed's"), not fuzz seeds.
	outsideCite = regexp.MustCompile(`\bSPEC\b|(?i:\bseed[,;]? *"|\(seed\b|\bthe seed\b)`)
	commentJoin = regexp.MustCompile(`\n[ \t]*(//[ \t]?)?`)
	space       = regexp.MustCompile(`[ \t]+`)
)

// ruleHeadings returns the level-2 headings of docs/rules.md.
func ruleHeadings(t *testing.T, root string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs", "rules.md"))
	if err != nil {
		t.Fatalf("docs/rules.md: %v", err)
	}
	h := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, "## "); ok {
			h[strings.TrimSpace(s)] = true
		}
	}
	return h
}

// TestCitationsResolve walks the repository's .go and .md files.
func TestCitationsResolve(t *testing.T) {
	root := ".."
	headings := ruleHeadings(t, root)
	self, _ := filepath.Abs("citations_test.go")
	cited := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		// Go and Markdown files, and the scenario cases' descriptions.
		if ext := filepath.Ext(path); ext != ".go" && ext != ".md" && d.Name() != "case.txt" {
			return nil
		}
		if abs, _ := filepath.Abs(path); abs == self {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// A citation may run over a line break, in a comment or in prose.
		text := space.ReplaceAllString(commentJoin.ReplaceAllString(string(b), " "), " ")
		for _, m := range ruleCite.FindAllStringSubmatch(text, -1) {
			for _, q := range quoted.FindAllStringSubmatch(m[1], -1) {
				cited++
				if !headings[q[1]] {
					t.Errorf("%s: docs/rules.md %q: no such heading in docs/rules.md", path, q[1])
				}
			}
		}
		for _, loc := range outsideCite.FindAllStringIndex(text, -1) {
			from, to := max(0, loc[0]-30), min(len(text), loc[1]+30)
			t.Errorf("%s: cites a document outside the repository (…%s…); cite docs/rules.md and a heading instead", path, text[from:to])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cited == 0 {
		t.Error("no docs/rules.md citation found: the walk is broken")
	}
}
