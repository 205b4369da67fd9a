package consent

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// answer is what a backend learned from the user.
type answer struct {
	approved bool
	by       string // who answered
	message  string
	// failed: the backend could not ask at all (deny, By ByAgent, message says why).
	failed bool
	// choice: the restart chosen for a KindReboot request (ChoiceNow,
	// ChoiceHour, ChoiceTonight), with approved set; "" otherwise.
	choice string
}

// asker asks the user about one request and blocks until they answer or
// ctx ends (its deadline is the request's). It must not outlive ctx by more
// than the time it takes to kill and reap a program.
type asker interface {
	ask(ctx context.Context, req Request) answer
}

// event is a session event told to the user in notify mode.
type event struct {
	kind      string // "started", "ended" or "reboot"
	live      liveInfo
	endReason string
	url       string // the web page, where the user can end the session ("" if none)
	text      string // "reboot": what the user is told
}

// notifier tells the user about an event without waiting for a decision.
type notifier interface {
	notify(ctx context.Context, ev event) error
}

// pending is a request waiting for its answer.
type pending struct {
	req Request
	ch  chan answer // buffered 1: the first answer wins
}

// answer records a if no answer was recorded yet; it reports whether a won.
func (p *pending) answer(a answer) bool {
	select {
	case p.ch <- a:
		return true
	default:
		return false
	}
}

// errNotPending: the web page answered a request that is not (or no longer) pending.
var errNotPending = errors.New("no such pending request (already answered or expired)")

// addPending registers req so that the web page shows it and can answer it.
func (c *Consent) addPending(req Request) (*pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("agent shutting down")
	}
	if req.SessionID == "" {
		return nil, errors.New("request without a session ID")
	}
	if _, dup := c.pending[req.SessionID]; dup {
		return nil, fmt.Errorf("a request for session %s is already pending", req.SessionID)
	}
	p := &pending{req: req, ch: make(chan answer, 1)}
	c.pending[req.SessionID] = p
	c.order = append(c.order, req.SessionID)
	c.addEventLocked(fmt.Sprintf("%s asks for a session", req.Technician))
	return p, nil
}

// removePending forgets p once Decide has its outcome.
func (c *Consent) removePending(p *pending) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[p.req.SessionID] != p {
		return
	}
	delete(c.pending, p.req.SessionID)
	for i, id := range c.order {
		if id == p.req.SessionID {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
}

// answerPending answers a pending request from the web page.
func (c *Consent) answerPending(id string, a answer) error {
	c.mu.Lock()
	p, ok := c.pending[id]
	c.mu.Unlock()
	if !ok || !p.answer(a) {
		return errNotPending
	}
	verb := "denied"
	if a.approved {
		verb = "approved"
	}
	c.mu.Lock()
	c.addEventLocked(fmt.Sprintf("%s %s the request of %s", a.by, verb, p.req.Technician))
	c.mu.Unlock()
	return nil
}

// pageEvent is a line of the web page's "recent" list.
type pageEvent struct {
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

// maxEvents bounds the web page's recent list.
const maxEvents = 20

func (c *Consent) addEventLocked(text string) {
	c.events = append(c.events, pageEvent{At: time.Now(), Text: text})
	if n := len(c.events) - maxEvents; n > 0 {
		c.events = append(c.events[:0], c.events[n:]...)
	}
}

// state is a snapshot of what the web page shows.
type state struct {
	pending []Request
	live    []Live
	events  []pageEvent
	canEnd  bool
}

// snapshot reads the pending requests, live sessions and recent events.
// Live sessions come from Sessions when there is one, else from Started/Ended.
func (c *Consent) snapshot() state {
	c.mu.Lock()
	var s state
	for _, id := range c.order {
		s.pending = append(s.pending, c.pending[id].req)
	}
	s.events = append(s.events, c.events...)
	if c.sessions == nil {
		for _, l := range c.lives {
			s.live = append(s.live, l.Live)
		}
	}
	c.mu.Unlock()
	if c.sessions != nil {
		s.canEnd = true
		for _, l := range c.sessions.Live() {
			l.Technician, l.Reason = cleanText(l.Technician, maxTechnician), cleanText(l.Reason, maxReason)
			s.live = append(s.live, l)
		}
	}
	sortLive(s.live)
	return s
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
