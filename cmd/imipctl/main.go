// Command imipctl is imipd's admin CLI (SPEC "Admin CLI"). While the daemon
// runs, imipctl talks to it over the admin socket in the data directory
// (bbolt allows one writer process); otherwise it opens the database itself.
// The commands are in package filter/admin, so the output is the same
// either way.
//
// Usage: imipctl [-config FILE | -data DIR] COMMAND [flags] [args]
// Exit status: 0 success, 1 operational error, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	_ "time/tzdata" // IANA zones on machines without /usr/share/zoneinfo

	"imipd/calstore"
	"imipd/filter"
	"imipd/filter/admin"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout)
	if err == nil {
		return
	}
	code := admin.ExitCode(err)
	var ee exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(os.Stderr, "imipctl: %v\n", err)
	if code == 2 {
		fmt.Fprintf(os.Stderr, "\n%s", admin.Usage)
	}
	os.Exit(code)
}

// exitError carries the exit status a daemon-side command ended with.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("imipctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "configuration file (TOML)")
	dataDir := fs.String("data", "", "data directory (overrides data_dir)")
	local := fs.Bool("local", false, "open the database directly, never the admin socket")
	if err := fs.Parse(args); err != nil {
		return admin.UsageError{Msg: err.Error()}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return admin.UsageError{Msg: "no command"}
	}
	cfg := filter.Defaults()
	if *cfgPath != "" {
		f, err := filter.LoadFile(*cfgPath)
		if err != nil {
			return err
		}
		cfg = f
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	pc, err := cfg.Processing()
	if err != nil {
		return err
	}
	if rest[0] == "help" {
		_, err := io.WriteString(stdout, admin.Usage)
		return err
	}
	client := admin.LocalClient{Stdin: stdin}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && stdout == os.Stdout {
		client.Status = os.Stderr // progress only on a terminal
	}
	if !*local {
		code, msg, err := admin.Call(ctx, cfg.AdminSocket(), rest, client, stdout)
		switch {
		case err == nil && code == 0:
			return nil
		case err == nil:
			return exitError{code: code, msg: msg}
		case !errors.Is(err, admin.ErrNoDaemon):
			return err
		}
	}
	if err := cfg.EnsureDataDir(); err != nil {
		return err
	}
	db, err := calstore.Open(cfg.DBPath(), calstore.Options{})
	if err != nil {
		if errors.Is(err, calstore.ErrLocked) {
			return fmt.Errorf("%w (imipd holds it but its admin socket %s does not answer)", err, cfg.AdminSocket())
		}
		return err
	}
	defer db.Close()
	env := admin.Env{Cfg: cfg, Store: db, Proc: &filter.Processor{Store: db, Cfg: pc}, Out: stdout, Client: client}
	return admin.Run(ctx, env, rest)
}
