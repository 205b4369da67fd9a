package server

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// CheckStateSink hears of check state changes on agents (issue 17): alerts
// plug in here. Calls come from an agent link's goroutine and must not block
// for long.
type CheckStateSink interface {
	CheckFailed(ctx context.Context, agentID, check, summary string)
	CheckPassed(ctx context.Context, agentID, check string)
	SelfHealFailed(ctx context.Context, agentID, check, summary string)
}

// noSink is the default CheckStateSink: it does nothing.
type noSink struct{}

func (noSink) CheckFailed(context.Context, string, string, string)    {}
func (noSink) CheckPassed(context.Context, string, string)            {}
func (noSink) SelfHealFailed(context.Context, string, string, string) {}

// checkDBTimeout bounds the store work for one check message.
const checkDBTimeout = 10 * time.Second

// checkRelay is the relay's side of policies: it sends agents their
// policies, stores check results that change a state (a result equal to the
// last known state only moves the last-checked time, in memory), and gates
// self-heals.
type checkRelay struct {
	st   *store.Store
	api  *api.API
	send func(agentID, typ string, body any) error
	here func(agentID string) bool
	log  zerolog.Logger

	mu       sync.Mutex
	sink     CheckStateSink
	policies []store.Policy // cache; loaded is false until read
	loaded   bool
	// stale: the cache was reloaded for a result (reloadForUnknown), and
	// the agents here have not all been sent the new sets.
	stale   bool
	last    map[string]string    // agent/policy -> last known state
	checked map[string]time.Time // agent/policy -> last checked (memory only)
	known   map[string]bool      // agents whose states were read from the store
	wants   map[string]bool      // agents that asked for policies (older agents never do)
}

func newCheckRelay(st *store.Store, a *api.API, send func(agentID, typ string, body any) error, here func(string) bool, log zerolog.Logger) *checkRelay {
	return &checkRelay{st: st, api: a, send: send, here: here, log: log, sink: noSink{},
		last: map[string]string{}, checked: map[string]time.Time{}, known: map[string]bool{}, wants: map[string]bool{}}
}

// SetCheckStateSink plugs in what hears of check state changes (alerts).
func (s *Server) SetCheckStateSink(sink CheckStateSink) {
	s.checks.mu.Lock()
	s.checks.sink = sink
	s.checks.mu.Unlock()
}

// CheckedAt returns when an agent last reported a policy's check (memory
// only; zero when unknown to this relay).
func (s *Server) CheckedAt(agentID, policyID string) time.Time {
	s.checks.mu.Lock()
	defer s.checks.mu.Unlock()
	return s.checks.checked[agentID+"/"+policyID]
}

func (cr *checkRelay) allPolicies(ctx context.Context) ([]store.Policy, error) {
	cr.mu.Lock()
	if cr.loaded {
		ps := cr.policies
		cr.mu.Unlock()
		return ps, nil
	}
	cr.mu.Unlock()
	ps, err := cr.st.ListPolicies(ctx)
	if err != nil {
		return nil, err
	}
	cr.mu.Lock()
	cr.policies, cr.loaded = ps, true
	cr.mu.Unlock()
	return ps, nil
}

// applies reports whether p covers the agent t.
func applies(p store.Policy, t store.Target) bool {
	if p.SiteID != "" && p.SiteID != t.SiteID {
		return false
	}
	if p.Target == "" {
		return true
	}
	sel, err := selector.Parse(p.Target)
	return err == nil && sel.Match(selector.Attrs{ID: t.ID, Hostname: t.Hostname, OS: t.OS, Arch: t.Arch, Tags: t.Tags})
}

// policiesFor is the policy set of agent t. A plugin check carries the
// newest build of the plugin for t's platform (builds caches them by
// name/os/arch for one call over many agents).
func (cr *checkRelay) policiesFor(ctx context.Context, ps []store.Policy, t store.Target, builds map[string]*wire.ArtifactRef) wire.Policies {
	out := wire.Policies{Policies: []wire.Policy{}}
	for _, p := range ps {
		if !applies(p, t) || len(out.Policies) == wire.MaxPolicies {
			continue
		}
		wp := wire.Policy{ID: p.ID, Name: p.Name, Check: p.Check, Params: p.Params,
			Interval: wire.Duration(p.Interval), Fix: p.Fix != "", MaxFixesDay: p.MaxFixesDay}
		if !strings.HasPrefix(p.Check, "builtin:") {
			key := p.Check + "/" + t.OS + "/" + t.Arch
			ref, ok := builds[key]
			if !ok {
				if a, err := cr.st.ResolveArtifact(ctx, store.KindPlugin, p.Check, "", t.OS, t.Arch); err == nil {
					ref = &wire.ArtifactRef{Name: a.Name, Version: a.Version, SHA256: a.SHA256, Size: a.Size}
				}
				builds[key] = ref
			}
			wp.Plugin = ref
		}
		out.Policies = append(out.Policies, wp)
	}
	return out
}

// greet answers an agent's request for its policies.
func (cr *checkRelay) greet(agentID string) {
	cr.mu.Lock()
	cr.wants[agentID] = true
	// A new link: in a tier the agent may have reported to another relay
	// since this one last heard it, so its states are read again.
	delete(cr.known, agentID)
	cr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), checkDBTimeout)
	defer cancel()
	ps, err := cr.allPolicies(ctx)
	if err != nil {
		cr.log.Error().Err(err).Str("agent_id", agentID).Msg("policies: agent gets them on its next connection")
		return
	}
	set := wire.Policies{Policies: []wire.Policy{}}
	if len(ps) > 0 {
		ag, err := cr.st.GetAgent(ctx, agentID)
		if err != nil {
			cr.log.Error().Err(err).Str("agent_id", agentID).Msg("policies: agent gets them on its next connection")
			return
		}
		set = cr.policiesFor(ctx, ps, targetOf(ag), map[string]*wire.ArtifactRef{})
	}
	if err := cr.send(agentID, wire.MsgPolicies, set); err != nil {
		cr.log.Debug().Err(err).Str("agent_id", agentID).Msg("send policies")
	}
}

func targetOf(ag store.Agent) store.Target {
	return store.Target{ID: ag.ID, Hostname: ag.Hostname, OS: ag.OS, Arch: ag.Arch, SiteID: ag.SiteID, Tags: ag.Tags}
}

// PoliciesChanged reloads the policies and sends every agent connected to
// this relay its new set. In a tier every relay does so when one announces
// a change (tierpolicies.go).
func (cr *checkRelay) PoliciesChanged() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cr.mu.Lock()
	cr.loaded, cr.stale = false, false
	cr.mu.Unlock()
	ps, err := cr.allPolicies(ctx)
	if err != nil {
		cr.log.Error().Err(err).Msg("policies changed: agents get them on their next connection")
		return
	}
	builds := map[string]*wire.ArtifactRef{}
	for after := ""; ; {
		page, err := cr.st.TargetPage(ctx, store.Scope{All: true}, after, 1000, true)
		if err != nil {
			cr.log.Error().Err(err).Msg("policies changed: agents get them on their next connection")
			return
		}
		for _, t := range page {
			after = t.ID
			cr.mu.Lock()
			wants := cr.wants[t.ID]
			cr.mu.Unlock()
			if wants && cr.here(t.ID) {
				_ = cr.send(t.ID, wire.MsgPolicies, cr.policiesFor(ctx, ps, t, builds))
			}
		}
		if len(page) < 1000 {
			return
		}
	}
}

func protocolError(err error) error {
	return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
}

// results stores an agent's check results and acknowledges them.
func (cr *checkRelay) results(agentID string, m wire.CheckResults) {
	ctx, cancel := context.WithTimeout(context.Background(), checkDBTimeout)
	defer cancel()
	log := cr.log.With().Str("agent_id", agentID).Logger()
	ps, err := cr.allPolicies(ctx)
	if err != nil {
		log.Error().Err(err).Msg("check results: the agent sends them again")
		return
	}
	byID := policiesByID(ps)
	if ps, err = cr.reloadForUnknown(ctx, byID, m.Results); err != nil {
		log.Error().Err(err).Msg("check results: the agent sends them again")
		return
	} else if ps != nil {
		byID = policiesByID(ps)
	}
	cr.mu.Lock()
	known := cr.known[agentID]
	cr.mu.Unlock()
	if !known {
		states, err := cr.st.CheckStates(ctx, agentID)
		if err != nil {
			log.Error().Err(err).Msg("check results: the agent sends them again")
			return
		}
		cr.mu.Lock()
		for _, s := range states {
			cr.last[agentID+"/"+s.PolicyID] = s.State
		}
		cr.known[agentID] = true
		cr.mu.Unlock()
	}
	ack := wire.CheckAck{IDs: make([]string, 0, len(m.Results))}
	for _, r := range m.Results {
		key := agentID + "/" + r.PolicyID
		p, ok := byID[r.PolicyID]
		cr.mu.Lock()
		prev := cr.last[key]
		sink := cr.sink
		if ok {
			cr.checked[key] = r.At
		}
		cr.mu.Unlock()
		if !ok || (prev == r.State && r.Fix == "") {
			ack.IDs = append(ack.IDs, r.ID) // unknown policy (deleted) or no change: nothing to store
			continue
		}
		if _, err := cr.st.SaveCheckEvent(ctx, store.CheckEvent{ID: r.ID, AgentID: agentID, PolicyID: r.PolicyID,
			State: r.State, Summary: r.Summary, Fix: r.Fix, At: r.At}); err != nil {
			log.Error().Err(err).Msg("check results: the agent sends them again")
			break
		}
		cr.mu.Lock()
		cr.last[key] = r.State
		cr.mu.Unlock()
		ack.IDs = append(ack.IDs, r.ID)
		switch {
		case r.Fix == wire.FixNotHelped:
			sink.SelfHealFailed(ctx, agentID, p.Name, r.Summary)
		case r.State == wire.CheckPassed && prev != "" && prev != wire.CheckPassed:
			sink.CheckPassed(ctx, agentID, p.Name)
		case r.State == wire.CheckFailed && prev != wire.CheckFailed:
			sink.CheckFailed(ctx, agentID, p.Name, r.Summary)
		}
		log.Info().Str("policy", p.Name).Str("state", r.State).Str("fix", r.Fix).Str("summary", r.Summary).Msg("check state changed")
	}
	if len(ack.IDs) > 0 {
		_ = cr.send(agentID, wire.MsgCheckAck, ack)
	}
}

func policiesByID(ps []store.Policy) map[string]store.Policy {
	byID := make(map[string]store.Policy, len(ps))
	for _, p := range ps {
		byID[p.ID] = p
	}
	return byID
}

// reloadForUnknown reloads the policies when a result names one missing
// from byID that the store has: made through another relay of the tier,
// whose announcement this relay has not heard (yet). It returns the new
// policies, or nil when there was nothing to reload. A result of a deleted
// policy costs one look-up.
func (cr *checkRelay) reloadForUnknown(ctx context.Context, byID map[string]store.Policy, rs []wire.CheckResult) ([]store.Policy, error) {
	missing := map[string]bool{}
	for _, r := range rs {
		if _, ok := byID[r.PolicyID]; ok || missing[r.PolicyID] {
			continue
		}
		missing[r.PolicyID] = true
		p, err := cr.st.GetPolicy(ctx, r.PolicyID) // by ID or name: only its ID counts
		if errors.Is(err, store.ErrNotFound) || err == nil && p.ID != r.PolicyID {
			continue
		} else if err != nil {
			return nil, err
		}
		cr.log.Info().Str("policy_id", r.PolicyID).Msg("a result names a policy made on another relay that this one had not heard of: policies reloaded")
		cr.mu.Lock()
		cr.loaded, cr.stale = false, true
		cr.mu.Unlock()
		return cr.allPolicies(ctx)
	}
	return nil, nil
}

// selfHeal answers an agent's request for a policy's fix: the job that
// runs it, or why not. The answer goes out before the job is dispatched,
// so that the agent knows the job before its run arrives.
func (cr *checkRelay) selfHeal(agentID string, m wire.SelfHeal) {
	ctx, cancel := context.WithTimeout(context.Background(), checkDBTimeout)
	defer cancel()
	log := cr.log.With().Str("agent_id", agentID).Str("policy_id", m.PolicyID).Logger()
	answer := wire.SelfHealAnswer{RequestID: m.RequestID}
	jobID, err := cr.heal(ctx, agentID, m)
	switch {
	case err == nil:
		answer.JobID = jobID
		log.Info().Str("job_id", jobID).Msg("self-heal job created")
	case errors.Is(err, store.ErrFixLimit), errors.Is(err, errNotApplicable):
		answer.Refused = err.Error()
		log.Warn().Err(err).Msg("self-heal refused")
	default:
		log.Error().Err(err).Msg("self-heal: the agent asks again after its next check")
		answer.Refused = "the relay could not create the job: " + err.Error()
	}
	if len(answer.Refused) > 1000 {
		answer.Refused = answer.Refused[:1000]
	}
	if err := cr.send(agentID, wire.MsgSelfHealAnswer, answer); err != nil {
		log.Debug().Err(err).Msg("send self-heal answer")
	}
	if jobID != "" {
		cr.api.StartJob(ctx, jobID)
	}
}

var errNotApplicable = errors.New("the policy does not apply to this agent, or names no fix")

func (cr *checkRelay) heal(ctx context.Context, agentID string, m wire.SelfHeal) (string, error) {
	p, err := cr.st.GetPolicy(ctx, m.PolicyID)
	if errors.Is(err, store.ErrNotFound) {
		return "", errNotApplicable
	} else if err != nil {
		return "", err
	}
	ag, err := cr.st.GetAgent(ctx, agentID)
	if err != nil {
		return "", err
	}
	if p.Fix == "" || !applies(p, targetOf(ag)) {
		return "", errNotApplicable
	}
	return cr.api.SelfHeal(ctx, p, ag, m.RequestID, m.Summary)
}
