//go:build linux

package milter

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// quickAckConn returns the raw TCP connection for quickAck, nil for others.
func quickAckConn(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil // no fd: no quick ACKs, the milter still works
	}
	return rc
}

// quickAck re-arms TCP_QUICKACK (tcp(7): the kernel clears it again by
// itself), so the MTA's next packet is not held by our delayed ACK against
// its Nagle (postfix-dovecot-notes.md "the 40 ms stall"). A failure only
// costs speed, so it is ignored.
func quickAck(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
