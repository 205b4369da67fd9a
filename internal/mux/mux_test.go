package mux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/wire"
	"golang.org/x/net/nettest"
)

// pair is a relay-side and an agent-side session over a real websocket on
// loopback, both running.
type pair struct {
	server, client *Session
	accepted       chan *Stream // streams the server side accepted
	serverErr      chan error   // Run's result on the server side
	clientErr      chan error
	controls       chan wire.Envelope // control messages the server received
}

func newPair(t testing.TB, serverCfg, clientCfg Config) *pair {
	t.Helper()
	p := &pair{
		accepted:  make(chan *Stream, 16),
		serverErr: make(chan error, 1),
		clientErr: make(chan error, 1),
		controls:  make(chan wire.Envelope, 16),
	}
	if serverCfg.Handle == nil {
		serverCfg.Handle = func(st *Stream) { p.accepted <- st } // the test owns st from here
	}
	if serverCfg.Control == nil {
		serverCfg.Control = func(env wire.Envelope) error { p.controls <- env; return nil }
	}
	ready := make(chan *Session, 1)
	up := websocket.Upgrader{WriteBufferPool: &sync.Pool{}, WriteBufferSize: 64 << 10}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s := New(ws, serverCfg)
		ready <- s
		p.serverErr <- s.Run(context.Background())
	}))
	t.Cleanup(srv.Close)
	d := websocket.Dialer{WriteBufferPool: &sync.Pool{}, WriteBufferSize: 64 << 10, ReadBufferSize: 64 << 10}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	clientCfg.Dialer = true
	p.client = New(ws, clientCfg)
	p.server = <-ready
	go func() { p.clientErr <- p.client.Run(context.Background()) }()
	t.Cleanup(func() {
		p.client.Close(websocket.CloseNormalClosure, "")
		<-p.clientErr
		p.server.Close(websocket.CloseNormalClosure, "")
	})
	return p
}

func (p *pair) open(t testing.TB) (client, server *Stream) {
	t.Helper()
	c, err := p.client.Open(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-p.accepted:
		return c, s
	case <-time.After(5 * time.Second):
		t.Fatal("server never accepted the stream")
	}
	return nil, nil
}

func TestStreamIsNetConn(t *testing.T) {
	nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
		p := newPair(t, Config{}, Config{})
		c, s := p.open(t)
		return c, s, func() { c.Close(); s.Close() }, nil
	})
}

func TestControlMessages(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	if err := p.client.Send("ping", "7", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	env := <-p.controls
	if env.Type != "ping" || env.ID != "7" || string(env.Body) != `{"n":1}` {
		t.Fatalf("got %+v", env)
	}
}

// A stream whose reader never reads fills its window; its writer blocks, but
// another stream and the control channel carry on.
func TestBusyStreamDoesNotStallOthers(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	stuckC, _ := p.open(t)
	blocked := make(chan error, 1)
	go func() {
		_, err := stuckC.Write(make([]byte, 4*wire.InitialWindow))
		blocked <- err
	}()
	select {
	case err := <-blocked:
		t.Fatalf("write of 4 windows to a reader that never reads returned early: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	c, s := p.open(t)
	payload := bytes.Repeat([]byte("patchbay"), 200_000) // 1.6 MB, several windows
	go func() { c.Write(payload); c.CloseWrite() }()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("second stream: %d bytes, err %v", len(got), err)
	}
	if err := p.client.Send("still-alive", "", 1); err != nil {
		t.Fatal(err)
	}
	if env := <-p.controls; env.Type != "still-alive" {
		t.Fatalf("control got %q", env.Type)
	}
	stuckC.Close()
	if err := <-blocked; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked writer after Close: %v", err)
	}
}

func TestRefusedStream(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	// The client side accepts no streams: the server's open is reset.
	st, err := p.server.Open(context.Background(), "session")
	if err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = st.Read(make([]byte, 1))
	if !errors.Is(err, ErrReset) || !strings.Contains(err.Error(), "accepts no streams") {
		t.Fatalf("read on refused stream: %v", err)
	}
}

func TestMaxStreams(t *testing.T) {
	p := newPair(t, Config{MaxStreams: 2}, Config{})
	p.open(t)
	p.open(t)
	st, _ := p.client.Open(context.Background(), "test")
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, ErrReset) || !strings.Contains(err.Error(), "too many streams") {
		t.Fatalf("third stream: %v", err)
	}
}

// Hostile frames close the one link with a websocket close reason.
func TestProtocolViolations(t *testing.T) {
	tests := []struct {
		name   string
		msgs   [][]byte
		reason string
	}{
		{"garbage", [][]byte{{0xde, 0xad, 0xbe, 0xef, 0, 1}}, "unknown frame type"},
		{"short", [][]byte{{1}}, "shorter than"},
		{"bad json", [][]byte{append(wire.AppendHeader(nil, wire.TypeControl, 0), "{nope"...)}, "control message"},
		{"data for unopened stream", [][]byte{append(wire.AppendHeader(nil, wire.TypeData, 9), 'x')}, "never opened"},
		{"wrong parity", [][]byte{append(wire.AppendHeader(nil, wire.TypeOpen, 2), "x"...)}, "parity"},
		{"reopen", [][]byte{
			append(wire.AppendHeader(nil, wire.TypeOpen, 1), "x"...),
			append(wire.AppendHeader(nil, wire.TypeOpen, 1), "x"...),
		}, "opened twice"},
		{"window overrun", append([][]byte{append(wire.AppendHeader(nil, wire.TypeOpen, 1), "x"...)},
			repeat(append(wire.AppendHeader(nil, wire.TypeData, 1), make([]byte, wire.MaxData)...), wire.InitialWindow/wire.MaxData+1)...), "window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, Config{Handle: func(st *Stream) { <-st.sess.Done() }}, Config{})
			// Write raw frames, bypassing the client's own checks.
			for _, m := range tt.msgs {
				p.client.ws.WriteMessage(websocket.BinaryMessage, m)
			}
			var ce *CloseError
			select {
			case err := <-p.serverErr:
				if !errors.As(err, &ce) || !strings.Contains(ce.Reason, tt.reason) {
					t.Fatalf("server Run = %v, want close reason containing %q", err, tt.reason)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("server kept the link")
			}
			// The client saw the reason in the close frame.
			err := <-p.clientErr
			var wce *websocket.CloseError
			if !errors.As(err, &wce) || wce.Code != websocket.CloseProtocolError || !strings.Contains(wce.Text, tt.reason) {
				t.Fatalf("client Run = %v, want close frame with %q", err, tt.reason)
			}
			p.clientErr <- err // for cleanup
		})
	}
}

func repeat(m []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = m
	}
	return out
}

func TestOversizedMessage(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	p.client.ws.WriteMessage(websocket.BinaryMessage, make([]byte, wire.MaxMessage+1))
	err := <-p.serverErr
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("server Run = %v, want message-too-big close", err)
	}
}

func TestTextMessageRefused(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	p.client.ws.WriteMessage(websocket.TextMessage, []byte("hello"))
	err := <-p.serverErr
	var ce *CloseError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "text message") {
		t.Fatalf("server Run = %v", err)
	}
}

// When the link ends, every stream fails and Run waits for the handlers.
func TestSessionEndFailsStreamsAndWaitsForHandlers(t *testing.T) {
	var handlerDone sync.WaitGroup
	handlerDone.Add(1)
	var handlerErr error
	p := newPair(t, Config{Handle: func(st *Stream) {
		defer handlerDone.Done()
		_, handlerErr = io.ReadAll(st)
	}}, Config{})
	c, err := p.client.Open(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	time.Sleep(100 * time.Millisecond)
	p.client.Close(websocket.CloseNormalClosure, "bye")
	if err := <-p.serverErr; err == nil {
		t.Fatal("server Run returned nil")
	}
	handlerDone.Wait()
	if !errors.Is(handlerErr, ErrSessionClosed) {
		t.Fatalf("handler read: %v", handlerErr)
	}
	if _, err := c.Write([]byte("y")); err == nil {
		t.Fatal("write after session close succeeded")
	}
}

func TestReadTimeoutDropsSilentPeer(t *testing.T) {
	p := newPair(t, Config{ReadTimeout: 200 * time.Millisecond}, Config{})
	select {
	case err := <-p.serverErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Run = %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("silent peer kept")
	}
}

func TestPingsKeepLinkAlive(t *testing.T) {
	// The read timeout is six ping intervals, so that a loaded machine (the
	// test ran beside benchmarks) does not drop the link between two pings.
	p := newPair(t, Config{ReadTimeout: 600 * time.Millisecond}, Config{})
	for i := 0; i < 14; i++ {
		if err := p.client.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-p.serverErr:
		t.Fatalf("link dropped despite pings: %v", err)
	default:
	}
}

func BenchmarkStreamThroughput(b *testing.B) {
	p := newPair(b, Config{}, Config{})
	c, s := p.open(b)
	buf := make([]byte, 32<<10)
	go io.Copy(io.Discard, s)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// Streams opened concurrently reach the peer in ID order: the peer refuses
// an ID lower than one it has seen, which used to end the whole link.
func TestConcurrentOpensKeepTheLink(t *testing.T) {
	for round := 0; round < 30; round++ { // the race is narrow: try often
		concurrentOpens(t)
	}
}

func concurrentOpens(t *testing.T) {
	p := newPair(t, Config{}, Config{})
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := p.client.Open(context.Background(), "test")
			if err != nil {
				errs <- err
				return
			}
			if _, err := st.Write([]byte("x")); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		select {
		case st := <-p.accepted:
			st.Close()
		case err := <-p.serverErr:
			t.Fatalf("link ended after %d streams: %v", i, err)
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d streams arrived", i, n)
		}
	}
}
