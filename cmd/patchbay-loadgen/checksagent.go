package main

import (
	"context"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/patchbay/patchbay/internal/wire"
)

// Simulated agents' checks (issue 17, the checks part of the bench,
// checksbench.go), with agents --checks-flip-file: on each welcome an agent
// asks for its policies (policies_request), as agent/checks does, and keeps
// the set the relay sends; then every policy's interval, spread over it by
// agent, it reports one check_results message with a result per policy.
// Results pass, except that a share of them, read from the flip file (a
// number from 0 to 1, re-read every second), change state (passed <->
// failed). Nothing is run on the machine: the figures are the relay's.

// checksCounts are a process's check counters in its reports.
type checksCounts struct {
	Agents  int64 `json:"agents"`  // agents holding a non-empty policy set
	Sent    int64 `json:"sent"`    // results sent
	Changed int64 `json:"changed"` // of them, a state change
	Acked   int64 `json:"acked"`   // results the relay acknowledged
}

// add returns c plus d (nil counts as zero).
func (c *checksCounts) add(d *checksCounts) *checksCounts {
	if d == nil {
		return c
	}
	if c == nil {
		c = &checksCounts{}
	}
	c.Agents += d.Agents
	c.Sent += d.Sent
	c.Changed += d.Changed
	c.Acked += d.Acked
	return c
}

// simChecks is what the simulated agents of one process share for checks.
type simChecks struct {
	flipFile string
	flip     atomic.Uint64    // math.Float64bits of the share of results that change
	asks     chan *simAgent   // agents to send policies_request for (welcomed)
	agents   []*simAgent      // all of them, for the scheduler
	sent     atomic.Int64     // results sent
	changed  atomic.Int64     // of them, changes
	acked    atomic.Int64     // acknowledged by the relay
	wg       sync.WaitGroup   // the scheduler's goroutines; waited for by runAgents
	now      func() time.Time // time.Now
	randN    func(n uint64) uint64
}

// agentChecks is one simulated agent's policies and check states.
type agentChecks struct {
	mu       sync.Mutex
	policies []wire.Policy
	state    map[string]string // policy ID -> last state reported
	next     time.Time         // when its next results are due (zero: none held)
	offset   time.Duration     // its place in the interval
}

func newSimChecks(flipFile string, agents int) *simChecks {
	return &simChecks{flipFile: flipFile, asks: make(chan *simAgent, agents), now: time.Now,
		randN: func(n uint64) uint64 { return rand.Uint64N(n) }}
}

// connected queues a welcomed agent's policies_request (OnState must not
// block: the sender goroutine sends it).
func (c *simChecks) connected(a *simAgent) {
	select {
	case c.asks <- a:
	default: // the queue holds every agent once: it is already queued
	}
}

// control handles the relay's check messages for agent a; handled is false
// for other messages.
func (c *simChecks) control(a *simAgent, env wire.Envelope) (handled bool, err error) {
	switch env.Type {
	case wire.MsgPolicies:
		var m wire.Policies
		if err := wire.DecodeBody(env, &m); err != nil {
			return true, err
		}
		ac := a.chk
		ac.mu.Lock()
		if ac.state == nil {
			ac.state = map[string]string{}
			h := fnv.New64a()
			h.Write([]byte(a.link.AgentID()))
			ac.offset = time.Duration(h.Sum64() % uint64(time.Hour))
		}
		ac.policies = m.Policies
		ac.next = time.Time{}
		if len(m.Policies) > 0 {
			// The first results at once (as agent/checks runs a new
			// policy), spread over a second so one policy reaching every
			// agent is not one burst.
			ac.next = c.now().Add(ac.offset % time.Second)
		}
		ac.mu.Unlock()
		return true, nil
	case wire.MsgCheckAck:
		var m wire.CheckAck
		if err := wire.DecodeBody(env, &m); err != nil {
			return true, err
		}
		c.acked.Add(int64(len(m.IDs)))
		return true, nil
	case wire.MsgSelfHealAnswer:
		return true, nil
	}
	return false, nil
}

// run sends the policy requests and, every tick, the results that are due,
// until ctx ends.
func (c *simChecks) run(ctx context.Context) {
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-c.asks:
				if s := a.link.Session(); s != nil {
					_ = s.Send(wire.MsgPoliciesRequest, "", wire.PoliciesRequest{Proto: 1})
				}
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		lastRead := time.Time{}
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if now.Sub(lastRead) >= time.Second {
					c.readFlip()
					lastRead = now
				}
				for _, a := range c.agents {
					c.report(a, now)
				}
			}
		}
	}()
}

// readFlip reads the share of results that change from the flip file (a
// missing or malformed file leaves it as it was).
func (c *simChecks) readFlip() {
	b, err := os.ReadFile(c.flipFile)
	if err != nil {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil || f < 0 || f > 1 {
		return
	}
	c.flip.Store(math.Float64bits(f))
}

// report sends agent a's results if they are due at now.
func (c *simChecks) report(a *simAgent, now time.Time) {
	ac := a.chk
	ac.mu.Lock()
	if ac.next.IsZero() || now.Before(ac.next) {
		ac.mu.Unlock()
		return
	}
	s := a.link.Session()
	if s == nil {
		ac.mu.Unlock()
		return // offline: its next welcome brings the policies again
	}
	flip := math.Float64frombits(c.flip.Load())
	res := wire.CheckResults{Results: make([]wire.CheckResult, 0, len(ac.policies))}
	interval := time.Hour
	changed := 0
	for _, p := range ac.policies {
		interval = min(interval, max(time.Duration(p.Interval), time.Second))
		st, prev := wire.CheckPassed, ac.state[p.ID]
		if prev != "" {
			st = prev
			if flip > 0 && c.randN(1<<20) < uint64(flip*(1<<20)) {
				st = map[string]string{wire.CheckPassed: wire.CheckFailed, wire.CheckFailed: wire.CheckPassed}[prev]
			}
		}
		if st != prev && prev != "" {
			changed++
		}
		ac.state[p.ID] = st
		summary := "simulated check (load generator): passed"
		if st == wire.CheckFailed {
			summary = "simulated check (load generator): failed"
		}
		res.Results = append(res.Results, wire.CheckResult{ID: uuid.Must(uuid.NewV7()).String(), PolicyID: p.ID, State: st,
			Summary: summary, At: now.UTC()})
	}
	// The next round at the agent's own place in the interval: the
	// fleet's results spread evenly over it.
	next := now.Truncate(interval).Add(ac.offset % interval)
	for !next.After(now) {
		next = next.Add(interval)
	}
	ac.next = next
	ac.mu.Unlock()
	if len(res.Results) == 0 {
		return
	}
	if err := s.Send(wire.MsgCheckResults, "", res); err != nil {
		return
	}
	c.sent.Add(int64(len(res.Results)))
	c.changed.Add(int64(changed))
}

// counts returns the process's counters.
func (c *simChecks) counts() *checksCounts {
	n := int64(0)
	for _, a := range c.agents {
		a.chk.mu.Lock()
		if len(a.chk.policies) > 0 {
			n++
		}
		a.chk.mu.Unlock()
	}
	return &checksCounts{Agents: n, Sent: c.sent.Load(), Changed: c.changed.Load(), Acked: c.acked.Load()}
}
