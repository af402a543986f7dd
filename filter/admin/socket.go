package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"imipd/filter/conn"
)

// The admin socket protocol: one command per connection, JSON objects one
// per line.
//
//	client → {"args":["events","-json","bob@example.test"]}
//	server → {"read":"invite.eml"}          the command needs a file of the client's
//	client → {"data":"<base64>"} or {"error":"no such file"}
//	server → {"list":"Maildir/cur"}         the command needs a directory listing
//	client → {"files":[{"name","mtime","size"}...]} or {"error":"..."}
//
// The client answers read and list requests only for what its own command
// line named for this command (access.go: the FILE of import, contacts
// import, check and process; standard input for user password and "-";
// the MAILDIR of scan, its cur/ and new/, and the files it listed there).
// Every other request gets {"error":...} and nothing is read.
//
//	server → {"out":"text"}                  output, in order
//	server → {"status":"text"}               a progress line for the client's terminal
//	server → {"exit":0}                      0 ok, 1 operational error, 2 usage error; "error" says why
type frame struct {
	Args   []string   `json:"args,omitempty"`
	Read   string     `json:"read,omitempty"`
	Msg    bool       `json:"msg,omitempty"` // Read is a listed message file: ReadMessage
	Data   []byte     `json:"data,omitempty"`
	List   string     `json:"list,omitempty"`
	Files  []FileInfo `json:"files,omitempty"`
	Out    string     `json:"out,omitempty"`
	Status string     `json:"status,omitempty"`
	Exit   *int       `json:"exit,omitempty"`
	Error  string     `json:"error,omitempty"`
}

// commandTimeout bounds one command on the socket.
const commandTimeout = 10 * time.Minute

// Server answers imipctl on a unix socket inside the daemon.
type Server struct {
	Env func() Env // the daemon's store and processor; Out and ReadFile are set per connection
	Log *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	wg     sync.WaitGroup
}

// Listen opens the socket at path, readable and writable by the owner only
// (the admin socket changes calendars). A stale socket file is replaced.
func Listen(path string) (net.Listener, error) {
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s: another imipd is serving it", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The data directory is 0700 already; the socket is 0600 on top.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

// Serve answers connections until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		// Add under the lock that Shutdown takes before it waits, so no Add
		// races with Wait (a connection accepted as Shutdown begins).
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(conn)
		}()
	}
}

// Shutdown stops accepting and waits for running commands (or ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(commandTimeout))
	dec := json.NewDecoder(bufio.NewReader(io.LimitReader(c, 256<<20)))
	enc := json.NewEncoder(c)
	var req frame
	if err := dec.Decode(&req); err != nil {
		return
	}
	env := s.Env()
	var mu sync.Mutex
	send := func(f frame) error {
		mu.Lock()
		defer mu.Unlock()
		return enc.Encode(f)
	}
	env.Out = writerFunc(func(p []byte) (int, error) {
		if err := send(frame{Out: string(p)}); err != nil {
			return 0, err
		}
		return len(p), nil
	})
	env.Client = &remoteClient{send: send, dec: dec}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	code, msg := 0, ""
	func() {
		defer conn.Recover(func(p *conn.Panic) {
			code, msg = 1, fmt.Sprintf("internal error: %v", p.Value)
			if s.Log != nil {
				s.Log.Error("admin command panicked", "args", req.Args, "panic", p)
			}
		})()
		if err := Run(ctx, env, req.Args); err != nil {
			code, msg = ExitCode(err), err.Error()
		}
	}()
	if s.Log != nil {
		s.Log.Info("admin command", "args", req.Args, "exit", code)
	}
	send(frame{Exit: &code, Error: msg})
}

// ExitCode maps a command's error to the exit status (docs/rules.md "Interfaces").
func ExitCode(err error) int {
	var ue UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// remoteClient asks imipctl, over the socket, for what lives on its side.
type remoteClient struct {
	send func(frame) error
	dec  *json.Decoder
}

func (r *remoteClient) ask(req frame, what string) (frame, error) {
	if err := r.send(req); err != nil {
		return frame{}, err
	}
	var resp frame
	if err := r.dec.Decode(&resp); err != nil {
		return frame{}, fmt.Errorf("reading %s from the client: %w", what, err)
	}
	if resp.Error != "" {
		return frame{}, errors.New(resp.Error)
	}
	return resp, nil
}

func (r *remoteClient) ReadFile(path string) ([]byte, error) {
	resp, err := r.ask(frame{Read: path}, path)
	return resp.Data, err
}

func (r *remoteClient) ReadMessage(path string) ([]byte, error) {
	resp, err := r.ask(frame{Read: path, Msg: true}, path)
	return resp.Data, err
}

func (r *remoteClient) ReadDir(path string) ([]FileInfo, error) {
	resp, err := r.ask(frame{List: path}, path)
	return resp.Files, err
}

func (r *remoteClient) Progress(format string, a ...any) {
	r.send(frame{Status: fmt.Sprintf(format, a...)})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// ErrNoDaemon means nothing answers on the admin socket.
var ErrNoDaemon = errors.New("admin: no daemon on the socket")

// Call runs a command in the daemon listening on path. client serves the
// daemon's requests for files, listings and progress, but only for what args
// name for this command (accessFor): any other request is answered with an
// error and nothing is read. Output goes to out. It returns the command's
// exit status and error text, or ErrNoDaemon when no daemon answers.
func Call(ctx context.Context, path string, args []string, client Client, out io.Writer) (int, string, error) {
	client = guardedClient{Client: client, a: accessFor(args)}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", ErrNoDaemon, err)
	}
	defer conn.Close()
	enc := json.NewEncoder(conn)
	dec := json.NewDecoder(bufio.NewReader(conn))
	if err := enc.Encode(frame{Args: args}); err != nil {
		return 0, "", err
	}
	for {
		var f frame
		if err := dec.Decode(&f); err != nil {
			return 1, "", fmt.Errorf("admin socket: %w", err)
		}
		switch {
		case f.Exit != nil:
			return *f.Exit, f.Error, nil
		case f.Read != "":
			read := client.ReadFile
			if f.Msg {
				read = client.ReadMessage
			}
			data, err := read(f.Read)
			resp := frame{Data: data}
			if err != nil {
				resp = frame{Error: err.Error()}
			}
			if err := enc.Encode(resp); err != nil {
				return 1, "", err
			}
		case f.List != "":
			files, err := client.ReadDir(f.List)
			resp := frame{Files: files}
			if err != nil {
				resp = frame{Error: err.Error()}
			}
			if err := enc.Encode(resp); err != nil {
				return 1, "", err
			}
		case f.Status != "":
			client.Progress("%s", f.Status)
		default:
			if _, err := io.WriteString(out, f.Out); err != nil {
				return 1, "", err
			}
		}
	}
}
