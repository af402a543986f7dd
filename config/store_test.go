package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigStore: [store] chooses the driver; a PostgreSQL DSN comes from
// dsn or a private dsn_file, is checked by pgx's parser, and no error
// shows it.
func TestConfigStore(t *testing.T) {
	const secret = "Sekrit-pw-7"
	dir := t.TempDir()
	private := filepath.Join(dir, "dsn")
	os.WriteFile(private, []byte("host=db.example.test user=imipd password="+secret+" dbname=imipd\n"), 0o600)
	open := filepath.Join(dir, "dsn-open")
	os.WriteFile(open, []byte("host=db.example.test password="+secret+"\n"), 0o644)
	badFile := filepath.Join(dir, "dsn-bad")
	os.WriteFile(badFile, []byte("postgres://u:"+secret+"@h:notaport/db\n"), 0o600)
	for _, tc := range []struct {
		name, src, want string // want "": valid
		postgres        bool
	}{
		{"default", "", "", false},
		{"bbolt", "[store]\ndriver = \"bbolt\"\n", "", false},
		{"postgres dsn", "[store]\ndriver = \"postgres\"\ndsn = \"host=/run/postgresql dbname=imipd passfile=/etc/imipd/pgpass\"\n", "", true},
		{"postgres url", "[store]\ndriver = \"postgres\"\ndsn = \"postgres://imipd:" + secret + "@db.example.test/imipd?pool_max_conns=8\"\n", "", true},
		{"postgres dsn_file", "[store]\ndriver = \"postgres\"\ndsn_file = \"" + private + "\"\n", "", true},
		{"unknown driver", "[store]\ndriver = \"sqlite\"\n", "store.driver", false},
		{"postgres without dsn", "[store]\ndriver = \"postgres\"\n", "store.dsn", true},
		{"dsn and dsn_file", "[store]\ndriver = \"postgres\"\ndsn = \"host=h\"\ndsn_file = \"" + private + "\"\n", "store.dsn", true},
		{"dsn with bbolt", "[store]\ndsn = \"host=h password=" + secret + "\"\n", "store.dsn", false},
		{"bad dsn", "[store]\ndriver = \"postgres\"\ndsn = \"postgres://u:" + secret + "@h:notaport/db\"\n", "store.dsn", true},
		{"bad dsn_file contents", "[store]\ndriver = \"postgres\"\ndsn_file = \"" + badFile + "\"\n", "store.dsn_file", true},
		{"dsn_file readable by others", "[store]\ndriver = \"postgres\"\ndsn_file = \"" + open + "\"\n", "0600", true},
		{"dsn_file missing", "[store]\ndriver = \"postgres\"\ndsn_file = \"" + filepath.Join(dir, "none") + "\"\n", "store.dsn_file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(p, []byte(tc.src), 0o600)
			f, err := loadFile(p)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), secret):
				t.Fatalf("the error shows the password:\n%v", err)
			}
			s, _ := f.Validate()
			if s.Postgres() != tc.postgres {
				t.Errorf("Postgres() = %v, want %v", s.Postgres(), tc.postgres)
			}
			if strings.Contains(s.storeName(), secret) {
				t.Errorf("StoreName shows the password: %q", s.storeName())
			}
		})
	}
}
