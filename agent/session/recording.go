package session

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// Recording batching: a recording's small writes (one keystroke, one echo)
// are gathered and sent on the recording stream at most every flushEvery,
// or as soon as flushSize bytes are waiting, so that typing does not cost a
// stream frame, a TLS record and a relay file write per key. At 50 ms a
// typist's every key still cost one (keys come ~100 ms apart); at 500 ms a
// recording frame carries about five, and the relay's copy of a live
// session lags by at most half a second (Close sends the rest at once).
const (
	flushEvery = 500 * time.Millisecond
	flushSize  = 32 << 10
)

// batchedWriter buffers writes to w and flushes them from a timer. It is
// safe for concurrent use; Close flushes what is left and closes w. A write
// error is kept and returned by every later call, so a recording that cannot
// be delivered ends the session (the SSH server fails closed).
type batchedWriter struct {
	w io.WriteCloser

	mu     sync.Mutex
	buf    bytes.Buffer
	timer  *time.Timer // pending flush, nil when none
	err    error
	closed bool
}

func newBatchedWriter(w io.WriteCloser) *batchedWriter { return &batchedWriter{w: w} }

func (b *batchedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, io.ErrClosedPipe
	}
	b.buf.Write(p)
	if b.buf.Len() >= flushSize {
		b.flushLocked()
	} else if b.timer == nil {
		b.timer = time.AfterFunc(flushEvery, b.flush)
	}
	return len(p), b.err
}

func (b *batchedWriter) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

// flushLocked writes what is buffered; b.mu must be held.
func (b *batchedWriter) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if b.buf.Len() == 0 || b.err != nil {
		return
	}
	if _, err := b.w.Write(b.buf.Bytes()); err != nil {
		b.err = err
	}
	b.buf.Reset()
}

// Close flushes and closes the underlying writer.
func (b *batchedWriter) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return b.err
	}
	b.flushLocked()
	b.closed = true
	err := b.err
	b.mu.Unlock()
	if cerr := b.w.Close(); err == nil {
		err = cerr
	}
	return err
}
