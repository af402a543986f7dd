package milter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"imipd/itip/imip"
)

// writeAll writes b to p in chunks of n bytes from a new goroutine, then
// closes the writing side; the result is the first write error.
func writeAll(p *bodyPipe, b []byte, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for len(b) > 0 {
			k := min(n, len(b))
			if _, err := p.Write(b[:k]); err != nil {
				done <- err
				return
			}
			b = b[k:]
		}
		p.closeWrite(nil)
		done <- nil
	}()
	return done
}

func TestBodyPipeCarriesEveryByte(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789-abc\r\n"), 5000)
	for _, n := range []int{1, 13, 4096, 65535} {
		p := newBodyPipe()
		done := writeAll(p, want, n)
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, want) || <-done != nil {
			t.Fatalf("chunk %d: %d bytes, %v; want %d", n, len(got), err, len(want))
		}
	}
}

func TestBodyPipeSkip(t *testing.T) {
	cases := []struct {
		name   string
		bol    bool
		chunks []string
		want   string // read after SkipToDash
	}{
		{"dash at a line start in a later chunk", true, []string{"QUJD\r\nQUJD\r\n", "QUJD\r\n--b1--\r\n"}, "--b1--\r\n"},
		{"dash at the very start, bol", true, []string{"--b1\r\nx"}, "--b1\r\nx"},
		{"dash at the very start, not bol", false, []string{"--x\r\n", "--b1\r\n"}, "--b1\r\n"},
		{"line start carried across chunks", true, []string{"QUJD\r\n", "-b\r\n"}, "-b\r\n"},
		{"no line start across chunks", true, []string{"QUJD", "-b\r\n", "tail"}, ""},
		{"dash inside lines only", true, []string{"a-b\r\nc-d\r\n"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newBodyPipe()
			p.SkipToDash(tc.bol)
			var got bytes.Buffer
			read := make(chan error, 1)
			go func() { _, err := io.Copy(&got, p); read <- err }()
			for _, c := range tc.chunks {
				if _, err := p.Write([]byte(c)); err != nil {
					t.Fatal(err)
				}
			}
			p.closeWrite(nil)
			if err := <-read; err != nil || got.String() != tc.want {
				t.Fatalf("read %q, %v; want %q", got.String(), err, tc.want)
			}
		})
	}
}

func TestBodyPipeSkippedWriteDoesNotWait(t *testing.T) {
	// Nobody reads: a chunk the skip drops whole returns at once.
	p := newBodyPipe()
	p.SkipToDash(true)
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(bytes.Repeat([]byte("QUJDRA==\r\n"), 6000))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a skipped chunk waited for a reader")
	}
}

// waitSignal is p.cond's locker in tests: the cond calls Unlock only as a
// goroutine starts to wait on it (Read, Write and the rest lock p.mu
// directly), so each Unlock tells that a side is now waiting, already
// among those a Broadcast wakes.
type waitSignal struct {
	*sync.Mutex
	waits chan struct{}
}

func (w waitSignal) Unlock() {
	w.Mutex.Unlock()
	select {
	case w.waits <- struct{}{}:
	default: // the test is not looking
	}
}

// pipeWaits reports each wait on p's cond; set it before using p.
func pipeWaits(p *bodyPipe) <-chan struct{} {
	w := waitSignal{Mutex: &p.mu, waits: make(chan struct{}, 16)}
	p.cond.L = w
	return w.waits
}

// pipeWaiting waits until a side of the pipe waits on it.
func pipeWaiting(t *testing.T, waits <-chan struct{}) {
	t.Helper()
	select {
	case <-waits:
	case <-time.After(10 * time.Second):
		t.Fatal("no side of the pipe waits")
	}
}

// pipeResult is what a side waiting on the pipe returned once woken.
func pipeResult(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting side of the pipe was not woken")
		return nil
	}
}

func TestBodyPipeSkipDropsWhatIsOffered(t *testing.T) {
	// The writer waits with a chunk offered; the reader asks to skip: the
	// offered bytes are dropped up to the dash line, and the rest is read.
	p := newBodyPipe()
	waiting := pipeWaits(p)
	done := writeAll(p, []byte("QUJD\r\nQUJD\r\n--b1--\r\n"), 1<<20)
	pipeWaiting(t, waiting) // the chunk is offered
	p.SkipToDash(true)
	got, err := io.ReadAll(p)
	if err != nil || string(got) != "--b1--\r\n" || <-done != nil {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestBodyPipeClose(t *testing.T) {
	boom := errors.New("boom")
	t.Run("closeRead ends a waiting write", func(t *testing.T) {
		p := newBodyPipe()
		waiting := pipeWaits(p)
		done := writeAll(p, []byte("data"), 4)
		pipeWaiting(t, waiting)
		p.closeRead(boom)
		if err := pipeResult(t, done); !errors.Is(err, boom) {
			t.Fatalf("write: %v", err)
		}
		if _, err := p.Write([]byte("x")); !errors.Is(err, boom) {
			t.Fatalf("later write: %v", err)
		}
		if _, err := p.Read(make([]byte, 4)); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("read: %v", err)
		}
	})
	t.Run("closeWrite with an error ends a waiting read", func(t *testing.T) {
		p := newBodyPipe()
		waiting := pipeWaits(p)
		read := make(chan error, 1)
		go func() { _, err := p.Read(make([]byte, 4)); read <- err }()
		pipeWaiting(t, waiting)
		p.closeWrite(boom)
		p.closeWrite(nil) // the first close counts
		if err := pipeResult(t, read); !errors.Is(err, boom) {
			t.Fatalf("read: %v", err)
		}
		if _, err := p.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("write after close: %v", err)
		}
	})
	t.Run("closeWrite(nil) is the end of input", func(t *testing.T) {
		p := newBodyPipe()
		p.closeWrite(nil)
		if n, err := p.Read(make([]byte, 4)); n != 0 || err != io.EOF {
			t.Fatalf("read: %d, %v", n, err)
		}
	})
}

func TestBodyPipeParse(t *testing.T) {
	// imip.Parse reading a bodyPipe (which drops skipped parts on the
	// writer's side) gives what it gives from the bytes.
	att := strings.Repeat(strings.Repeat("QUJD", 19)+"\r\n", 30000)
	cal := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\nUID:u1@example.test\r\nDTSTAMP:20261204T100000Z\r\n" +
		"ORGANIZER:mailto:org@example.test\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@remote.test\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	msgs := map[string]string{
		"attachment before calendar": "From: bob@remote.test\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain\r\n\r\nsee below\r\n-- \r\nBob\r\n" +
			"--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + att +
			"--b1\r\nContent-Type: text/calendar; method=REPLY\r\n\r\n" + cal + "--b1--\r\n",
		"attachment only": "From: bob@remote.test\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\nContent-Type: image/png\r\n\r\n" + att + "--b1--\r\nepilogue\r\n",
		"nested, dash lines in the attachment": "From: bob@remote.test\r\nContent-Type: multipart/mixed; boundary=out\r\n\r\n" +
			"--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\n" +
			strings.Repeat("-- not a boundary\r\n"+att[:78*64], 20) + "--in\r\nContent-Type: text/calendar; method=REPLY\r\n\r\n" + cal +
			"--in--\r\n--out--\r\n",
	}
	for name, raw := range msgs {
		for _, n := range []int{65535, 1000, 77} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				want, werr := imip.Parse(strings.NewReader(raw), imip.Limits{})
				if strings.Contains(raw, "text/calendar") != (len(want.Parts) == 1) {
					t.Fatalf("fixture: %d calendar parts from the bytes (%v)", len(want.Parts), werr)
				}
				p := newBodyPipe()
				done := writeAll(p, []byte(raw), n)
				got, err := imip.Parse(p, imip.Limits{})
				p.closeRead(errStreamFinished) // as milterStream does when Process returns
				if err := <-done; err != nil && !errors.Is(err, errStreamFinished) {
					t.Fatalf("write: %v", err)
				}
				if fmt.Sprint(err) != fmt.Sprint(werr) || !reflect.DeepEqual(got, want) {
					t.Fatalf("from the pipe: %+v, %v\nfrom the bytes: %+v, %v", got, err, want, werr)
				}
			})
		}
	}
}
