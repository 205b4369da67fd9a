package sessions

import (
	"context"
	"errors"
	"time"
)

// Ending sessions when access ends: every Serve in progress remembers the
// API token that asked for it (Request.TokenID), from before the request is
// recorded until Serve returns. EndAccess, called on every relay node when
// tokens are revoked (server/access), fails the requests of those tokens
// that are still waiting for the endpoint, and cuts their live sessions
// after revokeGrace: long enough for the agent, told of the revoked
// certificates just before, to end the SSH connection itself and tell the
// technician why on the channel's stderr. The session's end is recorded by
// "revoked" with the reason EndAccess was given, whoever cut it first.
//
// A request that passed the token check just before the revocation could
// slip past EndAccess's scan: Serve checks the token in the store again
// after it is tracked (the revocation is stored before EndAccess runs), and
// a session that becomes live after the scan finds its reason set.

// revokeGrace is how long a live session of a revoked token is left to the
// agent to end before the relay cuts it.
const revokeGrace = 500 * time.Millisecond

// byRevoked is a session's end_by when its technician's access ended.
const byRevoked = "revoked"

// access is the API token behind one Serve call.
type access struct {
	tokenID string
	revoked chan string // buffered 1; the reason, once (wakes ask)
	reason  string      // guarded by Broker.mu; set once by EndAccess
}

// track registers session id's token, then checks that the token is still
// active. On error the session must not go on.
func (b *Broker) track(ctx context.Context, id, tokenID string) (*access, error) {
	acc := &access{tokenID: tokenID, revoked: make(chan string, 1)}
	b.mu.Lock()
	b.access[id] = acc
	b.mu.Unlock()
	if tokenID == "" {
		return acc, nil
	}
	ok, err := b.cfg.Store.APITokenActive(ctx, tokenID, b.now())
	switch {
	case err != nil:
		b.cfg.Log.Error().Err(err).Msg("check the session's API token")
		return acc, errors.New("the relay could not check the API token; see its log")
	case !ok:
		return acc, errors.New("access revoked: the API token was revoked or expired")
	}
	return acc, nil
}

func (b *Broker) untrack(id string) {
	b.mu.Lock()
	delete(b.access, id)
	b.mu.Unlock()
}

// revokedReason is why session id's access was revoked ("" if it was not).
func (b *Broker) revokedReason(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if acc := b.access[id]; acc != nil {
		return acc.reason
	}
	return ""
}

// AgentsOf returns the agents of this node's sessions (waiting or live)
// opened by any of tokenIDs: the agents to tell first that the tokens'
// certificates are revoked.
func (b *Broker) AgentsOf(tokenIDs []string) []string {
	set := toSet(tokenIDs)
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for id, acc := range b.access {
		if !set[acc.tokenID] {
			continue
		}
		agent := ""
		if p := b.pending[id]; p != nil {
			agent = p.agentID
		} else if l := b.live[id]; l != nil {
			agent = l.agentID
		}
		if agent != "" && !seen[agent] {
			seen[agent] = true
			out = append(out, agent)
		}
	}
	return out
}

// EndAccess ends, on this relay node, every session that any of tokenIDs
// opened, whatever its state: a request still waiting for the endpoint
// fails at once (and is withdrawn from the agent); a live session is cut
// within revokeGrace unless the agent ends it first. The technician's
// websocket closes with "session ended: " + reason, and the session's end
// is recorded by "revoked" with reason. It returns how many sessions it
// ended and does not wait for them.
func (b *Broker) EndAccess(tokenIDs []string, reason string) int {
	if reason == "" {
		reason = "access revoked"
	}
	set := toSet(tokenIDs)
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for id, acc := range b.access {
		if !set[acc.tokenID] || acc.reason != "" {
			continue
		}
		acc.reason = reason
		acc.revoked <- reason // buffered, sent once
		if l := b.live[id]; l != nil {
			cutLater(l, reason)
		}
		n++
	}
	return n
}

// cutLater ends a live session after revokeGrace unless it ends before
// (bridge stops the timer). Called with Broker.mu held.
func cutLater(l *live, reason string) {
	if l.cut == nil {
		l.cut = time.AfterFunc(revokeGrace, func() { l.end(&endError{by: byRevoked, reason: reason}) })
	}
}

func toSet(ids []string) map[string]bool {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id != "" {
			set[id] = true
		}
	}
	return set
}
