// Package conn is the plumbing imipd's adapters share, so that each
// (milter, LMTP, push, the admin socket; the outbox sender dials with it)
// does not grow its own: the config's address syntax ("inet:HOST:PORT", "unix:/PATH") for
// Listen and Dial, who may connect (peers, a unix socket's mode and group;
// SECURITY.md "Listeners"), the one connection Table that caps a
// listener's connections, and Recover, the one guard that turns a panic
// in a connection's goroutine into a logged error instead of a dead
// daemon.
package conn
