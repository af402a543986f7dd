// Package conn is the plumbing every imipd listener shares, so that each
// adapter (milter, LMTP, push, CalDAV, the admin socket) does not grow its
// own: the config's address syntax ("inet:HOST:PORT", "unix:/PATH") for
// Listen and Dial, who may connect (peers, a unix socket's mode and group;
// SECURITY.md "Listeners"), the one connection Table that caps a
// listener's connections, and Recover, the one guard that turns a panic
// in a connection's goroutine into a logged error instead of a dead
// daemon.
package conn
