package conn

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Panic is a panic recovered by Recover: the value and the stack of the
// goroutine that panicked. It is an error (for a transport's error path)
// and logs as a group of both.
type Panic struct {
	Value any
	Stack []byte
}

// Error implements error.
func (p *Panic) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// LogValue implements slog.LogValuer: the value and the stack.
func (p *Panic) LogValue() slog.Value {
	return slog.GroupValue(slog.String("value", fmt.Sprint(p.Value)), slog.String("stack", string(p.Stack)))
}

// Recover is the one panic guard of imipd's connection and request
// goroutines. Deferred as
//
//	defer conn.Recover(func(p *conn.Panic) { log.Error("…", "panic", p); answer = fail })()
//
// it stops a panic in the rest of the function and hands it to handle,
// which logs it with what only the caller knows (queue id, stage) and sets
// the caller's answer (accept, a 451, a 500): one bad message or request
// never takes the daemon down. http.ErrAbortHandler is raised again: it
// is net/http's own way to abort a response, not a fault.
func Recover(handle func(*Panic)) func() {
	return func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		handle(&Panic{Value: v, Stack: debug.Stack()})
	}
}
