package milter

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// recConn records the writes that reach the socket.
type recConn struct {
	net.Conn
	writes [][]byte
}

func (r *recConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}
func (r *recConn) SetWriteDeadline(time.Time) error { return nil }

func milterPacket(code byte, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(data)))
	return append(append(b, code), data...)
}

// An end-of-message answer (modifications, then accept) reaches the socket
// in one write, however go-milter splits it.
func TestMilterConnAnswerOneWrite(t *testing.T) {
	rc := &recConn{}
	c := &milterConn{Conn: rc, wto: time.Second}
	hdr := milterPacket('h', "X-IMIP-Processed\x00applied\x00")
	del := milterPacket('m', "\x00\x00\x00\x01X-IMIP-Processed\x00\x00")
	acc := milterPacket('a', "")
	for _, p := range [][]byte{del[:5], del[5:], hdr[:5], hdr[5:]} {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(rc.writes) != 0 {
		t.Fatalf("%d writes before the final answer", len(rc.writes))
	}
	// accept has no data: its 5 bytes end the answer; go-milter's empty
	// data write after it writes nothing.
	for _, p := range [][]byte{acc, nil} {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	want := string(del) + string(hdr) + string(acc)
	if len(rc.writes) != 1 || string(rc.writes[0]) != want {
		t.Fatalf("writes %q, want one %q", rc.writes, want)
	}
	// The negotiation answer and a continue go out at once.
	rc.writes = nil
	c.Write(milterPacket('c', ""))
	if len(rc.writes) != 1 {
		t.Fatalf("continue: %d writes", len(rc.writes))
	}
}

// The read side hands go-milter whole packets and refuses, before go-milter
// reads them, the ones it would panic on or allocate too much for.
func TestMilterConnPacketGuard(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		err  error
	}{
		{"good", append(milterPacket('M', "<a@example.test>\x00"), milterPacket('B', strings.Repeat("x", 70000))...), nil},
		{"empty packet", []byte{0, 0, 0, 0}, errMilterPacket},
		{"MAIL without NUL", milterPacket('M', "<a@example.test>"), errMilterPacket},
		{"RCPT without NUL", milterPacket('R', "<a@example.test>"), errMilterPacket},
		{"connect without family", milterPacket('C', "host\x00"), errMilterPacket},
		{"MAIL over 8 KiB", milterPacket('M', strings.Repeat("a", 9000)+"\x00"), errMilterPacket},
		{"over 1 MiB", []byte{0, 0x10, 0, 1, 'B'}, errMilterPacketSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, cli := net.Pipe()
			defer cli.Close()
			go func() { cli.Write(c.in); cli.Close() }()
			mc := newMilterConn(srv, Options{ReadTimeout: 5 * time.Second, WriteTimeout: time.Second})
			defer mc.release()
			got, err := io.ReadAll(mc)
			if c.err == nil {
				if err != nil || string(got) != string(c.in) {
					t.Fatalf("read %d bytes, %v; want all %d", len(got), err, len(c.in))
				}
				return
			}
			if !errors.Is(err, c.err) || len(got) != 0 {
				t.Fatalf("read %d bytes, %v; want nothing and %v", len(got), err, c.err)
			}
		})
	}
}
