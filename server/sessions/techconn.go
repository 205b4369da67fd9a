package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/mux"
)

// techConn owns a technician's websocket for one session: one reader
// goroutine for the whole session (it notices a technician who leaves while
// the endpoint is still deciding, and later copies bytes to the agent), a
// pinger, and writes from the broker.
type techConn struct {
	ws *websocket.Conn

	wmu sync.Mutex // serialises data and status writes

	streamc    chan *mux.Stream // buffered 1: the agent stream, once approved
	done       chan struct{}    // closed by close: stop waiting for a stream
	readerDone chan struct{}    // closed when the reader ends (technician gone, or stream write failed)
	pingDone   chan struct{}
	once       sync.Once

	// refused says why the relay closed the technician's websocket for
	// what it sent (too large, text, broken framing); "" when the
	// technician left. Written by the reader before readerDone closes.
	refused string
}

// copyBufs holds the buffers that copy technicians' messages to agents: an
// idle session (most of them, between keystrokes) holds none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, chunk); return &b }}

const (
	techReadTimeout = 3 * pingEvery // no pong or data for this long: the technician is gone
	// maxTechMessage bounds one message from the technician. Clients send
	// SSH packets (at most ~35 KiB) or keystrokes; a larger message closes
	// that websocket (1009) and ends its session, nothing else.
	maxTechMessage = 1 << 20
)

// errTooBig is a technician's message over maxTechMessage.
var errTooBig = fmt.Errorf("message over %d bytes", maxTechMessage)

func newTechConn(ws *websocket.Conn) *techConn {
	t := &techConn{ws: ws, streamc: make(chan *mux.Stream, 1), done: make(chan struct{}),
		readerDone: make(chan struct{}), pingDone: make(chan struct{})}
	// The reader enforces maxTechMessage itself (copyMessage): gorilla's
	// limit would close the socket with no reason.
	ws.SetReadLimit(0)
	ws.SetReadDeadline(time.Now().Add(techReadTimeout))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(techReadTimeout)) })
	go t.read()
	go t.ping()
	return t
}

// read copies the technician's binary messages to the agent stream once it
// exists. What a technician's client never sends closes this websocket
// alone, with a close reason that says what was wrong (and so ends its
// session): a text message (1003), a message over maxTechMessage (1009),
// broken websocket framing (1002, sent by gorilla with its reason).
func (t *techConn) read() {
	defer close(t.readerDone)
	var st *mux.Stream
	for {
		typ, r, err := t.ws.NextReader()
		if err != nil {
			if protocolError(err) {
				t.refused = "websocket protocol error from the technician's client: " + err.Error()
				t.once.Do(func() {}) // gorilla has sent the close frame (1002, with the reason)
			}
			return
		}
		t.ws.SetReadDeadline(time.Now().Add(techReadTimeout))
		if typ != websocket.BinaryMessage {
			t.refuse(websocket.CloseUnsupportedData, "text message refused: the session websocket carries SSH in binary messages only")
			return
		}
		if st == nil {
			select {
			case st = <-t.streamc:
			case <-t.done:
				return
			}
		}
		buf := copyBufs.Get().(*[]byte)
		err = copyMessage(st, r, *buf, maxTechMessage)
		copyBufs.Put(buf)
		if errors.Is(err, errTooBig) {
			t.refuse(websocket.CloseMessageTooBig, fmt.Sprintf("message refused: over %d bytes (send the stream in smaller messages)", maxTechMessage))
			return
		}
		if err != nil {
			return
		}
	}
}

// refusal says why the relay closed the websocket for what the technician
// sent, once the reader has ended; "" before, or when the technician left.
func (t *techConn) refusal() string {
	select {
	case <-t.readerDone:
		return t.refused
	default:
		return ""
	}
}

// refuse closes the websocket for what the technician sent, saying why.
func (t *techConn) refuse(code int, reason string) {
	t.refused = reason
	t.closeWith(code, reason)
}

// protocolError reports whether a read error is gorilla refusing the
// peer's framing (bad opcode, unmasked frame, bad close frame...), as
// opposed to the peer closing or the network failing.
func protocolError(err error) bool {
	var ce *websocket.CloseError
	var ne net.Error
	return !errors.As(err, &ce) && !errors.As(err, &ne) && !errors.Is(err, io.EOF) &&
		!errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed)
}

// copyMessage copies one message to the stream in writes as large as buf:
// a TLS read yields one record (at most 16 KiB), and every stream write is a
// frame, a websocket message and a write to the agent's link, so a message
// is gathered before it is passed on. A message that fits in buf (nearly
// all: keystrokes, SSH packets) goes in one write. A longer one is read
// whole first (into a pooled buffer, at most limit bytes), so that a
// message over limit is refused (errTooBig) before any of it reaches the
// agent. Reading to the end of a message never waits for the technician's
// next one.
func copyMessage(st io.Writer, r io.Reader, buf []byte, limit int) error {
	n, err := io.ReadFull(r, buf)
	if n > limit {
		return errTooBig
	}
	switch err {
	case io.EOF, io.ErrUnexpectedEOF:
		if n == 0 {
			return nil
		}
		_, err = st.Write(buf[:n])
		return err
	case nil:
	default:
		return err
	}
	big := bigBufs.Get().(*bytes.Buffer)
	defer func() {
		if big.Cap() <= maxPooledMessage {
			bigBufs.Put(big)
		}
	}()
	big.Reset()
	big.Write(buf[:n])
	if _, err := big.ReadFrom(io.LimitReader(r, int64(limit-n+1))); err != nil {
		return err
	}
	if big.Len() > limit {
		return errTooBig
	}
	for b := big.Bytes(); len(b) > 0; {
		k := min(len(b), len(buf))
		if _, err := st.Write(b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

// bigBufs holds the buffers that gather messages longer than a copy
// buffer; one that grew past maxPooledMessage is dropped after use.
var bigBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledMessage = 256 << 10

func (t *techConn) ping() {
	defer close(t.pingDone)
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := t.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				return
			}
		case <-t.done:
			return
		}
	}
}

// write sends bytes from the agent as one binary message.
func (t *techConn) write(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return t.ws.WriteMessage(websocket.BinaryMessage, p)
}

// status sends one status message.
func (t *techConn) status(st apiv1.SessionStatus) {
	msg, _ := json.Marshal(st)
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.ws.SetWriteDeadline(time.Now().Add(writeWait))
	_ = t.ws.WriteMessage(websocket.TextMessage, msg)
}

// fail sends a final status and closes the connection with it.
func (t *techConn) fail(st apiv1.SessionStatus) {
	t.status(st)
	reason := st.Message
	if len(reason) > 100 { // a close reason must fit in a control frame
		reason = reason[:100]
	}
	t.closeWith(websocket.ClosePolicyViolation, reason)
}

// closeWith sends a close frame (at most once).
func (t *techConn) closeWith(code int, reason string) {
	if len(reason) > 120 {
		reason = reason[:120]
	}
	t.once.Do(func() {
		_ = t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	})
}

// close ends the connection and waits for the reader and pinger.
func (t *techConn) close() {
	t.closeWith(websocket.CloseNormalClosure, "")
	close(t.done)
	t.ws.Close()
	<-t.readerDone
	<-t.pingDone
}
