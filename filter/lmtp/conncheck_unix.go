//go:build unix

package lmtp

import (
	"errors"
	"net"
	"syscall"
)

// connAlive says whether an idle connection is still usable: nothing to
// read (a peer that closed it shows end of file; one that said something
// unasked, such as a 421 before closing, shows data). It peeks without
// blocking and consumes nothing.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	cerr := rc.Control(func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
	})
	return cerr == nil && alive
}
