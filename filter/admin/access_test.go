package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"imipd/config"
	"imipd/filter"
)

// recordingClient is a LocalClient that remembers every path it read or
// listed.
type recordingClient struct {
	LocalClient
	mu   sync.Mutex
	seen []string
}

func (r *recordingClient) ReadFile(p string) ([]byte, error) {
	r.mu.Lock()
	r.seen = append(r.seen, "read "+p)
	r.mu.Unlock()
	return r.LocalClient.ReadFile(p)
}

func (r *recordingClient) ReadMessage(p string) ([]byte, error) {
	r.mu.Lock()
	r.seen = append(r.seen, "read "+p)
	r.mu.Unlock()
	return r.LocalClient.ReadMessage(p)
}

func (r *recordingClient) ReadDir(p string) ([]FileInfo, error) {
	r.mu.Lock()
	r.seen = append(r.seen, "list "+p)
	r.mu.Unlock()
	return r.LocalClient.ReadDir(p)
}

// fakeDaemon answers one connection on a real unix socket: it takes the
// command, sends each request in turn and keeps the client's answers, then
// ends the command with exit 0.
func fakeDaemon(t *testing.T, sock string, reqs []frame) <-chan []frame {
	t.Helper()
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []frame, 1)
	go func() {
		var answers []frame
		defer func() { got <- answers }()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		dec, enc := json.NewDecoder(conn), json.NewEncoder(conn)
		var cmd frame
		if dec.Decode(&cmd) != nil {
			return
		}
		for _, r := range reqs {
			if enc.Encode(r) != nil {
				return
			}
			var a frame
			if dec.Decode(&a) != nil {
				return
			}
			answers = append(answers, a)
		}
		zero := 0
		enc.Encode(frame{Exit: &zero})
	}()
	return got
}

// TestCallReadsOnlyNamedFiles: whatever answers on the admin socket gets
// from imipctl only the files the command line named for this command
// (issue 13, attack 13).
func TestCallReadsOnlyNamedFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	named := filepath.Join(dir, "named.ics")
	md := filepath.Join(dir, "Maildir")
	for _, f := range []struct{ name, body string }{
		{secret, "root:secret-hash\n"},
		{named, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"},
		{filepath.Join(md, "cur", "1.M1.host"), "Subject: hi\r\n\r\nhi\r\n"},
	} {
		os.MkdirAll(filepath.Dir(f.name), 0o700)
		if err := os.WriteFile(f.name, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	refuse := func(reqs ...frame) []frame { return reqs }
	for _, tc := range []struct {
		name string
		args []string
		// reqs the daemon sends; ok[i] says whether the client must answer
		// request i with data.
		reqs []frame
		ok   []bool
	}{
		{"users asks for /etc/passwd", []string{"users"},
			refuse(frame{Read: "/etc/passwd"}, frame{Read: secret}, frame{Read: "-"}, frame{List: "/etc"}, frame{List: dir}),
			[]bool{false, false, false, false, false}},
		{"import sends its FILE only", []string{"import", "bob@example.test", named},
			[]frame{{Read: named}, {Read: secret}, {Read: "/etc/passwd"}, {Read: "-"}, {List: dir}},
			[]bool{true, false, false, false, false}},
		{"a flag value is no file", []string{"process", "-json", "-user", secret, named},
			[]frame{{Read: secret}, {Read: named}},
			[]bool{false, true}},
		{"check -user=X FILE", []string{"check", "-user=" + secret, named},
			[]frame{{Read: secret}, {Read: named}},
			[]bool{false, true}},
		{"scan lists its Maildir and reads what it listed", []string{"scan", "-user", "bob@example.test", md},
			[]frame{{List: path.Join(md, "cur")}, {Read: path.Join(md, "cur", "1.M1.host")}, {Read: path.Join(md, "cur", "..", "..", "secret")},
				{Read: path.Join(md, "new", "1.M1.host")}, {List: dir}, {Read: secret}},
			[]bool{true, true, false, false, false, false}},
		{"user password reads standard input", []string{"user", "password", "bob@example.test"},
			[]frame{{Read: "-"}, {Read: secret}},
			[]bool{true, false}},
		{"user show never reads standard input", []string{"user", "show", "bob@example.test"},
			[]frame{{Read: "-"}},
			[]bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "s.sock")
			got := fakeDaemon(t, sock, tc.reqs)
			client := &recordingClient{LocalClient: LocalClient{Stdin: strings.NewReader("typed-password\n")}}
			code, _, err := Call(context.Background(), sock, tc.args, client, &bytes.Buffer{})
			if err != nil || code != 0 {
				t.Fatalf("Call: %d %v", code, err)
			}
			answers := <-got
			if len(answers) != len(tc.reqs) {
				t.Fatalf("%d answers for %d requests", len(answers), len(tc.reqs))
			}
			for i, a := range answers {
				gotData := a.Data != nil || a.Files != nil
				if gotData != tc.ok[i] || (a.Error == "") != tc.ok[i] {
					t.Errorf("request read=%q list=%q: answer with %d bytes, %d files, error %q; want data %v", tc.reqs[i].Read, tc.reqs[i].List, len(a.Data), len(a.Files), a.Error, tc.ok[i])
				}
				if bytes.Contains(a.Data, []byte("secret-hash")) || bytes.Contains(a.Data, []byte("root:")) {
					t.Errorf("request read=%q: the client sent the secret", tc.reqs[i].Read)
				}
			}
			// Refused requests read nothing at all.
			var want []string
			for i, r := range tc.reqs {
				if !tc.ok[i] {
					continue
				}
				if r.Read != "" {
					want = append(want, "read "+r.Read)
				} else {
					want = append(want, "list "+r.List)
				}
			}
			if strings.Join(client.seen, "\n") != strings.Join(want, "\n") {
				t.Errorf("the client touched\n%s\nwant\n%s", strings.Join(client.seen, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestAccessCoversCommands runs every command that reads imipctl's side
// through a real daemon end: each still works, so fileCommands grants what
// the commands read.
func TestAccessCoversCommands(t *testing.T) {
	dir := t.TempDir()
	db := testDB(t, dir)
	f := config.Defaults()
	f.DataDir = dir
	f.LocalDomains = []string{"example.test"}
	cfg, _ := f.Validate()
	sock := serve(t, dir, func() Env { return Env{Cfg: cfg, Store: db, Proc: &filter.Processor{Store: db, Cfg: cfg.Processor}} })

	eml := "../testdata/scenarios/request-new/message.eml"
	ics := filepath.Join(dir, "cal.ics")
	vcf := filepath.Join(dir, "c.vcf")
	md := filepath.Join(dir, "Maildir")
	os.MkdirAll(filepath.Join(md, "cur"), 0o700)
	// catchup reads bob's Maildir by its template, after a downtime.
	bobMD := filepath.Join(dir, "example.test", "bob")
	os.MkdirAll(filepath.Join(bobMD, "new"), 0o700)
	filter.RecordStart(context.Background(), db, time.Unix(1, 0))
	filter.RecordStart(context.Background(), db, time.Now())
	raw, err := os.ReadFile(eml)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		ics:                                   "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:imp-1@example.test\r\nDTSTAMP:20261125T100000Z\r\nDTSTART:20261201T100000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		vcf:                                   "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carol\r\nEMAIL:carol@remote.test\r\nEND:VCARD\r\n",
		filepath.Join(md, "cur", "1.M1.host"): string(raw),
		filepath.Join(bobMD, "new", strconv.FormatInt(time.Now().Unix(), 10)+".M1.host"): string(raw),
	} {
		if err := os.WriteFile(name, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	commands := [][]string{
		{"user", "add", "bob@example.test"},
		{"user", "password", "bob@example.test"},
		{"contacts", "import", "bob@example.test", vcf},
		{"import", "bob@example.test", ics},
		{"check", "-user", "bob@example.test", eml},
		{"process", "-json", "-user=bob@example.test", eml},
		{"scan", "-json", "-user", "bob@example.test", md},
		{"import", "bob@example.test", "-"},
		{"catchup", "-maildirs", filepath.Join(dir, "%d", "%n")},
	}
	for _, args := range commands {
		stdin := "app-password\n"
		if args[len(args)-1] == "-" {
			stdin = string(mustRead(t, ics))
		}
		var out bytes.Buffer
		code, msg, err := Call(context.Background(), sock, args, LocalClient{Stdin: strings.NewReader(stdin)}, &out)
		if err != nil || code != 0 || strings.Contains(msg+out.String(), "refused") {
			t.Errorf("%v: exit %d %q %v\n%s", args, code, msg, err, out.String())
		}
	}
	// Every reading command is in the list above.
	for _, fc := range fileCommands {
		found := false
		for _, args := range commands {
			found = found || (len(args) >= len(fc.words) && equalWords(args, fc.words))
		}
		if !found {
			t.Errorf("no run of %v", fc.words)
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
