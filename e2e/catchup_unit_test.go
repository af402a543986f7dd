//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdCatchupUnits: contrib's imipd-catchup.service and its timer
// are read by systemd-analyze without complaint (TestImipdStopped runs the
// service's command).
func TestSystemdCatchupUnits(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	var paths []string
	for _, name := range []string{"imipd-catchup.service", "imipd-catchup.timer"} {
		b, err := os.ReadFile(filepath.Join(E.repo, "contrib/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		// verify checks every key; the binaries need not be installed here.
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/imipctl", "/bin/true")), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
