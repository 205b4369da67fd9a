package sessions

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// recordWriter records the size of each write (each is a frame to the agent).
type recordWriter struct {
	sizes []int
	buf   bytes.Buffer
}

func (w *recordWriter) Write(p []byte) (int, error) {
	w.sizes = append(w.sizes, len(p))
	return w.buf.Write(p)
}

// A technician's message that arrives in TLS-record-sized pieces reaches the
// stream in writes as large as the copy buffer, not one per piece.
func TestCopyMessageGathersPieces(t *testing.T) {
	msg := bytes.Repeat([]byte("k"), 100<<10)
	r := iotest.HalfReader(&piecewise{data: msg, piece: 16 << 10})
	var w recordWriter
	if err := copyMessage(&w, r, make([]byte, chunk), maxTechMessage); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.buf.Bytes(), msg) {
		t.Fatal("bytes changed on the way")
	}
	if len(w.sizes) != 2 || w.sizes[0] != chunk {
		t.Fatalf("writes of %v bytes; want one of %d and the rest", w.sizes, chunk)
	}
	// A one-byte message (a keystroke) goes at once, alone.
	w = recordWriter{}
	if err := copyMessage(&w, bytes.NewReader([]byte{'x'}), make([]byte, chunk), maxTechMessage); err != nil || len(w.sizes) != 1 {
		t.Fatalf("keystroke: %v, writes %v", err, w.sizes)
	}
}

// A message over the limit stops before the write that would pass it.
func TestCopyMessageLimit(t *testing.T) {
	var w recordWriter
	err := copyMessage(&w, bytes.NewReader(bytes.Repeat([]byte("k"), 3*chunk+1)), make([]byte, chunk), 3*chunk)
	if !errors.Is(err, errTooBig) {
		t.Fatalf("copy of a message one byte over the limit: %v, want errTooBig", err)
	}
	if w.buf.Len() > 3*chunk {
		t.Fatalf("%d bytes passed on, more than the limit %d", w.buf.Len(), 3*chunk)
	}
	w = recordWriter{}
	if err := copyMessage(&w, bytes.NewReader(bytes.Repeat([]byte("k"), 3*chunk)), make([]byte, chunk), 3*chunk); err != nil || w.buf.Len() != 3*chunk {
		t.Fatalf("a message of exactly the limit: %v, %d bytes", err, w.buf.Len())
	}
}

// piecewise returns at most piece bytes per Read, like a TLS connection.
type piecewise struct {
	data  []byte
	piece int
}

func (p *piecewise) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), p.piece)], p.data)
	p.data = p.data[n:]
	return n, nil
}
