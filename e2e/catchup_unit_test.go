//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
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
	units := map[string][]byte{}
	for _, name := range []string{"imipd-catchup.service", "imipd-catchup.timer"} {
		b, err := os.ReadFile(filepath.Join(E.repo, "contrib/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		units[name] = b
	}
	verifyUnits(t, analyze, units)
}
