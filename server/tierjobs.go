package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/jobs"
)

// Jobs across the tier (server/jobs/tier.go has the scheduling side). The
// relay that holds a job's lease sends each run through jobLinks: to an
// agent held here, on its link as on a relay alone; to an agent held by
// another relay, as a core NATS message on that relay's dispatch subject,
// which that relay queues on the agent's link. A request lost on the way is
// sent again by the holder (jobs.resendAfter), and the agent's journal runs
// a run once however often it arrives.

// dispatchSubject is where relay node takes messages for the agents it holds.
func dispatchSubject(node string) string { return "patchbay.node." + node + ".dispatch" }

// dispatchMsg is a message for an agent held by another relay.
type dispatchMsg struct {
	Agent string          `json:"agent"`
	Type  string          `json:"type"` // wire.MsgRun or wire.MsgRunCancel
	Body  json.RawMessage `json:"body"`
}

// jobLinks are the agent links as the dispatcher of a tier sees them: an
// agent is online when any relay holds it, and a message for it goes to
// that relay.
type jobLinks struct {
	hub  *hub.Hub
	tier *tier
}

func (l jobLinks) Online(id string) bool { return l.tier.online(id) }

func (l jobLinks) Send(id, typ string, body any) error {
	if l.hub.Online(id) {
		return l.hub.Send(id, typ, body)
	}
	node, ok := l.tier.presence.Where(id)
	if !ok || node == l.tier.node {
		return hub.ErrOffline
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	b, err := json.Marshal(dispatchMsg{Agent: id, Type: typ, Body: raw})
	if err != nil {
		return err
	}
	// No flush: the client sends its buffer within milliseconds, and a
	// job over many agents is not a round trip per run.
	if err := l.tier.nats.Conn().Publish(dispatchSubject(node), b); err != nil {
		return fmt.Errorf("send %s to agent %s on relay %s: %w", typ, id, node, err)
	}
	return nil
}

// jobsBus is the bus as the dispatcher uses it: notes are published
// without waiting for the server (they are hints; the store is the truth).
type jobsBus struct{ n *bus.NATS }

func (b jobsBus) Publish(_ context.Context, subject string, data []byte) error {
	return b.n.Conn().Publish(subject, data)
}

func (b jobsBus) Subscribe(subject string, fn func([]byte)) (func(), error) {
	return b.n.Subscribe(subject, fn)
}

// links returns the agent links the dispatcher sends through: the hub for
// a relay alone (no NATS on its path), jobLinks in a tier.
func (t *tier) links(h *hub.Hub) jobs.Links {
	if t.nats == nil {
		return h
	}
	return jobLinks{hub: h, tier: t}
}

// joinJobs makes the dispatcher one of the tier's and starts taking the
// messages other relays send to the agents held here (until close). Call
// it before the dispatcher's Start; a relay alone does nothing.
func (t *tier) joinJobs(h *hub.Hub, d *jobs.Dispatcher, log zerolog.Logger) error {
	if t.nats == nil {
		return nil
	}
	d.JoinTier(jobs.Tier{Node: t.node, Bus: jobsBus{t.nats}})
	unsub, err := t.nats.Subscribe(dispatchSubject(t.node), func(data []byte) {
		if err := deliverDispatch(h, data); err != nil {
			if errors.Is(err, hub.ErrOffline) {
				// Gone since the holder looked: it sends the run again
				// when the agent is back.
				log.Debug().Err(err).Msg("message from the job's relay not delivered")
				return
			}
			log.Warn().Err(err).Int("bytes", len(data)).Msg("malformed dispatch message from the tier dropped")
		}
	})
	if err != nil {
		return err
	}
	t.stopJobs = unsub
	return nil
}

// deliverDispatch queues a message from another relay on the agent's link.
func deliverDispatch(h *hub.Hub, data []byte) error {
	var m dispatchMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("dispatch message: %w", err)
	}
	if m.Agent == "" {
		return errors.New("dispatch message: no agent")
	}
	switch m.Type {
	case wire.MsgRun:
		var req wire.RunRequest
		if err := json.Unmarshal(m.Body, &req); err != nil || req.RunID == "" {
			return fmt.Errorf("dispatch message: run request for %s: %v", m.Agent, err)
		}
		return h.Send(m.Agent, m.Type, req)
	case wire.MsgRunCancel:
		var c wire.RunCancel
		if err := json.Unmarshal(m.Body, &c); err != nil || c.RunID == "" {
			return fmt.Errorf("dispatch message: run cancel for %s: %v", m.Agent, err)
		}
		return h.Send(m.Agent, m.Type, c)
	}
	return fmt.Errorf("dispatch message: type %q is not for agents of another relay", m.Type)
}
