package wsconn

import (
	"net"
	"sync"
)

// BatchConn is a net.Conn whose writes can be held back while its owner
// gathers a batch, then sent in one write: several websocket messages (and
// their TLS records, when BatchConn sits under TLS) cost one syscall and one
// wake-up of the peer instead of one each.
//
// Outside a batch every Write goes straight through, so code that knows
// nothing of batches (TLS handshakes, gorilla's pings and close frames, an
// HTTP server) works unchanged. Inside one (Hold ... Flush) writes are
// appended to a buffer taken from a pool when the batch starts writing and
// given back at Flush: an idle connection holds no buffer. A write that would
// take the buffer past batchBytes sends what is held first, so a batch never
// holds more than that.
//
// Ownership: the one writer that calls Hold must call Flush (internal/mux
// does both under its write lock); Write and Flush may be called from any
// goroutine.
type BatchConn struct {
	net.Conn

	mu   sync.Mutex
	held bool    // between Hold and Flush
	buf  *[]byte // held bytes, from batchBufs; nil when none
}

// batchBytes bounds what one batch holds before it is sent.
const batchBytes = 64 << 10

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, batchBytes); return &b }}

// NewBatchConn wraps c.
func NewBatchConn(c net.Conn) *BatchConn { return &BatchConn{Conn: c} }

// Hold starts a batch: writes are held until Flush.
func (c *BatchConn) Hold() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// Flush ends the batch and sends what it held in one write.
func (c *BatchConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	return c.sendLocked()
}

// sendLocked writes the held bytes and gives the buffer back; c.mu is held.
func (c *BatchConn) sendLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.Conn.Write(*b)
	*b = (*b)[:0]
	batchBufs.Put(b)
	return err
}

// Write sends p, or holds it during a batch.
func (c *BatchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf != nil && len(*c.buf)+len(p) > batchBytes {
		if err := c.sendLocked(); err != nil {
			return 0, err
		}
	}
	if !c.held || len(p) > batchBytes/2 {
		if err := c.sendLocked(); err != nil {
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = batchBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// Close closes the connection at once, without waiting for a write in
// progress (it fails) and without sending what a batch still holds: call
// Flush first for that.
func (c *BatchConn) Close() error { return c.Conn.Close() }

// NetConn returns the wrapped connection (as tls.Conn.NetConn does).
func (c *BatchConn) NetConn() net.Conn { return c.Conn }

// Batcher is what a batching writer needs from a connection.
type Batcher interface {
	Hold()
	Flush() error
}

// FindBatcher returns the BatchConn (or other Batcher) under c, looking
// through wrappers that expose NetConn (tls.Conn does), or nil.
func FindBatcher(c net.Conn) Batcher {
	for range 4 {
		if b, ok := c.(Batcher); ok {
			return b
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// BatchListener wraps every connection ln accepts in a BatchConn.
func BatchListener(ln net.Listener) net.Listener { return batchListener{ln} }

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewBatchConn(c), nil
}
