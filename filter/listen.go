package filter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
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

// Listen opens a listener for "inet:HOST:PORT" or "unix:/PATH". A unix
// socket file left behind by an earlier run is removed first; the socket is
// made group-writable (0660) so the MTA's group can connect.
func Listen(addr string) (net.Listener, error) {
	network, address, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if fi, err := os.Lstat(address); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			if c, err := net.Dial("unix", address); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen %s: another process is serving it", addr)
			}
			os.Remove(address)
		}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o660); err != nil && !errors.Is(err, fs.ErrNotExist) {
			ln.Close()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
	}
	return ln, nil
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
