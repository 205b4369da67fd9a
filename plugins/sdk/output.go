package sdk

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// MaxLine is the longest output line a plugin sends; longer lines are cut
// and marked. The agent also caps a run's total output.
const MaxLine = 4 << 10

// Output streams Fix output lines to the agent. It is safe for concurrent use.
type Output struct {
	mu   sync.Mutex
	send func(line string) error // owned by the gRPC server glue
	err  error                   // first send error; later lines are dropped
}

// Println sends one line.
func (o *Output) Println(a ...any) { o.line(strings.TrimSuffix(fmt.Sprintln(a...), "\n")) }

// Printf sends one formatted line.
func (o *Output) Printf(format string, a ...any) { o.line(fmt.Sprintf(format, a...)) }

// Writer returns an io.Writer that sends what is written to it line by line:
// hand it to exec.Cmd's Stdout and Stderr so a child's output reaches the
// agent (a plugin's own stdout is not connected to anything). Close flushes
// a final unterminated line.
func (o *Output) Writer() io.WriteCloser { return &lineWriter{out: o} }

// Err returns the first error sending a line (the agent went away).
func (o *Output) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

func (o *Output) line(s string) {
	if len(s) > MaxLine {
		s = s[:MaxLine] + " …[line truncated]"
	}
	for _, part := range strings.Split(s, "\n") {
		o.mu.Lock()
		if o.err == nil && o.send != nil {
			o.err = o.send(part)
		}
		o.mu.Unlock()
	}
}

type lineWriter struct {
	out *Output
	mu  sync.Mutex
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.out.line(strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > MaxLine {
		w.out.line(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.out.line(string(w.buf))
		w.buf = nil
	}
	return nil
}
