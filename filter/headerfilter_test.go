package filter_test

import (
	"bytes"
	"strings"
	"testing"

	"imipd/filter"
)

// crLines splits a header block into lines the way Python's email package
// does: at CRLF, at LF and at a bare CR.
func crLines(header []byte) []string {
	s := strings.ReplaceAll(string(header), "\r\n", "\n")
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
}

// lfLines splits a header block into lines at LF only, as Postfix and
// Dovecot do.
func lfLines(header []byte) []string {
	return strings.Split(string(header), "\n")
}

// fieldNames counts the fields of each name (lower case) among lines;
// a name must be printable ASCII (RFC 5322 §3.6.8).
func fieldNames(lines []string) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		k, _, ok := strings.Cut(l, ":")
		k = strings.Trim(k, " \t")
		if ok && k != "" && l[0] != ' ' && l[0] != '\t' && !strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r > '~' }) {
			out[strings.ToLower(k)]++
		}
	}
	return out
}

func TestIsHeaderName(t *testing.T) {
	for _, tc := range []struct {
		field string
		want  bool
	}{
		{"X-IMIP-Processed", true},
		{"x-imip-processed", true},
		{"X-IMIP-Processed ", true},
		{"X-IMIP-Processed\t", true},
		{"X-IMIP-Processed-Not", false},
		{"X-IMIP", false},
		{"", false},
	} {
		if got := filter.IsHeaderName(tc.field, "X-IMIP-Processed"); got != tc.want {
			t.Errorf("IsHeaderName(%q) = %v", tc.field, got)
		}
	}
}

// TestHiddenFields: a milter gets a field's value with continuation lines
// joined by LF; fields a bare CR hides in it are removed with their
// continuation lines, the bare CRs left become spaces (go-milter would send
// them as LF, a new field to Postfix), the rest stays byte for byte.
func TestHiddenFields(t *testing.T) {
	for _, tc := range []struct {
		value, want string
		n           int
	}{
		{"hi", "hi", 0},
		{"hi\r", "hi\r", 0},
		{"hi\rthere", "hi\rthere", 0},
		{"hi\rX-IMIP-Processed: applied", "hi", 1},
		{"hi\rx-imip-processed : applied\n\tuid=x\rX-Other: kept", "hi X-Other: kept", 1},
		{"hi\n\tmore\rX-IMIP-Processed: a\r X-IMIP-Processed: continued", "hi\n\tmore", 1},
		{"a\rX-IMIP-Processed: 1\rX-IMIP-Processed: 2\rb: c", "a b: c", 2},
		{"a\r\rX-IMIP-Processed: 1", "a ", 1},
		{"a\rX-IMIP-Processed-Not: 1", "a\rX-IMIP-Processed-Not: 1", 0},
		{"a\rX-IMIP-Processed", "a", 1},
	} {
		got, n := filter.HiddenFields(tc.value, "X-IMIP-Processed")
		if got != tc.want || n != tc.n {
			t.Errorf("HiddenFields(%q) = %q, %d; want %q, %d", tc.value, got, n, tc.want, tc.n)
		}
	}
}

// FuzzHeaderFilter: however a header block is cut into writes, the filter
// gives the same output; no line of it, split at CR and LF as Python's
// email package splits, is a field of the removed name; and a block without
// such a field passes unchanged.
func FuzzHeaderFilter(f *testing.F) {
	f.Add([]byte("Subject: a\rX-IMIP-Processed: b\r\nX-IMIP-Processed : c\r\n\tcont\r\nTo: d\r\n"), uint16(11))
	f.Add([]byte("A: b\r\rx-imip-processed:\rC: d\n"), uint16(3))
	f.Add([]byte("X-IMIP-Pro"), uint16(5))
	f.Fuzz(func(t *testing.T, block []byte, cut uint16) {
		const name = "X-IMIP-Processed"
		whole := filter.FilterHeader(block, name, 0)
		if pieces := filter.FilterHeader(block, name, int(cut)%(len(block)+1)+1); !bytes.Equal(pieces, whole) {
			t.Fatalf("cut into pieces of %d: %q, whole: %q", int(cut)%(len(block)+1)+1, pieces, whole)
		}
		for _, l := range crLines(whole) {
			if k, _, ok := strings.Cut(l, ":"); ok && l[0] != ' ' && l[0] != '\t' && filter.IsHeaderName(k, name) {
				t.Fatalf("%q survives in %q (from %q)", l, whole, block)
			}
		}
		// No reader sees a field it did not see before.
		for _, lines := range []func([]byte) []string{crLines, lfLines} {
			before, after := fieldNames(lines(block)), fieldNames(lines(whole))
			for k, n := range after {
				if n > before[k] {
					t.Fatalf("%d fields %q after, %d before: %q -> %q", n, k, before[k], block, whole)
				}
			}
		}
		has := false
		for _, l := range crLines(block) {
			if len(l) > 0 && l[0] != ' ' && l[0] != '\t' && len(l) >= len(name) && strings.EqualFold(l[:len(name)], name) {
				has = true
			}
		}
		if !has && !bytes.Equal(whole, block) {
			t.Fatalf("changed without a field to remove: %q -> %q", block, whole)
		}
	})
}
