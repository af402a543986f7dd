package conn

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// A panic reaches the handler with its value and stack, logs as one
// group, and the function returns normally with the caller's answer set.
func TestRecover(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	answer := func() (err error) {
		defer Recover(func(p *Panic) {
			log.Error("guarded", "panic", p)
			err = p
		})()
		var m map[string]int
		m["x"] = 1 // a nil-map write panics
		return nil
	}()
	var p *Panic
	if !errors.As(answer, &p) || !strings.Contains(p.Error(), "nil map") {
		t.Fatalf("answer = %v, want the *Panic", answer)
	}
	if !strings.Contains(string(p.Stack), "TestRecover") {
		t.Errorf("stack does not show the panicking function:\n%s", p.Stack)
	}
	if s := logs.String(); !strings.Contains(s, "panic.value=") || !strings.Contains(s, "panic.stack=") {
		t.Errorf("log line lacks the group: %s", s)
	}
}

// No panic: the handler is not called. http.ErrAbortHandler passes
// through to net/http.
func TestRecoverQuietAndAbort(t *testing.T) {
	called := false
	func() {
		defer Recover(func(*Panic) { called = true })()
	}()
	if called {
		t.Fatal("handler called without a panic")
	}
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler raised again", v)
		}
		if called {
			t.Fatal("handler called for http.ErrAbortHandler")
		}
	}()
	func() {
		defer Recover(func(*Panic) { called = true })()
		panic(http.ErrAbortHandler)
	}()
}
