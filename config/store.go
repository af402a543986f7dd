package config

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"imipd/calstore"
	"imipd/calstore/pgstore"
)

// Store drivers ([store] driver).
const (
	storeBbolt    = "bbolt"    // the default: one file in data_dir, one process
	storePostgres = "postgres" // PostgreSQL (calstore/pgstore): several instances on one database
)

// StoreConfig is the [store] table: where the calendar store lives.
// Driver "bbolt" (the default, "" too) is data_dir/imipd.db. Driver
// "postgres" is the database named by DSN (a libpq connection string or
// URL; a passfile parameter names a password file) or by the contents of
// DSNFile (mode 0600 or stricter), so the password need not be in the
// configuration file. Neither value is ever shown in errors.
type StoreConfig struct {
	Driver  string `toml:"driver"`
	DSN     string `toml:"dsn"`
	DSNFile string `toml:"dsn_file"`
}

// readDSN returns the DSN, read from DSNFile when set, checked by pgx's
// parser. Errors name the key, never the value.
func (s StoreConfig) readDSN() (string, error) {
	key, dsn := "store.dsn", s.DSN
	if s.DSNFile != "" {
		key = "store.dsn_file"
		fi, err := os.Stat(s.DSNFile)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%s: %s is readable by others (mode %04o): want 0600 or stricter", key, s.DSNFile, fi.Mode().Perm())
		}
		b, err := os.ReadFile(s.DSNFile)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		dsn = strings.TrimSpace(string(b))
	}
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		// pgx's message may quote the DSN, password included.
		return "", fmt.Errorf("%s: not a PostgreSQL connection string or URL (value not shown)", key)
	}
	return dsn, nil
}

// Store is where the calendar store lives ([store]): the bbolt file in
// the data directory, or PostgreSQL.
type Store struct {
	Driver string // "bbolt" or "postgres"
	dsn    string // read from dsn or dsn_file; never shown
}

// settings checks [store] and reads its DSN.
func (s StoreConfig) settings(p *problems) Store {
	st := Store{Driver: storeBbolt}
	switch s.Driver {
	case "", storeBbolt:
		if s.DSN != "" || s.DSNFile != "" {
			p.bad("store.dsn", "only with driver = \"postgres\"")
		}
	case storePostgres:
		st.Driver = storePostgres
		if (s.DSN == "") == (s.DSNFile == "") {
			p.bad("store.dsn", "driver \"postgres\" needs dsn or dsn_file, not both")
			break
		}
		dsn, err := s.readDSN()
		if err != nil {
			*p = append(*p, err.Error())
		}
		st.dsn = dsn
	default:
		p.bad("store.driver", "%q: want bbolt or postgres", s.Driver)
	}
	return st
}

// Postgres reports whether the store is PostgreSQL.
func (s Settings) Postgres() bool { return s.Store.Driver == storePostgres }

// storeName is what logs say the store is: the bbolt file, or
// "postgres" (the DSN may hold a password).
func (s Settings) storeName() string {
	if s.Postgres() {
		return "postgres"
	}
	return s.DBPath()
}

// OpenStore opens the configured store: the bbolt file with opt, or the
// PostgreSQL database (opt does not apply; the tables are created or
// migrated on first use).
func (s Settings) OpenStore(ctx context.Context, opt calstore.Options) (calstore.Store, error) {
	if !s.Postgres() {
		return calstore.Open(s.DBPath(), opt)
	}
	return pgstore.Open(ctx, s.Store.dsn)
}
