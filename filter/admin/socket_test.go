package admin

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"imipd/config"
	"imipd/filter"
)

// TestSocketSameAsLocal runs commands through the admin socket and directly
// against the same store: the output must be identical, files are read from
// the client, and the exit status survives the trip.
func TestSocketSameAsLocal(t *testing.T) {
	dir := t.TempDir()
	db := testDB(t, dir)
	f := config.Defaults()
	f.DataDir = dir
	cfg, _ := f.Validate()
	env := func() Env { return Env{Cfg: cfg, Store: db, Proc: &filter.Processor{Store: db, Cfg: cfg.Processor}} }
	sock := filepath.Join(dir, "imipd.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	srv := &Server{Env: env}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	msg := "../testdata/scenarios/request-new/message.eml"
	client := LocalClient{}
	ctx := context.Background()
	remote := func(args ...string) (string, int, string) {
		var out bytes.Buffer
		code, emsg, err := Call(ctx, sock, args, client, &out)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String(), code, emsg
	}
	local := func(args ...string) (string, int) {
		var out bytes.Buffer
		e := env()
		e.Out, e.Client = &out, client
		code := ExitCode(Run(ctx, e, args))
		return out.String(), code
	}
	if out, code, emsg := remote("user", "add", "-policy", "always", "bob@example.test"); code != 0 {
		t.Fatalf("user add: %d %s %s", code, emsg, out)
	}
	if out, code, emsg := remote("process", "-json", "-user", "bob@example.test", msg); code != 0 || !bytes.Contains([]byte(out), []byte(`"outcome": "needs-action"`)) {
		t.Fatalf("process over the socket: %d %s %s", code, emsg, out)
	}
	for _, args := range [][]string{
		{"users", "-json"},
		{"events", "-json", "bob@example.test"},
		{"pending", "-json", "bob@example.test"},
		{"export", "bob@example.test"},
		{"check", "-user", "bob@example.test", msg},
	} {
		r, rc, _ := remote(args...)
		l, lc := local(args...)
		if r != l || rc != lc || rc != 0 {
			t.Errorf("%v: socket (%d)\n%s\nlocal (%d)\n%s", args, rc, r, lc, l)
		}
	}
	if _, code, _ := remote("frobnicate"); code != 2 {
		t.Errorf("unknown command over the socket: exit %d, want 2", code)
	}
	if _, code, emsg := remote("check", "/nonexistent.eml"); code != 1 || emsg == "" {
		t.Errorf("missing file: exit %d %q, want 1 with a cause", code, emsg)
	}
	if _, _, err := Call(ctx, filepath.Join(dir, "nobody.sock"), []string{"users"}, client, &bytes.Buffer{}); err == nil {
		t.Error("Call to a missing socket succeeded")
	}
	// A second daemon must not steal a live socket.
	if _, err := Listen(sock); err == nil {
		t.Error("Listen replaced a socket in use")
	}
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}
