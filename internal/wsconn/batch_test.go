package wsconn

import (
	"bytes"
	"net"
	"testing"
)

// recordConn records each write that reaches it.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestBatchConn(t *testing.T) {
	rc := &recordConn{}
	c := NewBatchConn(rc)
	c.Write([]byte("a")) // outside a batch: straight through
	if len(rc.writes) != 1 {
		t.Fatalf("write outside a batch was held: %d writes", len(rc.writes))
	}
	c.Hold()
	c.Write([]byte("b"))
	c.Write([]byte("c"))
	if len(rc.writes) != 1 || c.buf == nil {
		t.Fatalf("writes in a batch went out early: %d writes", len(rc.writes))
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(rc.writes) != 2 || string(rc.writes[1]) != "bc" {
		t.Fatalf("batch sent as %q", rc.writes)
	}
	if c.buf != nil {
		t.Fatal("a flushed connection still holds a buffer")
	}
	// A batch never holds more than batchBytes; large writes pass through
	// after what was held, in order.
	c.Hold()
	small := bytes.Repeat([]byte("s"), batchBytes/4)
	big := bytes.Repeat([]byte("B"), batchBytes)
	for range 5 {
		c.Write(small)
	}
	c.Write(big)
	c.Write([]byte("z"))
	c.Flush()
	var all []byte
	for _, w := range rc.writes[2:] {
		if len(w) > batchBytes {
			t.Fatalf("a write of %d bytes exceeds the batch bound", len(w))
		}
		all = append(all, w...)
	}
	want := append(append(bytes.Repeat(small, 5), big...), 'z')
	if !bytes.Equal(all, want) {
		t.Fatal("batched bytes out of order")
	}
}

func TestFindBatcher(t *testing.T) {
	b := NewBatchConn(&recordConn{})
	if FindBatcher(b) == nil {
		t.Fatal("no batcher in a BatchConn")
	}
	if FindBatcher(wrapped{b}) == nil {
		t.Fatal("no batcher under a wrapper with NetConn")
	}
	if FindBatcher(&recordConn{}) != nil {
		t.Fatal("batcher found in a plain conn")
	}
}

type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }
