// Package hub knows which agents are connected to this relay and which are
// revoked. Calls that concern every relay node (revoking an agent) go through
// a Bus, so that a later multi-node deployment only swaps the bus.
package hub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/mux"
)

// ErrRevoked is returned by Register for an agent that has been revoked.
var ErrRevoked = errors.New("agent revoked")

// ErrOffline is returned by Send for an agent without a link to this node.
var ErrOffline = errors.New("agent offline")

// ErrBusy is returned by Send when the agent's link has more messages
// queued than it may hold: the agent reads too slowly, and its link is
// dropped. Like ErrOffline it means "not sent now": what the agent must get
// reaches it when it reconnects.
var ErrBusy = errors.New("agent link busy: the agent reads too slowly, its link is dropped and it reconnects")

// Link is a connected agent as the hub sees it.
type Link interface {
	AgentID() string
	// Close ends the link with a reason that the agent is told.
	Close(reason string)
	// Send queues one control message on the link without waiting for the
	// network; it fails with ErrOffline or ErrBusy when it cannot.
	Send(typ string, body any) error
	// Open opens a byte stream of the given kind to the agent.
	Open(ctx context.Context, kind string) (*mux.Stream, error)
}

// Bus carries hub events between relay nodes.
type Bus interface {
	Publish(ctx context.Context, subject string, data []byte) error
	Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error)
}

const subjectRevoked = "patchbay.agent.revoked"

// Option configures a Hub.
type Option func(*Hub)

// WithLog logs what the hub drops (a malformed revocation from the bus).
func WithLog(log zerolog.Logger) Option { return func(h *Hub) { h.log = log } }

// WithPresence calls up when an agent's link is registered and down when
// the agent has no link to this node any more (it left, or was revoked).
// They are called without the hub's lock held and must not block.
func WithPresence(up, down func(id string)) Option {
	return func(h *Hub) { h.up, h.down = up, down }
}

// Hub is safe for concurrent use.
type Hub struct {
	bus      Bus
	unsub    func()
	log      zerolog.Logger
	up, down func(id string)

	mu      sync.RWMutex
	links   map[string]Link     // online agents on this node, by ID
	revoked map[string]struct{} // revoked agent IDs; refused at the TLS handshake
}

// New returns a hub that learns of revocations through bus.
func New(bus Bus, revoked []string, opts ...Option) (*Hub, error) {
	h := &Hub{bus: bus, links: make(map[string]Link), revoked: make(map[string]struct{}, len(revoked)), log: zerolog.Nop()}
	for _, o := range opts {
		o(h)
	}
	for _, id := range revoked {
		h.revoked[id] = struct{}{}
	}
	unsub, err := bus.Subscribe(subjectRevoked, func(data []byte) {
		// Another relay's message: an agent ID, or nothing we act on.
		if !plausibleID(data) {
			h.log.Error().Int("bytes", len(data)).Msg("agent revocation from the bus: not an agent ID; ignored")
			return
		}
		h.revokeLocal(string(data))
	})
	if err != nil {
		return nil, err
	}
	h.unsub = unsub
	return h, nil
}

// Close stops listening on the bus.
func (h *Hub) Close() { h.unsub() }

// Register records l as its agent's link. An older link of the same agent is
// closed: the newest connection wins (the agent restarted, or its old TCP
// connection has not timed out yet).
func (h *Hub) Register(l Link) error {
	id := l.AgentID()
	h.mu.Lock()
	if _, ok := h.revoked[id]; ok {
		h.mu.Unlock()
		return ErrRevoked
	}
	old := h.links[id]
	h.links[id] = l
	h.mu.Unlock()
	if h.up != nil {
		h.up(id)
	}
	if old != nil {
		old.Close("replaced by a newer connection from the same agent")
	}
	return nil
}

// Unregister removes l if it is still its agent's current link and reports
// whether it was.
func (h *Hub) Unregister(l Link) bool {
	id := l.AgentID()
	h.mu.Lock()
	if h.links[id] != l {
		h.mu.Unlock()
		return false
	}
	delete(h.links, id)
	h.mu.Unlock()
	if h.down != nil {
		h.down(id)
	}
	return true
}

// Online reports whether the agent has a link to this relay.
func (h *Hub) Online(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.links[id]
	return ok
}

// Send sends a control message to an online agent.
func (h *Hub) Send(id, typ string, body any) error {
	h.mu.RLock()
	l := h.links[id]
	h.mu.RUnlock()
	if l == nil {
		return ErrOffline
	}
	return l.Send(typ, body)
}

// Open opens a stream of the given kind to an online agent.
func (h *Hub) Open(ctx context.Context, id, kind string) (*mux.Stream, error) {
	h.mu.RLock()
	l := h.links[id]
	h.mu.RUnlock()
	if l == nil {
		return nil, ErrOffline
	}
	return l.Open(ctx, kind)
}

// broadcastWorkers bounds the sends a Broadcast has in flight (a link's
// Send only queues the message; its own writer writes it).
const broadcastWorkers = 16

// Broadcast sends a control message to every agent online on this node for
// which skip (may be nil) is false, and returns how many it reached. It
// returns once every write has ended. An agent that cannot take it (its
// link is ending, or not yet welcomed) is skipped: what Broadcast carries
// must also reach agents another way when they (re)connect.
func (h *Hub) Broadcast(typ string, body any, skip func(id string) bool) int {
	h.mu.RLock()
	links := make([]Link, 0, len(h.links))
	for id, l := range h.links {
		if skip == nil || !skip(id) {
			links = append(links, l)
		}
	}
	h.mu.RUnlock()
	work := make(chan Link)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range min(broadcastWorkers, len(links)) {
		wg.Go(func() {
			for l := range work {
				if l.Send(typ, body) == nil {
					sent.Add(1)
				}
			}
		})
	}
	for _, l := range links {
		work <- l
	}
	close(work)
	wg.Wait()
	return int(sent.Load())
}

// Count returns the number of online agents.
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.links)
}

// IsRevoked reports whether the agent was revoked.
func (h *Hub) IsRevoked(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.revoked[id]
	return ok
}

// Revoke tells every relay node that the agent is revoked: each refuses it
// from now on and closes its link at once. The caller stores the revocation
// first, so a node that starts later learns it from the store.
//
// When the bus fails, this node acts at once all the same; the others
// learn it from the store when the bus is back.
func (h *Hub) Revoke(ctx context.Context, id string) error {
	err := h.bus.Publish(ctx, subjectRevoked, []byte(id))
	if err != nil {
		h.revokeLocal(id)
	}
	return err
}

// RevokeHere refuses the agent on this node and closes its link here, as
// a revocation from the bus does: for revocations this node learns from
// the store (those published while the bus was down).
func (h *Hub) RevokeHere(id string) { h.revokeLocal(id) }

func (h *Hub) revokeLocal(id string) {
	h.mu.Lock()
	h.revoked[id] = struct{}{}
	l := h.links[id]
	delete(h.links, id)
	h.mu.Unlock()
	if l != nil {
		if h.down != nil {
			h.down(id)
		}
		l.Close("agent revoked by an administrator")
	}
}

// plausibleID reports whether data can be an agent ID (a UUID; tests use
// shorter names): 1 to 64 letters, digits and hyphens.
func plausibleID(data []byte) bool {
	if len(data) == 0 || len(data) > 64 {
		return false
	}
	for _, c := range data {
		if !(c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
