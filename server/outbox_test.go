package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/hub"
)

// A peer that never reads fills its link; sends never wait for it: they
// queue, then fail with hub.ErrBusy once the outbox is full, and the link
// is dropped (after the write in progress times out). Close waits for the
// writer; later sends fail with hub.ErrOffline.
func TestOutboxNeverBlocksAndDropsASlowPeer(t *testing.T) {
	sessions := make(chan *mux.Session, 1)
	ran := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		sess := mux.New(ws, mux.Config{WriteTimeout: linkWriteTimeout})
		sessions <- sess
		ran <- sess.Run(context.Background())
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() // never read
	sess := <-sessions

	env, err := wire.NewEnvelope(wire.MsgRunAck, "", map[string]string{"pad": strings.Repeat("x", 32<<10)})
	if err != nil {
		t.Fatal(err)
	}
	var o outbox
	busy := false
	for i := 0; i < 2000 && !busy; i++ {
		start := time.Now()
		err := o.send(sess, env)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("send %d waited %v", i, d)
		}
		switch {
		case errors.Is(err, hub.ErrBusy):
			busy = true
		case err != nil:
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if !busy {
		t.Fatal("2000 sends of 32 KB to a peer that never reads did not fill the outbox")
	}
	select {
	case <-ran: // the link ended
	case <-time.After(30 * time.Second):
		t.Fatal("the slow peer's link was not dropped")
	}
	o.close()
	if err := o.send(sess, env); !errors.Is(err, hub.ErrOffline) {
		t.Fatalf("send after close: %v", err)
	}
}
