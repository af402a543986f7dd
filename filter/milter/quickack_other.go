//go:build !linux

package milter

import (
	"net"
	"syscall"
)

// TCP_QUICKACK is Linux-only: elsewhere there is nothing to re-arm.
func quickAckConn(net.Conn) syscall.RawConn { return nil }

func quickAck(syscall.RawConn) {}
