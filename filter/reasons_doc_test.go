package filter_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestReasonWordsDocumented: every reason word the code writes appears, in
// backquotes, in README's "The header" section. Words are found in the
// source, not listed here: the second argument of itip's result and held,
// the first of parseErr, a value given to a field or variable named reason
// (Result{Reason: ...}, o.reason = ...), and the constants named Reason* or
// reason*.
func TestReasonWordsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if i := strings.Index(section, "\n## The header\n"); i >= 0 {
		section = section[i+1:]
		if j := strings.Index(section, "\n## "); j >= 0 {
			section = section[:j]
		}
	} else {
		t.Fatal(`README has no "## The header" section`)
	}

	words := map[string]string{} // word -> where
	fset := token.NewFileSet()
	for _, dir := range []string{".", "../itip", "../itip/ics", "../itip/imip", "../caldav"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			add := func(e ast.Expr) {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if w, err := strconv.Unquote(lit.Value); err == nil && w != "" {
						words[w] = fset.Position(lit.Pos()).String()
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if id, ok := n.Fun.(*ast.Ident); ok {
						switch {
						case (id.Name == "result" || id.Name == "held") && len(n.Args) == 2:
							add(n.Args[1])
						case id.Name == "parseErr" && len(n.Args) > 0:
							add(n.Args[0])
						}
					}
				case *ast.KeyValueExpr:
					if isReasonName(n.Key) {
						add(n.Value)
					}
				case *ast.AssignStmt:
					if len(n.Lhs) == len(n.Rhs) {
						for i, l := range n.Lhs {
							if isReasonName(l) {
								add(n.Rhs[i])
							}
						}
					}
				case *ast.ValueSpec:
					for i, id := range n.Names {
						if strings.HasPrefix(strings.ToLower(id.Name), "reason") && i < len(n.Values) {
							add(n.Values[i])
						}
					}
				}
				return true
			})
		}
	}
	if len(words) < 40 {
		t.Fatalf("found only %d reason words in the source: the patterns no longer match the code", len(words))
	}
	var missing []string
	for w, where := range words {
		if !strings.Contains(section, "`"+w+"`") {
			missing = append(missing, w+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("reason words missing from README \"The header\":\n%s", strings.Join(missing, "\n"))
	}
}

// isReasonName: an identifier or field selector named reason or Reason.
func isReasonName(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name == "reason" || e.Name == "Reason"
	case *ast.SelectorExpr:
		return e.Sel.Name == "reason" || e.Sel.Name == "Reason"
	}
	return false
}
