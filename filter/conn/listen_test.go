//go:build unix

package conn

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink the listener's goroutine and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Issue 13, attack 14: a TCP listener accepts only its peers; a connection
// from anyone else is closed at once with a log line, before a milter or
// LMTP session (and its macros or Authentication-Results) is believed.
func TestListenPeers(t *testing.T) {
	for _, c := range []struct {
		name  string
		peers []netip.Prefix
		ok    bool
	}{
		{"default-loopback", nil, true},
		{"listed", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, true},
		{"prefix", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, true},
		{"not-a-peer", []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &syncBuffer{}
			ln, err := Listen("inet:127.0.0.1:0", ListenOptions{Peers: c.peers, Log: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Write([]byte("220 hello\r\n"))
					c.Close()
				}
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			l, err := bufio.NewReader(conn).ReadString('\n')
			if isTimeout(err) {
				t.Fatal("neither served nor closed")
			}
			if served := err == nil && strings.HasPrefix(l, "220"); served != c.ok {
				t.Fatalf("served %v (%q, %v), want %v", served, l, err, c.ok)
			}
			if !c.ok && !strings.Contains(logs.String(), "peer not allowed") {
				t.Errorf("no log line for the refused peer: %q", logs.String())
			}
		})
	}
}

// A unix socket gets its mode and group right after it is created; a
// stale socket file is replaced, one still served is an error.
func TestListenUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "imipd-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "m.sock")
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("no name for gid %d: %v", os.Getgid(), err)
	}
	// A stale socket left by a process that died.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	ln, err := Listen("unix:"+path, ListenOptions{SocketMode: 0o620, SocketGroup: g.Name})
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o620 {
		t.Errorf("mode %v, want 0620", fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) != os.Getgid() {
		t.Errorf("gid %d, want %d", st.Gid, os.Getgid())
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := Listen("unix:"+path, ListenOptions{}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("a served socket was taken over: %v", err)
	}
	if _, err := Listen("unix:"+filepath.Join(dir, "x.sock"), ListenOptions{SocketGroup: "no-such-group-imipd"}); err == nil ||
		!strings.Contains(err.Error(), "socket_group") {
		t.Errorf("unknown group: %v", err)
	}
}
