// Package mux carries a control channel and independent byte streams over
// one websocket, in the frames defined by package wire.
//
// A Session starts no goroutine of its own: its owner calls Run, which reads
// frames until the connection ends, hands control messages to Config.Control
// and data to streams. Writes happen on the caller's goroutine, one frame at a
// time under a mutex with a write deadline. An idle link therefore costs one
// blocked goroutine (the owner's Run), which is what lets one relay hold tens
// of thousands of agents.
//
// Frames are not batched into shared writes: that was tried (a buffered
// connection under the websocket, flushed by the last writer in line) and
// gained nothing measurable in the session benchmark, where one link rarely
// has two writers at once; the commit that removed it has the figures.
//
// Every stream has its own flow-control window (wire.InitialWindow): a sender
// may have at most that many unacknowledged bytes in flight, and the receiver
// buffers them without blocking Run. A stream whose reader stops reading
// stalls only its own writer; the control channel and other streams go on.
package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/wire"
)

// Errors that callers branch on.
var (
	ErrSessionClosed = errors.New("link closed")
	ErrRefused       = errors.New("stream refused")
)

// Defaults for Config fields left zero.
const (
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxStreams   = 256
)

// Config is a Session's configuration. The zero value is usable: a session
// that accepts no streams and ignores control messages.
type Config struct {
	// Dialer is true on the side that dialed the websocket (the agent); it
	// opens odd stream IDs, the other side even ones.
	Dialer bool
	// ReadTimeout, if set, is the longest Run waits for any frame, ping
	// included, before it gives up on the peer.
	ReadTimeout time.Duration
	// WriteTimeout bounds each frame write (default 10s). A write that times
	// out ends the session: a gorilla conn is unusable after a write timeout.
	WriteTimeout time.Duration
	// MaxStreams bounds the streams the peer may have open at once.
	MaxStreams int
	// Control is called on Run's goroutine for each control message. An error
	// closes the session with that error as the close reason.
	Control func(env wire.Envelope) error
	// Handle serves a stream opened by the peer, on a goroutine owned by the
	// session; Run waits for it after the link ends. Nil refuses peer streams.
	Handle func(st *Stream)
}

// CloseError is a protocol violation: Run closes the link with Code and
// Reason as the websocket close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("link closed (%d): %s", e.Code, e.Reason) }

// protocolError builds the CloseError for a peer that broke the protocol.
func protocolError(format string, args ...any) *CloseError {
	return &CloseError{Code: websocket.CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// Session is one multiplexed link.
type Session struct {
	ws  *websocket.Conn
	cfg Config

	wmu sync.Mutex // serialises frame writes; held by any writer for one frame
	omu sync.Mutex // serialises Open: ID allocation and the open frame, in order

	mu         sync.Mutex
	streams    map[uint32]*Stream // open streams, by ID; nil until the first
	nextID     uint32             // next ID this side opens
	peerMaxID  uint32             // highest ID the peer opened
	closed     bool
	done       chan struct{}  // closed when the session shuts down
	closeErr   error          // why the session ended; set once
	handlers   sync.WaitGroup // Handle goroutines
	readBuffer []byte         // reused by Run; owned by Run's goroutine
}

// New wraps ws. The caller owns the session and must call Run (or Close).
func New(ws *websocket.Conn, cfg Config) *Session {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	s := &Session{ws: ws, cfg: cfg, nextID: 2, done: make(chan struct{})}
	if cfg.Dialer {
		s.nextID = 1
	}
	ws.SetReadLimit(wire.MaxMessage)
	ws.SetPingHandler(func(data string) error {
		s.extendRead()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.cfg.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
		return nil
	})
	ws.SetPongHandler(func(string) error { s.extendRead(); return nil })
	return s
}

// Conn returns the underlying websocket, for the owner's keepalive pings.
func (s *Session) Conn() *websocket.Conn { return s.ws }

func (s *Session) extendRead() {
	if s.cfg.ReadTimeout > 0 {
		s.ws.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
	}
}

// readMessage reads one binary websocket message into the session's buffer.
// The returned slice is valid until the next call.
func (s *Session) readMessage() ([]byte, error) {
	s.extendRead()
	typ, r, err := s.ws.NextReader()
	if err != nil {
		return nil, err
	}
	if typ != websocket.BinaryMessage {
		return nil, &CloseError{Code: websocket.CloseUnsupportedData, Reason: "text message on an agent link; frames are binary"}
	}
	b := s.readBuffer[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				return nil, &CloseError{Code: websocket.CloseMessageTooBig, Reason: fmt.Sprintf("message over %d bytes", wire.MaxMessage)}
			}
			return nil, err
		}
	}
	if cap(b) <= 2*wire.HeaderLen+2*wire.MaxData {
		s.readBuffer = b // keep buffers of data-frame size; let larger ones go
	}
	return b, nil
}

// ReadFirst reads the first message of a link, before Run: it must be a
// control message and arrive within timeout. The handshake (hello, welcome)
// uses it.
func (s *Session) ReadFirst(timeout time.Duration) (wire.Envelope, error) {
	s.ws.SetReadDeadline(time.Now().Add(timeout))
	msg, err := s.readMessage()
	if err != nil {
		return wire.Envelope{}, err
	}
	f, err := wire.DecodeFrame(msg)
	if err != nil {
		return wire.Envelope{}, protocolError("%v", err)
	}
	if f.Type != wire.TypeControl {
		return wire.Envelope{}, protocolError("%s frame before the handshake", f.Type)
	}
	env, err := wire.DecodeEnvelope(f.Payload)
	if err != nil {
		return wire.Envelope{}, protocolError("%v", err)
	}
	return env, nil
}

// Run reads and dispatches frames until the link ends, then resets every
// stream and waits for the Handle goroutines. It returns why the link ended.
// A *CloseError means the peer broke the protocol; its reason was sent to
// the peer in the websocket close frame.
func (s *Session) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.Close(websocket.CloseGoingAway, "shutting down") })
	defer stop()
	var err error
	for err == nil {
		var msg []byte
		msg, err = s.readMessage()
		if err == nil {
			err = s.dispatch(msg)
		}
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		s.Close(ce.Code, ce.Reason)
	}
	s.shutdown(err)
	s.handlers.Wait()
	return s.Err()
}

// Done is closed when the session shuts down, before Run waits for the
// Handle goroutines: a handler that waits on something other than its stream
// should also watch Done.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err reports why the session ended, or nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeErr
}

func (s *Session) dispatch(msg []byte) error {
	f, err := wire.DecodeFrame(msg)
	if err != nil {
		return protocolError("%v", err)
	}
	switch f.Type {
	case wire.TypeControl:
		env, err := wire.DecodeEnvelope(f.Payload)
		if err != nil {
			return protocolError("%v", err)
		}
		if s.cfg.Control == nil {
			return nil
		}
		return s.cfg.Control(env)
	case wire.TypeOpen:
		return s.acceptStream(f.Stream, string(f.Payload))
	}
	st, err := s.lookup(f.Stream)
	if st == nil {
		return err
	}
	switch f.Type {
	case wire.TypeData:
		return st.deliver(f.Payload)
	case wire.TypeWindow:
		st.addCredit(int(f.Window()))
	case wire.TypeClose:
		st.peerClosed()
	case wire.TypeReset:
		st.fail(fmt.Errorf("%w: %s", ErrReset, f.Payload))
		s.forget(st.id)
	}
	return nil
}

// lookup finds a stream for a frame. Frames for streams that have already
// ended are ignored (they cross a Reset in flight); frames for IDs that were
// never opened are a protocol error.
func (s *Session) lookup(id uint32) (*Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[id]; st != nil {
		return st, nil
	}
	ours := (id%2 == 1) == s.cfg.Dialer
	if (ours && id >= s.nextID) || (!ours && id > s.peerMaxID) {
		return nil, protocolError("frame for stream %d, which was never opened", id)
	}
	return nil, nil
}

func (s *Session) acceptStream(id uint32, kind string) error {
	if (id%2 == 1) == s.cfg.Dialer {
		return protocolError("peer opened stream %d with this side's parity", id)
	}
	s.mu.Lock()
	if id <= s.peerMaxID {
		s.mu.Unlock()
		return protocolError("stream %d opened twice or out of order", id)
	}
	s.peerMaxID = id
	refuse := ""
	switch {
	case s.closed:
		refuse = "link closing"
	case s.cfg.Handle == nil:
		refuse = "this side accepts no streams"
	case len(s.streams) >= s.cfg.MaxStreams:
		refuse = fmt.Sprintf("too many streams (limit %d)", s.cfg.MaxStreams)
	}
	if refuse != "" {
		s.mu.Unlock()
		return s.writeFrame(wire.TypeReset, id, []byte(refuse))
	}
	st := newStream(s, id, kind)
	s.register(st)
	s.handlers.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.handlers.Done()
		s.cfg.Handle(st)
	}()
	return st.growWindow()
}

// register adds st; s.mu must be held.
func (s *Session) register(st *Stream) {
	if s.streams == nil {
		s.streams = make(map[uint32]*Stream)
	}
	s.streams[st.id] = st
}

func (s *Session) forget(id uint32) {
	s.mu.Lock()
	delete(s.streams, id)
	s.mu.Unlock()
}

// Open opens a stream of the given kind to the peer. The peer may refuse it;
// the first Read or Write then fails with an error wrapping ErrReset.
func (s *Session) Open(ctx context.Context, kind string) (*Stream, error) {
	if !wire.ValidKind(kind) {
		return nil, fmt.Errorf("open stream: invalid kind %q", kind)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// IDs must reach the peer in increasing order (it refuses a lower one
	// as a replay): allocating an ID and writing its open frame are one step.
	s.omu.Lock()
	defer s.omu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSessionClosed
	}
	st := newStream(s, s.nextID, kind)
	s.nextID += 2
	s.register(st)
	s.mu.Unlock()
	if err := s.writeFrame(wire.TypeOpen, st.id, []byte(kind)); err != nil {
		s.forget(st.id)
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if err := st.growWindow(); err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	return st, nil
}

// SendControl sends one control message.
func (s *Session) SendControl(env wire.Envelope) error {
	msg, err := wire.AppendControl(nil, env)
	if err != nil {
		return err
	}
	return s.writeMessage(msg)
}

// Send marshals body and sends it as a control message of type typ.
func (s *Session) Send(typ, id string, body any) error {
	env, err := wire.NewEnvelope(typ, id, body)
	if err != nil {
		return err
	}
	return s.SendControl(env)
}

func (s *Session) writeFrame(t wire.Type, id uint32, payload []byte) error {
	var hdr [wire.HeaderLen]byte
	wire.AppendHeader(hdr[:0], t, id)
	return s.write(hdr[:], payload)
}

func (s *Session) writeMessage(msg []byte) error { return s.write(msg, nil) }

// write sends one websocket message made of a and b. Any failure ends the
// session: a gorilla conn is not usable after a failed or timed-out write.
func (s *Session) write(a, b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return ErrSessionClosed
	}
	s.ws.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	w, err := s.ws.NextWriter(websocket.BinaryMessage)
	if err == nil {
		if _, err = w.Write(a); err == nil && len(b) > 0 {
			_, err = w.Write(b)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.ws.Close() // Run sees the read fail and cleans up
		return fmt.Errorf("write to link: %w", err)
	}
	return nil
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close sends a websocket close frame with code and reason (at most 123
// bytes are sent) and closes the connection. Run then returns. Safe to call
// from any goroutine, more than once.
func (s *Session) Close(code int, reason string) error {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	s.mu.Lock()
	if s.closeErr == nil {
		s.closeErr = &CloseError{Code: code, Reason: reason}
	}
	s.mu.Unlock()
	msg := websocket.FormatCloseMessage(code, reason)
	s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	return s.ws.Close()
}

// shutdown marks the session closed and fails every stream.
func (s *Session) shutdown(cause error) {
	s.mu.Lock()
	if s.closeErr == nil {
		s.closeErr = cause
	}
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	streams := s.streams
	s.streams = nil
	s.mu.Unlock()
	s.ws.Close()
	for _, st := range streams {
		st.fail(fmt.Errorf("%w: %v", ErrSessionClosed, cause))
	}
}

// LocalAddr and RemoteAddr of the underlying connection, for logs.
func (s *Session) LocalAddr() net.Addr  { return s.ws.LocalAddr() }
func (s *Session) RemoteAddr() net.Addr { return s.ws.RemoteAddr() }
