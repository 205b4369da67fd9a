//go:build js && wasm

package main

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall/js"
	"time"
)

// queue is an unbounded FIFO of byte slices: JavaScript callbacks push
// without blocking (a callback that blocks stalls the page), a goroutine pops.
type queue struct {
	mu     sync.Mutex
	bufs   [][]byte
	closed bool
	ready  chan struct{} // capacity 1: something was pushed, or the queue closed
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) push(b []byte) {
	q.mu.Lock()
	if !q.closed {
		q.bufs = append(q.bufs, b)
	}
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// pop waits for the next slice; false once the queue is closed and empty.
func (q *queue) pop() ([]byte, bool) {
	for {
		q.mu.Lock()
		if len(q.bufs) > 0 {
			b := q.bufs[0]
			q.bufs[0] = nil
			q.bufs = q.bufs[1:]
			q.mu.Unlock()
			return b, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.ready
	}
}

// wsConn is the session websocket seen as a net.Conn: the page pushes each
// binary message in (receive), and Write hands bytes to its send function.
type wsConn struct {
	in   *queue
	send js.Value
	rest []byte // the unread part of the last message

	mu     sync.Mutex
	why    string        // why the connection closed, once it has
	closed chan struct{} // closed with the connection
}

func newWSConn(send js.Value) *wsConn {
	return &wsConn{in: newQueue(), send: send, closed: make(chan struct{})}
}

func (c *wsConn) Read(p []byte) (int, error) {
	for len(c.rest) == 0 {
		b, ok := c.in.pop()
		if !ok {
			return 0, io.EOF
		}
		c.rest = b
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

func (c *wsConn) Write(p []byte) (int, error) {
	if c.reason() != "" {
		return 0, net.ErrClosed
	}
	a := js.Global().Get("Uint8Array").New(len(p))
	js.CopyBytesToJS(a, p)
	c.send.Invoke(a)
	return len(p), nil
}

// closeWith closes the connection, keeping the first reason given.
func (c *wsConn) closeWith(why string) {
	if why == "" {
		why = "the connection closed"
	}
	c.mu.Lock()
	if c.why == "" {
		c.why = why
		close(c.closed)
	}
	c.mu.Unlock()
	c.in.close()
}

func (c *wsConn) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

func (c *wsConn) Close() error { c.closeWith("the connection closed"); return nil }

type wsAddr struct{}

func (wsAddr) Network() string { return "websocket" }
func (wsAddr) String() string  { return "relay" }

func (c *wsConn) LocalAddr() net.Addr              { return wsAddr{} }
func (c *wsConn) RemoteAddr() net.Addr             { return wsAddr{} }
func (c *wsConn) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (c *wsConn) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (c *wsConn) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }
