package mux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// WriteTo hands over every byte in order, across many windows, and ends
// with a nil error at the peer's Close.
func TestWriteToCopiesWholeStream(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	c, s := p.open(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB, many windows
	go func() {
		for b := payload; len(b) > 0; {
			n := min(len(b), 1+len(b)%40_000)
			c.Write(b[:n])
			b = b[n:]
		}
		c.CloseWrite()
	}()
	var got bytes.Buffer
	n, err := s.WriteTo(&got)
	if err != nil || n != int64(len(payload)) || !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("WriteTo: %d of %d bytes, err %v", n, len(payload), err)
	}
}

// A failing writer ends WriteTo with its error.
func TestWriteToStopsOnWriterError(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	c, s := p.open(t)
	c.Write([]byte("x"))
	boom := errors.New("technician gone")
	_, err := s.WriteTo(failWriter{boom})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteTo: %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// A session's byte stream takes SessionWindow bytes before its reader
// reads; any other stream wire.InitialWindow. Past that the writer waits.
func TestSessionStreamWindow(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		window int
	}{
		{wire.SSHStreamKind("0192d4e0-7a3b-7c4d-8e5f-6a7b8c9d0e1f"), SessionWindow},
		{"test", wire.InitialWindow},
	} {
		p := newPair(t, Config{}, Config{})
		c, err := p.client.Open(context.Background(), tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		s := <-p.accepted
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(make([]byte, tc.window)); err != nil {
			t.Fatalf("%s: writing one window before any read: %v", tc.kind, err)
		}
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write([]byte{1}); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: a write past the window did not wait: %v", tc.kind, err)
		}
		c.SetWriteDeadline(time.Time{})
		go c.Write([]byte{2})
		got, err := io.ReadAll(io.LimitReader(s, int64(tc.window+1)))
		if err != nil || len(got) != tc.window+1 || got[tc.window] != 2 {
			t.Fatalf("%s: read %d bytes, err %v", tc.kind, len(got), err)
		}
	}
}
