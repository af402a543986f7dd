//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit: contrib/systemd/imipd.service is a unit systemd reads
// without complaint, and it caps memory, threads and CPU share (issue 13,
// attack 5: the unit had no MemoryMax).
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("../contrib/systemd/imipd.service")
	if err != nil {
		t.Fatal(err)
	}
	service := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(unit), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = line
		} else if k, v, ok := strings.Cut(line, "="); ok && section == "[Service]" && !strings.HasPrefix(line, "#") {
			service[k] += v + " "
		}
	}
	for _, want := range []string{"MemoryMax", "MemoryHigh", "TasksMax", "CPUWeight"} {
		if service[want] == "" {
			t.Errorf("[Service] sets no %s", want)
		}
	}
	if !strings.Contains(service["Environment"], "GOMEMLIMIT=") {
		t.Errorf("[Service] sets no GOMEMLIMIT")
	}
	// verify checks every key; the binaries need not be installed here.
	path := filepath.Join(t.TempDir(), "imipd.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/imipd", "/bin/true")), 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
