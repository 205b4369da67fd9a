// Package access ends, on every relay node at once, what API tokens give
// access to: when a token is revoked (and, later, when a person's account
// is disabled, for all of their tokens), EndAccess
//
//  1. marks the tokens' SSH user certificates that have not expired revoked
//     in the store (the relay records every certificate it issues);
//  2. publishes the revocation on the bus, so that every relay node, this
//     one included, tells the agents connected to it (wire.MsgSSHRevoked:
//     the agents with a session of these tokens first, then every other
//     one) and then ends the tokens' sessions it brokers
//     (sessions.Broker.EndAccess: the agent, told first, ends the SSH
//     connection and tells the technician why; the relay cuts what is left
//     half a second later).
//
// Agents that are offline learn the list when they connect: Greet sends
// every revoked certificate that has not expired right after the welcome.
// Each node keeps that list in memory (loaded from the store at start,
// updated from the bus), so a reconnect storm costs no query.
//
// Jobs are not stopped: they belong to the organisation, not to the person
// who started them.
//
// Ownership: New subscribes to the bus; Close unsubscribes. The bus calls
// the handler on its own goroutine (synchronously in Publish for bus.Local);
// the handler starts no goroutine that outlives it (hub.Broadcast waits for
// its writers).
package access

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Subject is the bus subject of access ends.
const Subject = "patchbay.access.ended"

// Bus carries events between relay nodes (server/bus; the same bus as the
// hub's agent revocations).
type Bus interface {
	Publish(ctx context.Context, subject string, data []byte) error
	Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error)
}

// Agents reaches the agents connected to this node (*hub.Hub).
type Agents interface {
	Send(agentID, typ string, body any) error
	Broadcast(typ string, body any, skip func(id string) bool) int
}

// Sessions is this node's session broker (*sessions.Broker).
type Sessions interface {
	AgentsOf(tokenIDs []string) []string
	EndAccess(tokenIDs []string, reason string) int
}

// Config configures an Ender.
type Config struct {
	Store    *store.Store
	Bus      Bus
	Agents   Agents
	Sessions Sessions
	Log      zerolog.Logger
	Now      func() time.Time // default time.Now
}

// Ender ends access. It is safe for concurrent use.
type Ender struct {
	cfg   Config
	unsub func()

	mu       sync.Mutex
	revoked  map[uint64]wire.RevokedCert // revoked certificates not yet expired
	greeting []wire.Envelope             // revoked as ssh_revoked messages; nil: rebuild
	expiry   time.Time                   // the soonest ValidBefore in revoked
}

// event is what travels on the bus.
type event struct {
	TokenIDs []string           `json:"token_ids"`
	Reason   string             `json:"reason"`
	Certs    []wire.RevokedCert `json:"certs,omitempty"`
}

// Limits on one EndAccess call.
const (
	MaxTokens    = 10_000
	maxReasonLen = wire.MaxEndReasonLen
)

// New loads the revoked certificates that have not expired and subscribes
// to the bus.
func New(ctx context.Context, cfg Config) (*Ender, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Ender{cfg: cfg, revoked: map[uint64]wire.RevokedCert{}}
	list, err := cfg.Store.RevokedSSHCerts(ctx, e.now())
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	e.remember(toWire(list))
	unsub, err := cfg.Bus.Subscribe(Subject, e.handle)
	if err != nil {
		return nil, fmt.Errorf("access: subscribe to %s: %w", Subject, err)
	}
	e.unsub = unsub
	return e, nil
}

// Close stops listening on the bus.
func (e *Ender) Close() { e.unsub() }

func (e *Ender) now() time.Time { return e.cfg.Now().UTC() }

// Result is what EndAccess did on the store's side; the sessions are ended
// by every node as the event reaches it.
type Result struct {
	// Certificates is how many of the tokens' SSH certificates are revoked
	// and not yet expired: the agents refuse them from now on.
	Certificates int
}

// EndAccess ends everything the API tokens tokenIDs give access to, on
// every relay node: their SSH certificates are revoked at the agents, and
// the sessions they opened end with reason (what the technician is shown
// and the session's end reason, e.g. "access revoked: API token alice was
// revoked by admin"; at most 500 bytes). Jobs go on.
//
// Call it after the tokens themselves are revoked (or their user disabled)
// in the store, so that no new certificate or session can start meanwhile:
// certificates issued while it runs, and sessions that start while it runs,
// check the token again after they are recorded. It is idempotent: calling
// it again re-sends what is revoked and ends what is left.
func (e *Ender) EndAccess(ctx context.Context, tokenIDs []string, reason string) (Result, error) {
	if len(tokenIDs) == 0 {
		return Result{}, nil
	}
	if len(tokenIDs) > MaxTokens {
		return Result{}, fmt.Errorf("end access: %d tokens at once, at most %d: call it in parts", len(tokenIDs), MaxTokens)
	}
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	certs, err := e.cfg.Store.RevokeSSHCertsOfTokens(ctx, tokenIDs, e.now())
	if err != nil {
		return Result{}, fmt.Errorf("end access: %w", err)
	}
	data, err := json.Marshal(event{TokenIDs: tokenIDs, Reason: reason, Certs: toWire(certs)})
	if err != nil {
		return Result{}, fmt.Errorf("end access: encode: %w", err)
	}
	if err := e.cfg.Bus.Publish(ctx, Subject, data); err != nil {
		// The store has it: agents learn it when they reconnect, and
		// calling EndAccess again sends it again.
		return Result{Certificates: len(certs)}, fmt.Errorf("end access: publish to the other relays: %w", err)
	}
	return Result{Certificates: len(certs)}, nil
}

// ResyncReason is the end reason of sessions ended by Resync: the
// original reason travelled on the bus while this node could not hear it.
const ResyncReason = "access revoked: an API token was revoked while this relay was cut off from the other relays"

// Resync catches up with the access ends published while this node was cut
// off from the bus: certificates revoked in the store that it does not
// know of are acted on as if their event had arrived (agents told,
// sessions of their tokens ended). It returns how many it found.
func (e *Ender) Resync(ctx context.Context) (int, error) {
	list, err := e.cfg.Store.RevokedSSHCerts(ctx, e.now())
	if err != nil {
		return 0, fmt.Errorf("access: catch up with revocations: %w", err)
	}
	e.mu.Lock()
	var missed []store.SSHCert
	tokens := map[string]bool{}
	for _, c := range list {
		if _, ok := e.revoked[c.Serial]; !ok {
			missed = append(missed, c)
			tokens[c.TokenID] = true
		}
	}
	e.mu.Unlock()
	if len(missed) == 0 {
		return 0, nil
	}
	ev := event{Reason: ResyncReason, Certs: toWire(missed)}
	for id := range tokens {
		if id != "" {
			ev.TokenIDs = append(ev.TokenIDs, id)
		}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("access: catch up with revocations: encode: %w", err)
	}
	e.handle(data)
	return len(missed), nil
}

// handle acts on an access end published by any node (this one included).
func (e *Ender) handle(data []byte) {
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		e.cfg.Log.Error().Err(err).Msg("access end from the bus: undecodable; ignored")
		return
	}
	certs := valid(ev.Certs)
	// The list first: an agent welcomed from now on gets it in Greet, so
	// none is missed between this and the broadcast.
	e.remember(certs)
	msgs := wire.SplitRevoked(certs)
	bodies := make([]json.RawMessage, len(msgs))
	for i, m := range msgs {
		bodies[i], _ = json.Marshal(m) // plain structs: cannot fail
	}
	// The agents of these tokens' sessions first, so that they end the SSH
	// connections and tell the technicians why before the relay cuts them.
	first := e.cfg.Sessions.AgentsOf(ev.TokenIDs)
	for _, agent := range first {
		for _, b := range bodies {
			if err := e.cfg.Agents.Send(agent, wire.MsgSSHRevoked, b); err != nil {
				e.cfg.Log.Debug().Err(err).Str("agent_id", agent).Msg("tell an agent of revoked certificates")
			}
		}
	}
	ended := e.cfg.Sessions.EndAccess(ev.TokenIDs, ev.Reason)
	skip := make(map[string]bool, len(first))
	for _, a := range first {
		skip[a] = true
	}
	told := 0
	for _, b := range bodies {
		told = e.cfg.Agents.Broadcast(wire.MsgSSHRevoked, b, func(id string) bool { return skip[id] })
	}
	e.cfg.Log.Info().Strs("token_ids", ev.TokenIDs).Str("reason", ev.Reason).Int("certificates", len(certs)).
		Int("sessions_ended", ended).Int("agents_told", told+len(first)).Msg("access ended")
}

// Greet sends a newly welcomed agent every revoked certificate that has not
// expired (nothing when there is none), as ssh_revoked messages.
func (e *Ender) Greet(send func(env wire.Envelope) error) error {
	for _, env := range e.envelopes() {
		if err := send(env); err != nil {
			return err
		}
	}
	return nil
}

// Revoked returns the revoked certificates this node knows of that have
// not expired.
func (e *Ender) Revoked() []wire.RevokedCert {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pruneLocked(e.now())
	out := make([]wire.RevokedCert, 0, len(e.revoked))
	for _, c := range e.revoked {
		out = append(out, c)
	}
	return out
}

func (e *Ender) remember(certs []wire.RevokedCert) {
	if len(certs) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range certs {
		e.revoked[c.Serial] = c
		if e.expiry.IsZero() || c.ValidBefore.Before(e.expiry) {
			e.expiry = c.ValidBefore
		}
	}
	e.greeting = nil
}

// envelopes returns the greeting, rebuilt when the list changed or an
// entry expired.
func (e *Ender) envelopes() []wire.Envelope {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pruneLocked(e.now())
	if e.greeting != nil || len(e.revoked) == 0 {
		return e.greeting
	}
	list := make([]wire.RevokedCert, 0, len(e.revoked))
	for _, c := range e.revoked {
		list = append(list, c)
	}
	for _, m := range wire.SplitRevoked(list) {
		env, err := wire.NewEnvelope(wire.MsgSSHRevoked, "", m)
		if err != nil {
			e.cfg.Log.Error().Err(err).Msg("encode the revoked certificates for agents")
			return nil
		}
		e.greeting = append(e.greeting, env)
	}
	return e.greeting
}

// pruneLocked forgets the certificates expired at now.
func (e *Ender) pruneLocked(now time.Time) {
	if e.expiry.IsZero() || now.Before(e.expiry) {
		return
	}
	e.expiry = time.Time{}
	for s, c := range e.revoked {
		if !now.Before(c.ValidBefore) {
			delete(e.revoked, s)
			continue
		}
		if e.expiry.IsZero() || c.ValidBefore.Before(e.expiry) {
			e.expiry = c.ValidBefore
		}
	}
	e.greeting = nil
}

func toWire(list []store.SSHCert) []wire.RevokedCert {
	out := make([]wire.RevokedCert, 0, len(list))
	for _, c := range list {
		out = append(out, wire.RevokedCert{Serial: c.Serial, KeyID: c.KeyID, ValidBefore: c.ValidBefore})
	}
	return out
}

// valid keeps the entries an agent would accept (another node's event
// could come from a newer or broken build).
func valid(list []wire.RevokedCert) []wire.RevokedCert {
	out := list[:0]
	for _, c := range list {
		one := wire.SSHRevoked{Certs: []wire.RevokedCert{c}}
		if one.Validate() == nil {
			out = append(out, c)
		}
	}
	return out
}
