package conn

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// SplitAddr parses the config's address syntax, "inet:HOST:PORT" or
// "unix:/PATH" (as Postfix writes milter addresses), into a network and an
// address for package net.
func SplitAddr(addr string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(addr, "inet:"):
		return "tcp", strings.TrimPrefix(addr, "inet:"), nil
	case strings.HasPrefix(addr, "unix:"):
		return "unix", strings.TrimPrefix(addr, "unix:"), nil
	}
	return "", "", fmt.Errorf("address %q: want inet:HOST:PORT or unix:/PATH", addr)
}

// ListenOptions say who may connect to a listener (SECURITY.md
// "Listeners"). A unix socket is guarded by its file mode and group; a TCP
// listener by its peers.
type ListenOptions struct {
	// SocketMode is the unix socket's file mode, default 0660 (owner and
	// group: the MTA's group, SocketGroup).
	SocketMode fs.FileMode
	// SocketGroup is the group the unix socket is given (e.g. "postfix");
	// "" keeps imipd's own.
	SocketGroup string
	// Peers are the addresses a TCP connection may come from; a connection
	// from anyone else is closed at once with a log line. Empty:
	// defaultPeers.
	Peers []netip.Prefix
	// Log gets the line of each refused connection; nil discards.
	Log *slog.Logger
}

// defaultPeers are the TCP peers a listener accepts without a peers key:
// the loopback address of each family.
var defaultPeers = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

// Listen opens a listener for "inet:HOST:PORT" or "unix:/PATH". A unix
// socket file left behind by an earlier run is removed first (one that
// another process still serves is an error); the socket then gets
// opt.SocketMode and opt.SocketGroup before the first connection is
// accepted. A TCP listener accepts only opt.Peers.
func Listen(addr string, opt ListenOptions) (net.Listener, error) {
	network, address, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		return listenUnix(addr, address, opt)
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	peers := opt.Peers
	if len(peers) == 0 {
		peers = defaultPeers
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &peerListener{Listener: ln, peers: peers, log: log}, nil
}

func listenUnix(addr, path string, opt ListenOptions) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another process is serving it", addr)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen %s: removing the stale socket: %w", addr, err)
		}
	}
	gid := -1
	if opt.SocketGroup != "" {
		g, err := user.LookupGroup(opt.SocketGroup)
		if err != nil {
			return nil, fmt.Errorf("listen %s: socket_group: %w", addr, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("listen %s: socket_group %s: gid %q", addr, opt.SocketGroup, g.Gid)
		}
	}
	mode := opt.SocketMode
	if mode == 0 {
		mode = 0o660
	}
	// connect(2) needs write permission on the socket: created with the
	// process umask (0022 unless changed: nobody else may write), it is
	// opened to SocketMode and SocketGroup only here.
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: socket_group %s: %w", addr, opt.SocketGroup, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: socket_mode %#o: %w", addr, mode, err)
	}
	return ln, nil
}

// peerListener closes, at accept, every TCP connection whose remote
// address is not one of peers.
type peerListener struct {
	net.Listener
	peers []netip.Prefix
	log   *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if peerAllowed(c.RemoteAddr(), l.peers) {
			return c, nil
		}
		l.log.Warn("connection refused: peer not allowed (peers)", "remote", c.RemoteAddr().String(), "listen", l.Addr().String())
		c.Close()
	}
}

// peerAllowed tells whether a connection's remote address is one of
// peers. Non-IP addresses (a unix socket's) are allowed: their file mode
// guards them.
func peerAllowed(remote net.Addr, peers []netip.Prefix) bool {
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return true
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range peers {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParsePeers parses the peers key: IP addresses and CIDR prefixes.
func ParsePeers(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var bad []string
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		bad = append(bad, fmt.Sprintf("%q", s))
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%s: want IP addresses or CIDR prefixes", strings.Join(bad, ", "))
	}
	return out, nil
}

// ParseSocketMode parses the socket_mode key ("0660"); "" is 0 (the default).
func ParseSocketMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v == 0 || v > 0o777 {
		return 0, fmt.Errorf("%q: want an octal file mode such as \"0660\"", s)
	}
	return fs.FileMode(v), nil
}

// ListenHost returns the host of a listen address ("inet:HOST:PORT",
// "HOST:PORT"; "" for a unix socket) and whether it is confined to
// loopback: a loopback address or "localhost". An empty host (all
// interfaces), 0.0.0.0, :: and every other address reach beyond the
// machine. CalDAV and the MTA-facing listeners use this one test.
func ListenHost(addr string) (host string, loopback bool, err error) {
	if strings.HasPrefix(addr, "unix:") {
		return "", true, nil
	}
	host, _, err = net.SplitHostPort(strings.TrimPrefix(addr, "inet:"))
	if err != nil {
		return "", false, err
	}
	return host, loopbackHost(host), nil
}

// loopbackHost reports whether a listen host is a loopback address.
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Dial connects to "inet:HOST:PORT" or "unix:/PATH".
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	network, address, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}
