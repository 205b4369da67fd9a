package console

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/sse"
	"github.com/patchbay/patchbay/server/store"
)

// Events fans agent presence changes out to the console's open event
// streams. The relay reports a batch of agents that came or went once it
// has stored it (so a page that reloads its list on the event sees the new
// state). Events owns no goroutine: each stream's handler drains its own
// subscription, and a slow browser only ever holds a bounded set of IDs
// (past maxPending it is told to reload everything instead).
//
// With several relays this becomes a bus subscription (presence travels
// over NATS); the streams stay as they are.
type Events struct {
	mu   sync.Mutex
	subs map[*subscription]struct{}
}

// maxPending bounds the agent IDs queued for one stream.
const maxPending = 256

type subscription struct {
	wake chan struct{} // capacity 1: "something is pending"

	mu     sync.Mutex
	ids    []string
	resync bool
}

func newEvents() *Events { return &Events{subs: map[*subscription]struct{}{}} }

// Changed reports that the agents with ids came online, went offline or
// sent a new inventory. It never blocks.
func (e *Events) Changed(ids []string) {
	if len(ids) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		s.mu.Lock()
		if !s.resync {
			if len(s.ids)+len(ids) > maxPending {
				s.ids, s.resync = nil, true
			} else {
				s.ids = append(s.ids, ids...)
			}
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (e *Events) subscribe() *subscription {
	s := &subscription{wake: make(chan struct{}, 1)}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	return s
}

func (e *Events) unsubscribe(s *subscription) {
	e.mu.Lock()
	delete(e.subs, s)
	e.mu.Unlock()
}

// Streams returns the number of open event streams.
func (e *Events) Streams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

func (s *subscription) take() (ids []string, resync bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, resync = s.ids, s.resync
	s.ids, s.resync = nil, false
	return ids, resync
}

// AgentsEvent is the data of an "agents" event: which agents changed, or
// resync when too many did to list (reload the whole view).
type AgentsEvent struct {
	Agents []AgentState `json:"agents,omitempty"`
	Resync bool         `json:"resync,omitempty"`
}

// AgentState is an agent's presence as the event reports it.
type AgentState struct {
	ID     string `json:"id"`
	Online bool   `json:"online"`
}

// Stream timing: a comment line every keepalive keeps proxies from closing
// an idle stream and finds dead browsers; the session is checked again
// then too, so a logged-out or expired session stops streaming.
const (
	keepalive    = 20 * time.Second
	writeTimeout = 10 * time.Second
)

// handleEvents is GET /console/events: a server-sent event stream of
// "agents" events, and "logout" when the session has ended.
func (c *Console) handleEvents(streams context.Context, w http.ResponseWriter, r *http.Request) {
	cs, _, ok := c.session(w, r, true)
	if !ok {
		return
	}
	sub := c.events.subscribe() // before the stream opens: no change is missed
	defer c.events.unsubscribe(sub)
	sw, ok := sse.Start(w, writeTimeout)
	if !ok {
		return
	}
	tick := time.NewTicker(keepalive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-streams.Done():
			return
		case <-sub.wake:
			ids, resync := sub.take()
			ev := AgentsEvent{Resync: resync}
			reach, err := c.reaches(r.Context(), cs.TokenHash)
			if err != nil {
				sw.Event("logout", strconv.AppendQuote(nil, err.Error()))
				return
			}
			for _, id := range ids {
				if reach(id) {
					ev.Agents = append(ev.Agents, AgentState{ID: id, Online: c.cfg.Online(id)})
				}
			}
			if len(ev.Agents) == 0 && !ev.Resync {
				continue // only agents of other sites changed
			}
			data, err := json.Marshal(ev)
			if err != nil || !sw.Event("agents", data) {
				return
			}
		case <-tick.C:
			if err := c.stillValid(r.Context(), cs.Hash); err != nil {
				sw.Event("logout", strconv.AppendQuote(nil, err.Error()))
				return
			}
			if !sw.Keepalive() {
				return
			}
		}
	}
}

// reaches returns whether the session's token reaches an agent: the
// presence of other sites' agents is not told, so that other customers'
// machines are not even confirmed to exist. Read at each event, so a move
// or a change of grants counts at once.
func (c *Console) reaches(ctx context.Context, tokenHash string) (func(agentID string) bool, error) {
	tok, err := c.cfg.Store.LookupAPIToken(ctx, tokenHash, c.now())
	if err != nil {
		return nil, errors.New("the API token of this console session is expired or revoked: log in again")
	}
	if tok.Role == apiv1.RoleAdmin {
		return func(string) bool { return true }, nil
	}
	scope := store.ScopeOf(tok.Sites)
	return func(id string) bool {
		ag, err := c.cfg.Store.GetAgent(ctx, id)
		return err == nil && scope.Has(ag.SiteID)
	}, nil
}

// stillValid checks that a session has not ended, expired or lost its API
// token since it was opened.
func (c *Console) stillValid(ctx context.Context, hash string) error {
	cs, err := c.cfg.Store.GetConsoleSession(ctx, hash)
	if err != nil {
		return errors.New("console session ended: log in again")
	}
	now := c.now()
	if !now.Before(cs.ExpiresAt) || now.Sub(cs.LastUsedAt) >= c.cfg.IdleTimeout {
		return errors.New("console session expired: log in again")
	}
	if _, err := c.cfg.Store.LookupAPIToken(ctx, cs.TokenHash, now); err != nil {
		return errors.New("the API token of this console session is expired or revoked: log in again")
	}
	return nil
}

var _ api.BrowserAuth = (*Console)(nil)
