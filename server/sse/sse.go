// Package sse writes server-sent event streams (text/event-stream) for the
// relay's long-lived GETs: the API's job progress and the console's agent
// presence. Each write is bounded by a deadline and flushed at once, so a
// dead browser is found at the next event or keepalive.
package sse

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Writer writes one response's event stream. It is not safe for
// concurrent use: the handler's goroutine owns the stream.
type Writer struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
}

// Start turns w into an event stream: it lifts the server's read deadline
// (a stream reads nothing, and the relay's ReadTimeout would end it), sets
// the headers (no caching, no proxy buffering) and writes the reconnect
// delay the EventSource should use (2 s) and a first comment. Each later
// write must finish within writeTimeout. ok is false when the stream could
// not start (the client is gone); the handler then just returns.
func Start(w http.ResponseWriter, writeTimeout time.Duration) (s *Writer, ok bool) {
	s = &Writer{w: w, rc: http.NewResponseController(w), writeTimeout: writeTimeout}
	if err := s.rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	if !s.write("retry: 2000\n: connected\n\n") {
		return nil, false
	}
	return s, true
}

// Event writes an event named name whose data is data (one line: JSON or
// a quoted string) and flushes it; false when the client is gone.
func (s *Writer) Event(name string, data []byte) bool {
	return s.write("event: %s\ndata: %s\n\n", name, data)
}

// Keepalive writes a comment that EventSource ignores, so that an idle
// stream stays open through proxies and a dead client is found; false when
// the client is gone.
func (s *Writer) Keepalive() bool {
	return s.write(": keepalive\n\n")
}

func (s *Writer) write(format string, args ...any) bool {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return false
	}
	if _, err := fmt.Fprintf(s.w, format, args...); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}
