package session

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

// sink records each Write it gets, as the recording stream would.
type sink struct {
	mu     sync.Mutex
	writes [][]byte
	closed bool
	fail   error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	s.writes = append(s.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (s *sink) Close() error { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }

func (s *sink) snapshot() ([][]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.writes...), s.closed
}

func TestBatchedWriterGathersKeystrokes(t *testing.T) {
	s := &sink{}
	b := newBatchedWriter(s)
	for _, k := range []string{"l", "s", "\r"} {
		if _, err := b.Write([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if w, _ := s.snapshot(); len(w) != 0 {
		t.Fatalf("keystrokes went out one by one: %q", w)
	}
	time.Sleep(3 * flushEvery)
	if w, _ := s.snapshot(); len(w) != 1 || string(w[0]) != "ls\r" {
		t.Fatalf("after the flush interval: %q", w)
	}
	// A large write goes out at once; Close flushes the rest and closes.
	big := bytes.Repeat([]byte("x"), flushSize)
	b.Write(big)
	if w, _ := s.snapshot(); len(w) != 2 || len(w[1]) != flushSize {
		t.Fatalf("a full buffer was not flushed at once: %d writes", len(w))
	}
	b.Write([]byte("tail"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	w, closed := s.snapshot()
	if !closed || len(w) != 3 || string(w[2]) != "tail" {
		t.Fatalf("close: closed %v, writes %d", closed, len(w))
	}
	if _, err := b.Write([]byte("late")); err == nil {
		t.Error("write after close accepted")
	}
}

func TestBatchedWriterKeepsTheFirstError(t *testing.T) {
	boom := errors.New("stream reset")
	s := &sink{fail: boom}
	b := newBatchedWriter(s)
	b.Write(bytes.Repeat([]byte("x"), flushSize)) // flushed now, and fails
	if _, err := b.Write([]byte("y")); !errors.Is(err, boom) {
		t.Fatalf("write after a failed flush: %v", err)
	}
	if err := b.Close(); !errors.Is(err, boom) {
		t.Fatalf("close: %v", err)
	}
}
