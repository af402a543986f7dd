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
	verifyUnits(t, analyze, map[string][]byte{"imipd.service": unit})
}

// verifyUnits has systemd-analyze verify the units, named by their file
// names, together and without complaint. verify checks every key: each
// unit is copied with imipd's and imipctl's paths made /bin/true, so the
// binaries need not be installed here.
func verifyUnits(t *testing.T, analyze string, units map[string][]byte) {
	t.Helper()
	bins := strings.NewReplacer("/usr/local/bin/imipctl", "/bin/true", "/usr/local/bin/imipd", "/bin/true")
	dir := t.TempDir()
	args := []string{"verify"}
	for name, b := range units {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(bins.Replace(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	out, err := exec.Command(analyze, args...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
