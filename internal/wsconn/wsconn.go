// Package wsconn adapts a gorilla websocket to a net.Conn carrying a byte
// stream in binary messages, so that an SSH client (or a plain copy loop)
// can run over it.
//
// Ownership: one goroutine may Read and one may Write at a time (as with any
// net.Conn used by x/crypto/ssh); Close may be called from anywhere. Text
// messages are not part of the stream: they are handed to OnText, or
// dropped. A close frame from the peer ends Read with a *websocket.CloseError
// whose Text says why (CloseReason returns it too).
package wsconn

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// MaxMessage is the largest binary message Write sends; longer writes are
// split.
const MaxMessage = 64 << 10

// Conn is a websocket as a net.Conn.
type Conn struct {
	ws     *websocket.Conn
	onText func([]byte)

	rmu sync.Mutex
	r   io.Reader // the current message, owned by Read's caller under rmu

	wmu sync.Mutex

	mu     sync.Mutex
	reason string // close reason the peer sent
}

// New wraps ws. onText, if set, gets every text message the peer sends.
func New(ws *websocket.Conn, onText func([]byte)) *Conn {
	c := &Conn{ws: ws, onText: onText}
	ws.SetCloseHandler(func(code int, text string) error {
		c.mu.Lock()
		c.reason = text
		c.mu.Unlock()
		msg := websocket.FormatCloseMessage(code, "")
		_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		return nil
	})
	return c
}

// CloseReason is the reason in the peer's close frame, if it sent one.
func (c *Conn) CloseReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Read reads stream bytes.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) && (ce.Code == websocket.CloseNormalClosure || ce.Code == websocket.CloseGoingAway) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ == websocket.TextMessage {
				if c.onText != nil {
					b, err := io.ReadAll(io.LimitReader(r, 1<<20))
					if err != nil {
						return 0, err
					}
					c.onText(b)
				}
				continue
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one or more binary messages.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), MaxMessage)
		if err := c.ws.WriteMessage(websocket.BinaryMessage, p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// ReadFrom sends what r yields, one message per read of up to MaxMessage
// bytes: io.Copy from a pipe (patchbay proxy's standard input) would
// otherwise send 32 KiB messages. It never waits to fill a message: each
// read is sent as it comes.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, MaxMessage)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// WriteTo writes the stream to w until the peer closes it (then it returns
// a nil error), one write per message where a message fits in MaxMessage:
// a message arrives in TLS records of at most 16 KiB, and a write per
// record (io.Copy's way) costs patchbay proxy a syscall each.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, MaxMessage)
	var total int64
	for {
		n, err := c.readMessage(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// readMessage waits for stream bytes, then reads on into buf until it is
// full or the current message ends; it never waits for the next message.
func (c *Conn) readMessage(buf []byte) (int, error) {
	n, err := c.Read(buf)
	if err != nil {
		return n, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for n < len(buf) && c.r != nil {
		k, err := c.r.Read(buf[n:])
		n += k
		if errors.Is(err, io.EOF) {
			c.r = nil
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Close sends a normal close frame and closes the connection.
func (c *Conn) Close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.ws.Close()
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline sets both deadlines. A deadline that passes breaks the
// websocket for good (gorilla): use deadlines only to give up.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.ws.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ws.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

var _ net.Conn = (*Conn)(nil)
