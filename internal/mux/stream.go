package mux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// chunks holds the buffers received data waits in until it is read: a busy
// stream reuses them, an idle one holds none.
var chunks = sync.Pool{New: func() any { b := make([]byte, 0, wire.MaxData); return &b }}

func putChunk(c []byte) {
	c = c[:0]
	chunks.Put(&c)
}

// SessionWindow is the receive window of an interactive session's byte
// stream (wire.SSHStreamKind): more than wire.InitialWindow, so that a bulk
// copy (scp) through the relay is not held up waiting for credit. Each side
// grants the difference in a Window frame as the stream opens; a peer that
// knows nothing of it simply gets the credit. At most this much of a
// session stream waits in memory, and an agent link carries at most
// DefaultMaxStreams streams.
const SessionWindow = 1 << 20

// windowFor is the receive window of a stream of this kind.
func windowFor(kind string) int {
	if what, _, ok := wire.ParseSessionStreamKind(kind); ok && what == "ssh" {
		return SessionWindow
	}
	return wire.InitialWindow
}

// ErrReset is wrapped by the error a stream returns after the peer reset it.
var ErrReset = errors.New("stream reset by peer")

// Stream is one byte stream in a Session. It implements net.Conn: Read and
// Write may be called concurrently, deadlines work as for net.Pipe.
type Stream struct {
	sess *Session
	id   uint32
	kind string

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when state below changes and someone waits on it
	waiting  bool          // a Read or Write holds changed and waits for it to close
	window   int           // receive window: wire.InitialWindow, or more (SessionWindow)
	rbuf     [][]byte      // received, unread chunks (from chunks); at most window in all
	roff     int           // how much of rbuf[0] was read
	granted  int           // bytes the peer may still send us
	consumed int           // bytes read since we last granted credit
	credit   int           // bytes we may still send
	rEOF     bool          // the peer sent Close
	wClosed  bool          // we sent Close
	closed   bool          // Close was called
	err      error         // reset by the peer, or the session ended

	rdl, wdl deadline
}

func newStream(s *Session, id uint32, kind string) *Stream {
	return &Stream{
		sess: s, id: id, kind: kind,
		changed: make(chan struct{}),
		window:  windowFor(kind),
		granted: wire.InitialWindow,
		credit:  wire.InitialWindow,
		rdl:     makeDeadline(),
		wdl:     makeDeadline(),
	}
}

// ID returns the stream's ID within its session.
func (st *Stream) ID() uint32 { return st.id }

// Kind returns the kind named when the stream was opened.
func (st *Stream) Kind() string { return st.kind }

// growWindow grants the peer the part of st's window beyond
// wire.InitialWindow (which the peer assumes at open).
func (st *Stream) growWindow() error {
	extra := st.window - wire.InitialWindow
	if extra <= 0 {
		return nil
	}
	st.mu.Lock()
	st.granted += extra
	st.mu.Unlock()
	return st.sess.writeFrame(wire.TypeWindow, st.id, wire.WindowPayload(uint32(extra)))
}

// broadcast wakes every waiter; st.mu must be held. With nobody waiting
// (the usual case while data flows) it costs nothing.
func (st *Stream) broadcast() {
	if !st.waiting {
		return
	}
	close(st.changed)
	st.changed = make(chan struct{})
	st.waiting = false
}

// waitChan returns the channel to wait on for the next change; st.mu must be held.
func (st *Stream) waitChan() chan struct{} {
	st.waiting = true
	return st.changed
}

// deliver queues data from the peer. Called on Run's goroutine; never blocks.
func (st *Stream) deliver(p []byte) error {
	st.mu.Lock()
	if len(p) > st.granted {
		st.mu.Unlock()
		return protocolError("stream %d: %d bytes sent against a window of %d", st.id, len(p), st.granted)
	}
	st.granted -= len(p)
	if st.rEOF {
		st.mu.Unlock()
		return protocolError("stream %d: data after close", st.id)
	}
	if st.closed {
		// Nobody will read it: tell the writer, once, and forget the stream.
		st.mu.Unlock()
		st.sess.forget(st.id)
		return st.sess.writeFrame(wire.TypeReset, st.id, []byte("closed by reader"))
	}
	if st.err == nil {
		for len(p) > 0 {
			last := len(st.rbuf) - 1
			if last < 0 || len(st.rbuf[last]) == cap(st.rbuf[last]) {
				st.rbuf = append(st.rbuf, (*chunks.Get().(*[]byte))[:0])
				last++
			}
			c := st.rbuf[last]
			n := min(len(p), cap(c)-len(c))
			st.rbuf[last] = append(c, p[:n]...)
			p = p[n:]
		}
		st.broadcast()
	}
	st.mu.Unlock()
	return nil
}

func (st *Stream) addCredit(n int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.credit += n
	st.broadcast()
}

func (st *Stream) peerClosed() {
	st.mu.Lock()
	st.rEOF = true
	done := st.closed
	st.broadcast()
	st.mu.Unlock()
	if done {
		st.sess.forget(st.id)
	}
}

func (st *Stream) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err == nil {
		st.err = err
	}
	st.broadcast()
}

// Read reads data the peer sent. Buffered data is returned before an error.
func (st *Stream) Read(p []byte) (int, error) {
	for {
		st.mu.Lock()
		switch {
		case st.closed:
			st.mu.Unlock()
			return 0, net.ErrClosed
		case isClosed(st.rdl.wait()):
			st.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		case len(p) == 0:
			st.mu.Unlock()
			return 0, nil
		case len(st.rbuf) > 0:
			n := 0
			for n < len(p) && len(st.rbuf) > 0 {
				c := st.rbuf[0]
				k := copy(p[n:], c[st.roff:])
				n += k
				st.roff += k
				if st.roff == len(c) { // drained: the chunk goes back to the pool
					putChunk(c)
					st.rbuf[0] = nil
					st.rbuf, st.roff = st.rbuf[1:], 0
				}
			}
			if len(st.rbuf) == 0 {
				st.rbuf = nil // an idle stream holds no buffer
			}
			st.consumedLocked(n)
			return n, nil
		case st.rEOF:
			st.mu.Unlock()
			return 0, io.EOF
		case st.err != nil:
			err := st.err
			st.mu.Unlock()
			return 0, err
		}
		changed := st.waitChan()
		st.mu.Unlock()
		select {
		case <-changed:
		case <-st.rdl.wait():
		}
	}
}

// consumedLocked counts n bytes as read and, once a quarter of the window
// was read, gives the peer that much credit back. It unlocks st.mu.
func (st *Stream) consumedLocked(n int) {
	st.consumed += n
	grant := 0
	if st.consumed >= st.window/4 && !st.rEOF && st.err == nil {
		grant, st.consumed = st.consumed, 0
		st.granted += grant
	}
	st.mu.Unlock()
	if grant > 0 {
		st.sess.writeFrame(wire.TypeWindow, st.id, wire.WindowPayload(uint32(grant)))
	}
}

// WriteTo writes what the peer sends to w until io.EOF (then it returns a
// nil error) or an error, handing w the received buffers themselves rather
// than copying them into a caller's buffer first: each w.Write gets what
// arrived so far, up to one buffer (wire.MaxData). w must not keep p after
// Write returns. The relay's session bridge uses it; Read must not be used
// while it runs.
func (st *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		c, off, err := st.takeChunk()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
		n, werr := w.Write(c[off:])
		total += int64(n)
		putChunk(c)
		st.mu.Lock()
		if st.closed {
			st.mu.Unlock()
		} else {
			st.consumedLocked(len(c) - off)
		}
		if werr != nil {
			return total, werr
		}
	}
}

// takeChunk waits for received data and takes the first buffer of it out
// of the stream (with how much of it was already read), or returns why no
// data will come (io.EOF at the peer's Close).
func (st *Stream) takeChunk() ([]byte, int, error) {
	for {
		st.mu.Lock()
		switch {
		case st.closed:
			st.mu.Unlock()
			return nil, 0, net.ErrClosed
		case isClosed(st.rdl.wait()):
			st.mu.Unlock()
			return nil, 0, os.ErrDeadlineExceeded
		case len(st.rbuf) > 0:
			c, off := st.rbuf[0], st.roff
			st.rbuf[0] = nil
			st.rbuf, st.roff = st.rbuf[1:], 0
			if len(st.rbuf) == 0 {
				st.rbuf = nil
			}
			st.mu.Unlock()
			return c, off, nil
		case st.rEOF:
			st.mu.Unlock()
			return nil, 0, io.EOF
		case st.err != nil:
			err := st.err
			st.mu.Unlock()
			return nil, 0, err
		}
		changed := st.waitChan()
		st.mu.Unlock()
		select {
		case <-changed:
		case <-st.rdl.wait():
		}
	}
}

// Write sends p, waiting for window credit as needed.
func (st *Stream) Write(p []byte) (int, error) {
	written := 0
	for {
		st.mu.Lock()
		switch {
		case st.closed:
			st.mu.Unlock()
			return written, net.ErrClosed
		case st.err != nil:
			err := st.err
			st.mu.Unlock()
			return written, err
		case st.wClosed:
			st.mu.Unlock()
			return written, fmt.Errorf("write on stream %d after CloseWrite", st.id)
		case isClosed(st.wdl.wait()):
			st.mu.Unlock()
			return written, os.ErrDeadlineExceeded
		case len(p) == 0:
			st.mu.Unlock()
			return written, nil
		case st.credit > 0:
			n := min(len(p), st.credit, wire.MaxData)
			st.credit -= n
			st.mu.Unlock()
			if err := st.sess.writeFrame(wire.TypeData, st.id, p[:n]); err != nil {
				return written, err
			}
			written += n
			p = p[n:]
			continue
		}
		changed := st.waitChan()
		st.mu.Unlock()
		select {
		case <-changed:
		case <-st.wdl.wait():
		}
	}
}

// CloseWrite tells the peer no more data follows; it reads io.EOF after what
// was sent. Reading goes on.
func (st *Stream) CloseWrite() error {
	st.mu.Lock()
	if st.wClosed || st.closed || st.err != nil {
		st.mu.Unlock()
		return nil
	}
	st.wClosed = true
	st.broadcast()
	st.mu.Unlock()
	return st.sess.writeFrame(wire.TypeClose, st.id, nil)
}

// Close ends the stream: the peer reads io.EOF after what was sent. If the
// peer then writes more, it is reset ("closed by reader") so that a writer on
// the far side learns nobody reads any more.
func (st *Stream) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	for _, c := range st.rbuf {
		putChunk(c)
	}
	st.rbuf, st.roff = nil, 0
	sendClose := st.err == nil && !st.wClosed
	done := st.err != nil || st.rEOF
	st.wClosed = true
	st.broadcast()
	st.mu.Unlock()
	if done {
		st.sess.forget(st.id)
	}
	if sendClose {
		return st.sess.writeFrame(wire.TypeClose, st.id, nil)
	}
	return nil
}

// Addr is a stream's address: its session's, plus the stream ID.
type Addr struct {
	net.Addr
	Stream uint32
}

func (a Addr) String() string { return fmt.Sprintf("%v#%d", a.Addr, a.Stream) }

// LocalAddr implements net.Conn.
func (st *Stream) LocalAddr() net.Addr { return Addr{st.sess.LocalAddr(), st.id} }

// RemoteAddr implements net.Conn.
func (st *Stream) RemoteAddr() net.Addr { return Addr{st.sess.RemoteAddr(), st.id} }

// SetDeadline implements net.Conn.
func (st *Stream) SetDeadline(t time.Time) error {
	st.rdl.set(t)
	st.wdl.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (st *Stream) SetReadDeadline(t time.Time) error { st.rdl.set(t); return nil }

// SetWriteDeadline implements net.Conn.
func (st *Stream) SetWriteDeadline(t time.Time) error { st.wdl.set(t); return nil }

// deadline is a channel closed when a deadline passes, as in net.Pipe.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline has passed
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired; wait for it to close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
