package wsconn

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// pairConns is a client Conn and the server's websocket on loopback.
func pairConns(t *testing.T) (*Conn, *websocket.Conn) {
	t.Helper()
	srvc := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		srvc <- ws
	}))
	t.Cleanup(srv.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := New(ws, nil)
	t.Cleanup(func() { c.Close() })
	return c, <-srvc
}

// WriteTo passes each message on in one write once it is whole, does not
// wait for the next message to do so, and ends at the peer's close.
func TestWriteToWholeMessages(t *testing.T) {
	c, peer := pairConns(t)
	writes := make(chan []byte, 16)
	done := make(chan error, 1)
	go func() {
		_, err := c.WriteTo(chanWriter(writes))
		done <- err
	}()
	big := bytes.Repeat([]byte("m"), 50<<10)
	peer.WriteMessage(websocket.BinaryMessage, big)
	select {
	case got := <-writes:
		if !bytes.Equal(got, big) {
			t.Fatalf("message of %d bytes arrived as a write of %d", len(big), len(got))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a whole message was held back waiting for the next")
	}
	peer.WriteMessage(websocket.BinaryMessage, []byte("k"))
	if got := <-writes; string(got) != "k" {
		t.Fatalf("got %q", got)
	}
	peer.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	if err := <-done; err != nil {
		t.Fatalf("WriteTo after the peer's close: %v", err)
	}
}

type chanWriter chan []byte

func (w chanWriter) Write(p []byte) (int, error) {
	w <- append([]byte(nil), p...)
	return len(p), nil
}

// ReadFrom sends each read as one message.
func TestReadFromMessagePerRead(t *testing.T) {
	c, peer := pairConns(t)
	data := bytes.Repeat([]byte("r"), 3*MaxMessage/2)
	go c.ReadFrom(bytes.NewReader(data))
	for _, want := range []int{MaxMessage, MaxMessage / 2} {
		_, msg, err := peer.ReadMessage()
		if err != nil || len(msg) != want {
			t.Fatalf("message of %d bytes, err %v; want %d", len(msg), err, want)
		}
	}
}
