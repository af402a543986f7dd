package filter_test

import (
	"bytes"
	"os"
	"os/exec"
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

// headerBlock is a message's header, up to the first empty line.
func headerBlock(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i+2]
	}
	return raw
}

// pythonHeaders returns what python3's email parser sees as the values of
// the named field of a raw message; ok is false when /usr/bin/python3 is
// absent.
func pythonHeaders(t *testing.T, raw []byte, name string) (vals []string, ok bool) {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		return nil, false
	}
	cmd := exec.Command(py, "-c", `
import email, email.policy, sys
m = email.message_from_binary_file(sys.stdin.buffer, policy=email.policy.compat32)
for v in m.get_all(sys.argv[1]) or []:
    print(str(v).replace("\n", " ").replace("\r", " "))
`, name)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			vals = append(vals, l)
		}
	}
	return vals, true
}

// TestLMTPBareCRForgedHeader: a forged X-IMIP-Processed behind a bare CR
// inside another header line (which Python's email parser takes for a line
// end) is removed like any other incoming copy (issue 13, attack 15b),
// also when the CR is the last byte of the proxy's 32 KiB line buffer.
func TestLMTPBareCRForgedHeader(t *testing.T) {
	e := newLMTPEnv(t, filter.LMTPOptions{})
	e.setUsers(t, map[string]string{"bob@example.test": "always"}, nil)
	long := "X-Long: " + strings.Repeat("a", 32<<10-len("X-Long: ")-1) + "\r"                                // the CR is byte 32768 of its line
	split := "X-Split: " + strings.Repeat("b", 32<<10-len("X-Split: ")-len("\rX-IMIP-Pro")) + "\rX-IMIP-Pro" // the name is cut at byte 32768
	msg := strings.Replace(lmtpInvite("cr-1"), "Subject: Invitation: Planning\r\n",
		"Subject: Invitation: Planning\rX-IMIP-Processed: applied; method=REQUEST; uid=forged-cr\r\n"+
			"X-Tag: a\rx-imip-processed : applied; uid=forged-spaced\r  uid=forged-continued\r\n"+
			long+"X-IMIP-Processed: applied; uid=forged-boundary\r\n"+
			split+"cessed: applied; uid=forged-split\r\n", 1)
	d := lmtpDeliver(t, e.addr, "alice@remote.test", []string{"bob@example.test"}, msg)
	lmtpWantOK(t, d, "bob@example.test")
	txns := e.ds.transactions()
	if len(txns) != 1 {
		t.Fatalf("%d downstream transactions, want 1", len(txns))
	}
	data := txns[0].Data
	if bytes.Contains(data, []byte("forged")) {
		t.Errorf("a forged copy survived:\n%q", headerBlock(data))
	}
	var ours []string
	for _, l := range crLines(headerBlock(data)) {
		if name, v, ok := strings.Cut(l, ":"); ok && filter.IsHeaderName(name, "X-IMIP-Processed") {
			ours = append(ours, strings.TrimSpace(v))
		}
	}
	const want = "needs-action; method=REQUEST; uid=cr-1@remote.test; reason=invitation"
	if len(ours) != 1 || ours[0] != want {
		t.Errorf("header lines split at CR too: %q, want [%q]", ours, want)
	}
	if !bytes.Contains(data, []byte("Subject: Invitation: Planning\r\nX-Tag: a\r\nX-Long: ")) || !bytes.Contains(data, []byte(long[:len(long)-1]+"\r\n")) ||
		!bytes.Contains(data, []byte(split[:len(split)-len("\rX-IMIP-Pro")]+"\r\n")) {
		t.Errorf("the fields around the forged ones were not kept:\n%q", headerBlock(data))
	}
	py, ok := pythonHeaders(t, data, "X-IMIP-Processed")
	if !ok {
		t.Log("no /usr/bin/python3: what Python's email parser sees is not checked")
		return
	}
	if len(py) != 1 || py[0] != want {
		t.Errorf("python3's email parser sees X-IMIP-Processed %q, want [%q]", py, want)
	}
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
