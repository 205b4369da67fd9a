// Package presence knows which relay of a tier holds which agent.
//
// Local serves a single relay: an agent is online when this relay's hub
// holds it. KV serves a tier of relays sharing a NATS server: each relay
// writes the agents it holds into the JetStream key-value bucket Bucket
// (key: agent ID, value: the relay's node ID), refreshes them every TTL/3
// and deletes an agent's key when its link ends. The bucket's TTL lets the
// keys of a lost relay expire, so its agents go offline everywhere within
// one TTL. Every relay watches the bucket into memory, so Online costs no
// round trip.
package presence

// Local is the presence of a single relay: its hub's own map.
type Local struct {
	// Here reports whether this relay holds the agent (hub.Online).
	Here func(id string) bool
}

// Online reports whether the agent is connected to this relay.
func (l Local) Online(id string) bool { return l.Here(id) }

// Where returns "" and whether the agent is connected (to this relay, the
// only one).
func (l Local) Where(id string) (node string, ok bool) { return "", l.Here(id) }

// Connected does nothing: the hub is the record.
func (Local) Connected(string) {}

// Disconnected does nothing: the hub is the record.
func (Local) Disconnected(string) {}

// Close does nothing.
func (Local) Close() {}
