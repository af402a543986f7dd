package filter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigExample(t *testing.T) {
	f, err := LoadFile("../contrib/imipd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if f.DataDir != "/var/lib/imipd" || len(f.LocalDomains) != 1 {
		t.Fatalf("%+v", f)
	}
}

func TestConfigErrorsNameKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(p, []byte("default_policy = \"sometimes\"\ntimeframe = \"4X\"\nbogus = 1\n[milter]\nlisten = \"127.0.0.1:1\"\n"), 0o600)
	_, err := LoadFile(p)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	for _, key := range []string{"default_policy", "timeframe", `"bogus"`, "milter.listen"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}
