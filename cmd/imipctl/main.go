// Command imipctl is imipd's admin CLI (docs/rules.md "Admin CLI"). While the daemon
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
	iofs "io/fs"
	"net"
	"os"
	"strings"
	_ "time/tzdata" // IANA zones on machines without /usr/share/zoneinfo

	"imipd/calstore"
	"imipd/config"
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
		fmt.Fprint(os.Stderr, usageFor(os.Args[1:]))
	}
	os.Exit(code)
}

// usageFor is what a usage error prints after the error: the usage lines
// of the command args name, or the whole command list when they name none.
func usageFor(args []string) string {
	fs, _ := globalFlags()
	if fs.Parse(args) == nil {
		if u := admin.CommandUsage(fs.Args()); u != "" {
			return usageLines(u)
		}
	}
	return "\n" + admin.Usage
}

// usageLines shows a command's lines of the usage.
func usageLines(u string) string {
	var b strings.Builder
	b.WriteString("usage:\n")
	for _, l := range strings.SplitAfter(strings.TrimSuffix(u, "\n"), "\n") {
		b.WriteString("  imipctl " + strings.TrimPrefix(l, "  "))
	}
	b.WriteString("\n(imipctl help lists every command)\n")
	return b.String()
}

// helpAsked reports whether a command's arguments ask for its usage (-h,
// -help or --help before any "--").
func helpAsked(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// exitError carries the exit status a daemon-side command ended with.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// globals are imipctl's own flags, before the command.
type globals struct {
	cfgPath, dataDir *string
	local            *bool
}

func globalFlags() (*flag.FlagSet, globals) {
	fs := flag.NewFlagSet("imipctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, globals{
		cfgPath: fs.String("config", "", "configuration file (TOML)"),
		dataDir: fs.String("data", "", "data directory (overrides data_dir)"),
		local:   fs.Bool("local", false, "open the database directly, never the admin socket"),
	}
}

// creates reports whether a command may create the store when there is
// none: the commands that put a user or mail into it. Every other command
// reads or changes what is there, and a missing store is an error naming
// its path: run from the wrong directory or with a mistyped -data, they
// would otherwise show an empty world and leave a new database behind.
func creates(args []string) bool {
	switch args[0] {
	case "import", "scan", "process":
		return true
	case "user":
		return len(args) > 1 && args[1] == "add"
	}
	return false
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs, g := globalFlags()
	cfgPath, dataDir, local := g.cfgPath, g.dataDir, g.local
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		_, err := io.WriteString(stdout, admin.Usage)
		return err
	} else if err != nil {
		return admin.UsageError{Msg: err.Error()}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return admin.UsageError{Msg: "no command"}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if helpAsked(rest) {
		if u := admin.CommandUsage(rest); u != "" {
			_, err := io.WriteString(stdout, usageLines(u))
			return err
		}
	}
	if rest[0] == "help" {
		_, err := io.WriteString(stdout, admin.Usage)
		return err
	}
	if rest[0] == "migrate" {
		return migrate(ctx, cfg, rest[1:], stdout)
	}
	if f, ok := stdin.(*os.File); ok && isPasswordCommand(rest) && len(rest) >= 3 && isTerminal(f) {
		// Typed, not piped: ask, without echo.
		if stdin, err = promptPassword(f, rest[len(rest)-1]); err != nil {
			return err
		}
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
	if _, err := os.Stat(cfg.DBPath()); errors.Is(err, iofs.ErrNotExist) && !creates(rest) && !cfg.Postgres() {
		return fmt.Errorf("no store at %s (data_dir %s): name the configuration imipd runs with (-config FILE) or its data directory (-data DIR); \"imipctl user add\" creates a new store", cfg.DBPath(), cfg.DataDir)
	}
	if err := cfg.EnsureDataDir(); err != nil {
		return err
	}
	// With PostgreSQL the database is shared: imipctl may open it beside
	// running daemons (admin commands from any instance).
	db, err := cfg.OpenStore(ctx, calstore.Options{})
	if err != nil {
		if errors.Is(err, calstore.ErrLocked) {
			return lockedError(ctx, err, cfg.AdminSocket(), *local)
		}
		return err
	}
	defer db.Close()
	env := admin.Env{Cfg: cfg, Store: db, Proc: &filter.Processor{Store: db, Cfg: cfg.Processor}, Out: stdout, Client: client}
	return admin.Run(ctx, env, rest)
}

// lockedError explains a store another process holds: with -local, an
// imipd that answers on its admin socket is the likely holder (drop
// -local); without it, the socket was tried and did not answer.
func lockedError(ctx context.Context, err error, socket string, local bool) error {
	if local {
		var d net.Dialer
		if c, derr := d.DialContext(ctx, "unix", socket); derr == nil {
			c.Close()
			return fmt.Errorf("%w: imipd runs and holds it (its admin socket %s answers); run the command without -local to go through imipd", err, socket)
		}
		return fmt.Errorf("%w: another process holds it, and no imipd answers on the admin socket %s", err, socket)
	}
	return fmt.Errorf("%w (a process holds it, but no imipd answers on the admin socket %s)", err, socket)
}
