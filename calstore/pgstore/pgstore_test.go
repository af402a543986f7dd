package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"imipd/calstore"
	"imipd/calstore/pgstore"
	"imipd/calstore/pgstore/pgtest"
	"imipd/calstore/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open returns a Store on a new empty database of the test cluster.
func open(t *testing.T) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgtest.NewDSN(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store suite, the contract bbolt's DB passes too.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) calstore.Store { return open(t) })
}

// TestSchema: a new database gets the current version; a second Open
// (another instance) leaves it; a newer version and a database that is
// someone else's are refused; a bad DSN's error does not quote it.
func TestSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDSN(t)
	for range 2 {
		s, err := pgstore.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		s.Close()
	}
	exec := func(dsn, sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(dsn, fmt.Sprintf("UPDATE imipd_meta SET version = %d", pgstore.SchemaVersion+1))
	if _, err := pgstore.Open(ctx, dsn); !errors.Is(err, calstore.ErrSchema) {
		t.Errorf("Open of a newer schema: %v, want ErrSchema", err)
	}
	other := pgtest.NewDSN(t)
	exec(other, "CREATE TABLE users (name text)")
	if _, err := pgstore.Open(ctx, other); !errors.Is(err, calstore.ErrSchema) {
		t.Errorf("Open of another program's database: %v, want ErrSchema", err)
	}
	_, err := pgstore.Open(ctx, "host=127.0.0.1 password=sekrit-pw port=notanumber")
	if err == nil || strings.Contains(err.Error(), "sekrit-pw") {
		t.Errorf("Open with a bad DSN: %v; want an error that does not quote the password", err)
	}
}
