package sessions

import (
	"encoding/json"
	"io"
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
}

// copyBufs holds the buffers that copy technicians' messages to agents: an
// idle session (most of them, between keystrokes) holds none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, chunk); return &b }}

const (
	techReadTimeout = 3 * pingEvery // no pong or data for this long: the technician is gone
	maxTechMessage  = 1 << 20
)

func newTechConn(ws *websocket.Conn) *techConn {
	t := &techConn{ws: ws, streamc: make(chan *mux.Stream, 1), done: make(chan struct{}),
		readerDone: make(chan struct{}), pingDone: make(chan struct{})}
	ws.SetReadLimit(maxTechMessage)
	ws.SetReadDeadline(time.Now().Add(techReadTimeout))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(techReadTimeout)) })
	go t.read()
	go t.ping()
	return t
}

// read copies the technician's binary messages to the agent stream once it
// exists. Text messages are ignored (reserved).
func (t *techConn) read() {
	defer close(t.readerDone)
	var st *mux.Stream
	for {
		typ, r, err := t.ws.NextReader()
		if err != nil {
			return
		}
		t.ws.SetReadDeadline(time.Now().Add(techReadTimeout))
		if typ != websocket.BinaryMessage {
			continue
		}
		if st == nil {
			select {
			case st = <-t.streamc:
			case <-t.done:
				return
			}
		}
		buf := copyBufs.Get().(*[]byte)
		err = copyMessage(st, r, *buf)
		copyBufs.Put(buf)
		if err != nil {
			return
		}
	}
}

// copyMessage copies one message to the stream in writes as large as buf:
// a TLS read yields one record (at most 16 KiB), and every stream write is a
// frame, a websocket message and a write to the agent's link, so a message
// is gathered before it is passed on. Reading to the end of a message never
// waits for the technician's next one.
func copyMessage(st io.Writer, r io.Reader, buf []byte) error {
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := st.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

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
