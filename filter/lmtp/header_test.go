package lmtp_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"imipd/filter"
	"imipd/filter/lmtp"
)

// crLines splits a header block into lines the way Python's email package
// does: at CRLF, at LF and at a bare CR.
func crLines(header []byte) []string {
	s := strings.ReplaceAll(string(header), "\r\n", "\n")
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
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
	e := newLMTPEnv(t, lmtp.Options{})
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
