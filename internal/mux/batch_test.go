package mux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/internal/wsconn"
)

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// newBatchPair is a pair whose connections batch (wsconn.BatchConn), and
// the count of writes that reached the client's socket.
func newBatchPair(t testing.TB, serverCfg, clientCfg Config) (*pair, *atomic.Int64) {
	t.Helper()
	var clientWrites atomic.Int64
	p := newPairWith(t, serverCfg, clientCfg, func(c net.Conn, dialed bool) net.Conn {
		if dialed {
			c = countingConn{c, &clientWrites}
		}
		return wsconn.NewBatchConn(c)
	})
	if p.client.batch == nil || p.server.batch == nil {
		t.Fatal("mux did not find the BatchConn under the websocket")
	}
	return p, &clientWrites
}

// Many streams writing small frames at once: every stream's bytes arrive
// intact and in order, and frames shared writes to the socket.
func TestBatchedFramesArriveIntactAndInOrder(t *testing.T) {
	p, writes := newBatchPair(t, Config{}, Config{})
	const streams, frames = 16, 500
	var frameCount atomic.Int64
	type result struct {
		i   int
		got []byte
		err error
	}
	results := make(chan result, streams)
	want := make([][]byte, streams)
	var wg sync.WaitGroup
	for i := range streams {
		c, s := p.open(t)
		var msg bytes.Buffer
		for k := range frames {
			var rec [8]byte
			binary.BigEndian.PutUint32(rec[:4], uint32(i))
			binary.BigEndian.PutUint32(rec[4:], uint32(k))
			msg.Write(bytes.Repeat(rec[:], 1+k%7))
		}
		want[i] = msg.Bytes()
		go func() {
			got, err := io.ReadAll(s)
			results <- result{i, got, err}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := want[i]
			for k := range frames {
				n := 8 * (1 + k%7)
				if _, err := c.Write(b[:n]); err != nil {
					t.Error(err)
					return
				}
				frameCount.Add(1)
				b = b[n:]
			}
			c.CloseWrite()
		}()
	}
	wg.Wait()
	for range streams {
		select {
		case r := <-results:
			if r.err != nil || !bytes.Equal(r.got, want[r.i]) {
				t.Fatalf("stream %d: %d of %d bytes, err %v", r.i, len(r.got), len(want[r.i]), r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a stream never ended")
		}
	}
	// Each frame is one websocket message; without batching each costs at
	// least one write to the socket.
	if n, f := writes.Load(), frameCount.Load(); n >= f {
		t.Fatalf("%d socket writes for %d frames: nothing was batched", n, f)
	} else {
		t.Logf("%d socket writes for %d frames (and the opens)", n, f)
	}
}

// Batching does not let a stalled stream hold up the others.
func TestBatchedBusyStreamDoesNotStallOthers(t *testing.T) {
	p, _ := newBatchPair(t, Config{}, Config{})
	busyStreamDoesNotStallOthers(t, p)
}

// A lone write is sent at once, not left in a batch.
func TestBatchedLoneFrameIsSent(t *testing.T) {
	p, _ := newBatchPair(t, Config{}, Config{})
	c, s := p.open(t)
	for i := range 20 {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != byte(i) {
			t.Fatalf("key %d: %v %v", i, b, err)
		}
	}
}

// A close frame written while a batch is open still reaches the peer.
func TestBatchedCloseReasonArrives(t *testing.T) {
	p, _ := newBatchPair(t, Config{}, Config{})
	p.client.batch.Hold()
	p.client.Close(websocket.ClosePolicyViolation, "batched goodbye")
	select {
	case err := <-p.serverErr:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Text != "batched goodbye" {
			t.Fatalf("server saw %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw the close")
	}
}

func BenchmarkSmallFrames(b *testing.B) {
	for _, batch := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=%v", batch), func(b *testing.B) {
			var p *pair
			if batch {
				p, _ = newBatchPair(b, Config{}, Config{})
			} else {
				p = newPair(b, Config{}, Config{})
			}
			const streams = 16
			cs := make([]*Stream, streams)
			for i := range cs {
				c, s := p.open(b)
				cs[i] = c
				go io.Copy(io.Discard, s)
			}
			b.ResetTimer()
			var next atomic.Int64
			b.SetParallelism(streams / 2)
			b.RunParallel(func(pb *testing.PB) {
				c := cs[next.Add(1)%streams]
				key := make([]byte, 40) // an SSH packet carrying one keystroke
				for pb.Next() {
					if _, err := c.Write(key); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// WriteTo hands over every byte in order, across many windows, and ends
// with a nil error at the peer's Close.
func TestWriteToCopiesWholeStream(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	c, s := p.open(t)
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB, many windows
	go func() {
		for b := payload; len(b) > 0; {
			n := min(len(b), 1+len(b)%40_000)
			c.Write(b[:n])
			b = b[n:]
		}
		c.CloseWrite()
	}()
	var got bytes.Buffer
	n, err := s.WriteTo(&got)
	if err != nil || n != int64(len(payload)) || !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("WriteTo: %d of %d bytes, err %v", n, len(payload), err)
	}
}

// A failing writer ends WriteTo with its error.
func TestWriteToStopsOnWriterError(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	c, s := p.open(t)
	c.Write([]byte("x"))
	boom := errors.New("technician gone")
	_, err := s.WriteTo(failWriter{boom})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteTo: %v", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// A session's byte stream takes SessionWindow bytes before its reader
// reads; any other stream wire.InitialWindow. Past that the writer waits.
func TestSessionStreamWindow(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		window int
	}{
		{wire.SSHStreamKind("0192d4e0-7a3b-7c4d-8e5f-6a7b8c9d0e1f"), SessionWindow},
		{"test", wire.InitialWindow},
	} {
		p := newPair(t, Config{}, Config{})
		c, err := p.client.Open(context.Background(), tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		s := <-p.accepted
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(make([]byte, tc.window)); err != nil {
			t.Fatalf("%s: writing one window before any read: %v", tc.kind, err)
		}
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Write([]byte{1}); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: a write past the window did not wait: %v", tc.kind, err)
		}
		c.SetWriteDeadline(time.Time{})
		go c.Write([]byte{2})
		got, err := io.ReadAll(io.LimitReader(s, int64(tc.window+1)))
		if err != nil || len(got) != tc.window+1 || got[tc.window] != 2 {
			t.Fatalf("%s: read %d bytes, err %v", tc.kind, len(got), err)
		}
	}
}
