package checks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/wire"
)

// checkTimeout bounds one check.
const checkTimeout = time.Minute

// Config configures an Engine.
type Config struct {
	// Dir holds the engine's files (created 0700 if missing).
	Dir string
	// Send sends a control message to the relay; it fails while offline.
	Send func(typ string, body any) error
	// Check runs a check that is not built in (a plugin's Check); nil:
	// such checks report an error.
	Check func(ctx context.Context, p wire.Policy) (state, summary string)
	Log   zerolog.Logger
	Now   func() time.Time
}

// Engine runs an agent's policies. Run owns its one goroutine; Control,
// Connected and FixDone may be called from any goroutine.
type Engine struct {
	cfg  Config
	wake chan struct{}

	mu       sync.Mutex
	policies []wire.Policy
	st       state
	finished []string // jobs whose runs ended lately: an answer may come after its run
	ask      bool     // connected: ask the relay for the policies
}

// New loads the engine's files.
func New(cfg Config) (*Engine, error) {
	if cfg.Dir == "" || cfg.Send == nil {
		return nil, errors.New("checks: Dir and Send are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("checks: %w", err)
	}
	e := &Engine{cfg: cfg, wake: make(chan struct{}, 1)}
	var ps wire.Policies
	if err := readJSON(filepath.Join(cfg.Dir, policiesFile), &ps); err != nil {
		return nil, err
	}
	e.policies = ps.Policies
	if err := readJSON(filepath.Join(cfg.Dir, stateFile), &e.st); err != nil {
		return nil, err
	}
	if e.st.Policies == nil {
		e.st.Policies = map[string]*policyState{}
	}
	return e, nil
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Run runs the checks as they fall due until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-e.wake:
			e.flush() // Connected, or an answer: send what waits
		}
		for {
			p, ok := e.due()
			if !ok {
				break
			}
			e.runOne(ctx, p)
			if ctx.Err() != nil {
				return nil
			}
		}
		timer.Reset(e.untilNext())
	}
}

// due returns a policy whose check is due now: one whose fix just ran
// first, then the most overdue.
func (e *Engine) due() (wire.Policy, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	var best wire.Policy
	var bestAt time.Time
	found := false
	for _, p := range e.policies {
		ps := e.st.Policies[p.ID]
		at := time.Time{}
		if ps != nil && !(ps.Pending != nil && ps.Pending.Done) {
			at = ps.LastAt.Add(time.Duration(p.Interval))
		}
		if at.After(now) {
			continue
		}
		if !found || at.Before(bestAt) {
			best, bestAt, found = p, at, true
		}
	}
	return best, found
}

// untilNext is the wait until the next check falls due (at most a minute,
// so a changed clock is noticed).
func (e *Engine) untilNext() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	next := time.Minute
	for _, p := range e.policies {
		if ps := e.st.Policies[p.ID]; ps != nil {
			next = min(next, max(ps.LastAt.Add(time.Duration(p.Interval)).Sub(now), 0))
		} else {
			next = 0
		}
	}
	return next
}

func (e *Engine) runOne(ctx context.Context, p wire.Policy) {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	var st, summary string
	if strings.HasPrefix(p.Check, "builtin:") {
		st, summary = RunBuiltin(cctx, p.Check, p.Params)
	} else if p.Plugin == nil {
		st, summary = wire.CheckError, "plugin "+p.Check+" has no build for this platform in the relay's catalog"
	} else if e.cfg.Check != nil {
		st, summary = e.cfg.Check(cctx, p)
	} else {
		st, summary = wire.CheckError, "plugin checks are not run by this agent"
	}
	cancel()
	if ctx.Err() != nil {
		return // stopping: this result is not trustworthy
	}
	e.record(p, st, summary)
	e.flush()
}

// record notes a check's result: queues it for the relay and asks for a
// self-heal when the policy allows one.
func (e *Engine) record(p wire.Policy, st, summary string) {
	log := e.cfg.Log.With().Str("policy", p.Name).Str("check", p.Check).Logger()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.ContainsFunc(e.policies, func(q wire.Policy) bool { return q.ID == p.ID }) {
		return // removed while it ran
	}
	now := e.cfg.Now().UTC()
	ps := e.st.Policies[p.ID]
	if ps == nil {
		ps = &policyState{}
		e.st.Policies[p.ID] = ps
	}
	res := wire.CheckResult{ID: uuid.Must(uuid.NewV7()).String(), PolicyID: p.ID, State: st, Summary: summary, At: now}
	if f := ps.Pending; f != nil && f.Done {
		res.FixJob = f.JobID
		if st == wire.CheckPassed {
			res.Fix = wire.FixHelped
			log.Info().Str("job_id", f.JobID).Msg("self-heal helped: the check passes")
		} else {
			res.Fix = wire.FixNotHelped
			ps.NoRepeat = true
			log.Warn().Str("job_id", f.JobID).Str("summary", summary).Msg("self-heal did not help: not repeated until the check passes")
		}
		ps.Pending = nil
	} else if f != nil && now.Sub(f.At) > 24*time.Hour {
		log.Warn().Str("request_id", f.RequestID).Msg("self-heal never ran: given up")
		ps.Pending = nil
	}
	if st == wire.CheckPassed {
		ps.NoRepeat = false
	}
	if st != ps.Last {
		log.Info().Str("state", st).Str("summary", summary).Msg("check state changed")
	}
	ps.Last, ps.LastAt = st, now
	e.enqueue(res)

	if st == wire.CheckFailed && p.Fix && !ps.NoRepeat && ps.Pending == nil {
		ps.Fixes = slices.DeleteFunc(ps.Fixes, func(t time.Time) bool { return now.Sub(t) > 24*time.Hour })
		if p.MaxFixesDay > 0 && len(ps.Fixes) >= p.MaxFixesDay {
			log.Info().Int("max_fixes_day", p.MaxFixesDay).Msg("self-heal limit for the day reached")
		} else {
			ps.Pending = &pendingFix{RequestID: uuid.Must(uuid.NewV7()).String(), Summary: summary, At: now}
			log.Info().Str("request_id", ps.Pending.RequestID).Msg("check failed: asking the relay for the policy's fix")
		}
	}
	e.saveLocked()
}

// enqueue adds res to the queue; a result with the same state as the last
// queued one of its policy replaces it.
func (e *Engine) enqueue(res wire.CheckResult) {
	q := e.st.Queue
	for i := len(q) - 1; i >= 0; i-- {
		if q[i].PolicyID != res.PolicyID {
			continue
		}
		if q[i].State == res.State && q[i].Fix == "" && res.Fix == "" {
			q[i] = res
			return
		}
		break
	}
	if len(q) >= maxQueue {
		q = slices.Delete(q, 0, len(q)-maxQueue+1)
	}
	e.st.Queue = append(q, res)
}

func (e *Engine) saveLocked() {
	if err := writeJSON(filepath.Join(e.cfg.Dir, stateFile), &e.st); err != nil {
		e.cfg.Log.Error().Err(err).Msg("check results are kept in memory only")
	}
}

// flush sends the queued results and unanswered self-heal requests; what
// the relay does not acknowledge is sent again on the next flush.
func (e *Engine) flush() {
	e.mu.Lock()
	ask := e.ask
	e.mu.Unlock()
	if ask {
		if err := e.cfg.Send(wire.MsgPoliciesRequest, wire.PoliciesRequest{Proto: 1}); err != nil {
			return
		}
		e.mu.Lock()
		e.ask = false
		e.mu.Unlock()
	}
	e.mu.Lock()
	batch := slices.Clone(e.st.Queue[:min(len(e.st.Queue), wire.MaxCheckResults)])
	var heals []wire.SelfHeal
	for id, ps := range e.st.Policies {
		if ps.Pending != nil && ps.Pending.JobID == "" {
			heals = append(heals, wire.SelfHeal{RequestID: ps.Pending.RequestID, PolicyID: id, Summary: ps.Pending.Summary})
		}
	}
	e.mu.Unlock()
	if len(batch) > 0 {
		if err := e.cfg.Send(wire.MsgCheckResults, wire.CheckResults{Results: batch}); err != nil {
			return
		}
	}
	for _, h := range heals {
		if err := e.cfg.Send(wire.MsgSelfHeal, h); err != nil {
			return
		}
	}
}

// Connected has Run ask for the policies and send what waited for the
// link; it does not block.
func (e *Engine) Connected() {
	e.mu.Lock()
	e.ask = true
	e.mu.Unlock()
	e.poke()
}

// Control handles the relay's check messages; handled is false for other
// messages.
func (e *Engine) Control(env wire.Envelope) (handled bool, err error) {
	switch env.Type {
	case wire.MsgPolicies:
		var m wire.Policies
		if err := wire.DecodeBody(env, &m); err != nil {
			return true, err
		}
		e.setPolicies(m)
		return true, nil
	case wire.MsgCheckAck:
		var m wire.CheckAck
		if err := wire.DecodeBody(env, &m); err != nil {
			return true, err
		}
		e.ack(m.IDs)
		return true, nil
	case wire.MsgSelfHealAnswer:
		var m wire.SelfHealAnswer
		if err := wire.DecodeBody(env, &m); err != nil {
			return true, err
		}
		e.answer(m)
		return true, nil
	}
	return false, nil
}

func (e *Engine) setPolicies(m wire.Policies) {
	e.mu.Lock()
	e.policies = m.Policies
	keep := map[string]bool{}
	for _, p := range m.Policies {
		keep[p.ID] = true
	}
	for id := range e.st.Policies {
		if !keep[id] {
			delete(e.st.Policies, id)
		}
	}
	if err := writeJSON(filepath.Join(e.cfg.Dir, policiesFile), m); err != nil {
		e.cfg.Log.Error().Err(err).Msg("policies are kept in memory only")
	}
	e.saveLocked()
	e.mu.Unlock()
	e.cfg.Log.Info().Int("policies", len(m.Policies)).Msg("policies received")
	e.poke()
}

func (e *Engine) ack(ids []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.st.Queue)
	e.st.Queue = slices.DeleteFunc(e.st.Queue, func(r wire.CheckResult) bool { return slices.Contains(ids, r.ID) })
	if len(e.st.Queue) != n {
		e.saveLocked()
	}
}

func (e *Engine) answer(m wire.SelfHealAnswer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, ps := range e.st.Policies {
		f := ps.Pending
		if f == nil || f.RequestID != m.RequestID || f.JobID != "" {
			continue
		}
		log := e.cfg.Log.With().Str("policy_id", id).Logger()
		if m.Refused != "" {
			log.Warn().Str("reason", m.Refused).Msg("the relay refused the self-heal")
			ps.Pending = nil
		} else {
			f.JobID = m.JobID
			f.Done = slices.Contains(e.finished, m.JobID)
			ps.Fixes = append(ps.Fixes, e.cfg.Now().UTC())
			log.Info().Str("job_id", m.JobID).Msg("self-heal job created")
		}
		e.saveLocked()
		if f.Done {
			e.poke()
		}
		return
	}
}

// FixDone tells the engine that a run of job jobID ended: if it was a
// self-heal, its check runs again now.
func (e *Engine) FixDone(jobID string) {
	e.mu.Lock()
	found := false
	for _, ps := range e.st.Policies {
		if f := ps.Pending; f != nil && f.JobID == jobID && !f.Done {
			f.Done, found = true, true
		}
	}
	if found {
		e.saveLocked()
	} else {
		e.finished = append(e.finished, jobID)
		if len(e.finished) > 64 {
			e.finished = slices.Delete(e.finished, 0, len(e.finished)-64)
		}
	}
	e.mu.Unlock()
	if found {
		e.poke()
	}
}
