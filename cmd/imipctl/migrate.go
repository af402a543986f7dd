package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"

	"imipd/calstore"
	"imipd/config"
	"imipd/filter/admin"
)

// migrate copies the bbolt file of data_dir into the PostgreSQL database
// of [store] (-to postgres), or that database into a new bbolt file in
// data_dir (-to bbolt), then checks that both dump the same
// (calstore.Copy, calstore.Dump). It runs here, never through the admin
// socket: imipd must not run on the bbolt file meanwhile (its lock makes
// the open fail), and the destination must be empty.
func migrate(ctx context.Context, cfg config.Settings, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	to := fs.String("to", "", "postgres or bbolt")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return admin.UsageError{Msg: "migrate: want -to postgres or -to bbolt"}
	}
	if !cfg.Postgres() {
		return errors.New(`migrate: [store] driver must be "postgres" with its dsn: the database to copy into or from`)
	}
	pg, err := cfg.OpenStore(ctx, calstore.Options{})
	if err != nil {
		return err
	}
	defer pg.Close()
	var src, dst calstore.Store
	switch *to {
	case "postgres":
		if _, err := os.Stat(cfg.DBPath()); err != nil {
			return fmt.Errorf("migrate: no bbolt store to copy: %w", err)
		}
		db, err := calstore.Open(cfg.DBPath(), calstore.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer db.Close()
		src, dst = db, pg
	case "bbolt":
		if _, err := os.Stat(cfg.DBPath()); !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("migrate: %s exists: move it away first (the copy goes into a new file)", cfg.DBPath())
		}
		if err := cfg.EnsureDataDir(); err != nil {
			return err
		}
		db, err := calstore.Open(cfg.DBPath(), calstore.Options{})
		if err != nil {
			return err
		}
		defer db.Close()
		src, dst = pg, db
	default:
		return admin.UsageError{Msg: "migrate: want -to postgres or -to bbolt"}
	}
	if err := calstore.Copy(ctx, src, dst); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var a, b bytes.Buffer
	if err := calstore.Dump(ctx, src, &a); err != nil {
		return fmt.Errorf("migrate: dump the source: %w", err)
	}
	if err := calstore.Dump(ctx, dst, &b); err != nil {
		return fmt.Errorf("migrate: dump the copy: %w", err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		return errors.New("migrate: the copy differs from the source (dumps compared); the destination holds the copy: empty it before trying again")
	}
	_, err = fmt.Fprintf(stdout, "migrated to %s: the copy dumps the same as the source (%d bytes compared); pending and outbox IDs and CalDAV sync tokens are new, budgets start empty\n", *to, a.Len())
	return err
}
