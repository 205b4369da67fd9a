package server

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/hub"
)

// Links never block each other (the model is tailscale's DERP server: a
// small queue per peer, a short write timeout, a slow peer is dropped).
//
// A control message for an agent (a run, an ack, a revocation) is queued in
// its link's outbox and written by the link's own writer goroutine, so the
// dispatcher, the session broker and broadcasts never wait on one agent's
// TCP window. A write that takes longer than linkWriteTimeout ends the link;
// an outbox that fills up (the agent reads more slowly than the relay sends)
// ends it too, and Send fails at once with hub.ErrBusy. Either way the agent
// reconnects, and what it was sent comes again: the dispatcher re-sends the
// runs in flight of every agent that comes online, and the agent re-sends
// unacknowledged results, so a dropped message is never a lost one.
//
// The writer runs only while the outbox holds messages: an idle link costs
// no goroutine and no queue (a relay holds tens of thousands of idle links).
const (
	outboxSize       = 128             // control messages queued per link
	linkWriteTimeout = 5 * time.Second // one frame's write to an agent
)

// outbox is one link's queue of control messages and the state of its
// writer. The writer goroutine is owned by the link: close stops it and
// waits for it.
type outbox struct {
	mu      sync.Mutex
	queue   []wire.Envelope
	writing bool // a writer goroutine is draining queue
	drop    bool // the queue overflowed: the writer ends the link
	closed  bool
	wg      sync.WaitGroup // the writer
}

// send queues env for sess and starts the writer if none runs. It never
// blocks on the network: a full outbox returns hub.ErrBusy and has the
// writer drop the link; a closed one returns hub.ErrOffline.
func (o *outbox) send(sess *mux.Session, env wire.Envelope) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return hub.ErrOffline
	}
	if len(o.queue) >= outboxSize {
		// The agent takes messages more slowly than they come: its writer
		// (running, since the queue is not empty) ends the link after the
		// write in progress, which waits at most linkWriteTimeout. The
		// agent reconnects and is sent what is still due.
		o.drop = true
		o.mu.Unlock()
		return hub.ErrBusy
	}
	o.queue = append(o.queue, env)
	if !o.writing {
		o.writing = true
		o.wg.Add(1)
		go o.drain(sess)
	}
	o.mu.Unlock()
	return nil
}

// drain writes queued messages in order until the outbox is empty or the
// link fails, then exits. A failed write has closed the connection (the
// link's Run then ends and closes the outbox); what was still queued is
// dropped, to be sent again after the agent reconnects.
func (o *outbox) drain(sess *mux.Session) {
	defer o.wg.Done()
	for {
		o.mu.Lock()
		if o.drop && !o.closed {
			o.closed = true
			o.queue, o.writing = nil, false
			o.mu.Unlock()
			sess.Close(websocket.CloseTryAgainLater, "the agent reads too slowly; reconnect")
			return
		}
		if len(o.queue) == 0 || o.closed {
			o.queue, o.writing = nil, false
			o.mu.Unlock()
			return
		}
		env := o.queue[0]
		o.queue[0] = wire.Envelope{}
		o.queue = o.queue[1:]
		o.mu.Unlock()
		if err := sess.SendControl(env); err != nil {
			o.mu.Lock()
			o.closed = true
			o.queue, o.writing = nil, false
			o.mu.Unlock()
			return
		}
	}
}

// close refuses further messages, drops what is queued and waits for the
// writer. The link's connection must be closed first, so that a write in
// progress fails at once.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.queue = nil
	o.mu.Unlock()
	o.wg.Wait()
}
