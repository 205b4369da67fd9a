package api

import (
	"net/http"
	"strconv"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Check states for the console: where each policy stands across the
// caller's agents, and one agent's checks. Only agents of the caller's
// sites are counted.
func (a *API) registerCheckStates(mux *http.ServeMux) {
	mux.Handle("GET /v1/policy-states", a.auth(apiv1.RoleViewer, a.handlePolicyStates))
	mux.Handle("GET /v1/agents/{id}/checks", a.auth(apiv1.RoleViewer, a.handleAgentChecks))
}

// handlePolicyStates answers GET /v1/policy-states[?failing=N]: for each
// policy the caller sees, its agents by state and at most N (default 10,
// 0 for none) failing agents.
func (a *API) handlePolicyStates(w http.ResponseWriter, r *http.Request, c caller) {
	limit := 10
	if v := r.URL.Query().Get("failing"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			WriteError(w, http.StatusBadRequest, "failing %q: want 0 to 1000 agents a policy", v)
			return
		}
		limit = n
	}
	ps, err := a.Store.ListPolicies(r.Context())
	if err != nil {
		a.internal(w, r, "policy states", err)
		return
	}
	sum, err := a.Store.PolicyStateSummary(r.Context(), c.scope(), limit)
	if err != nil {
		a.internal(w, r, "policy states", err)
		return
	}
	out := apiv1.PolicyStateList{Policies: []apiv1.PolicyStates{}}
	for _, p := range ps {
		if p.SiteID != "" && !c.scope().Has(p.SiteID) {
			continue
		}
		line := apiv1.PolicyStates{Policy: p.Name, PolicyID: p.ID}
		if s := sum[p.ID]; s != nil {
			line.Passed, line.Failed, line.Error = s.Counts[wire.CheckPassed], s.Counts[wire.CheckFailed], s.Counts[wire.CheckError]
			for _, f := range s.Failing {
				line.Failing = append(line.Failing, apiv1.FailingCheck{AgentID: f.AgentID, Hostname: f.Hostname, State: f.State, Summary: f.Summary, ChangedAt: f.ChangedAt})
			}
		}
		out.Policies = append(out.Policies, line)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAgentChecks answers GET /v1/agents/{id}/checks: the agent's last
// reported state of each policy's check, by policy name.
func (a *API) handleAgentChecks(w http.ResponseWriter, r *http.Request, c caller) {
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	states, err := a.Store.CheckStates(r.Context(), ag.ID)
	if err != nil {
		a.internal(w, r, "agent checks", err)
		return
	}
	ps, err := a.Store.ListPolicies(r.Context())
	if err != nil {
		a.internal(w, r, "agent checks", err)
		return
	}
	byID := make(map[string]store.Policy, len(ps))
	for _, p := range ps {
		byID[p.ID] = p
	}
	out := apiv1.AgentCheckList{Checks: []apiv1.AgentCheck{}}
	for _, s := range states {
		p, ok := byID[s.PolicyID]
		if !ok {
			continue // a deleted policy's last state
		}
		ch := apiv1.AgentCheck{Policy: p.Name, PolicyID: p.ID, Check: p.Check, State: s.State, Summary: s.Summary, ChangedAt: s.ChangedAt}
		if a.CheckedAt != nil {
			if t := a.CheckedAt(ag.ID, p.ID); !t.IsZero() {
				ch.CheckedAt = &t
			}
		}
		out.Checks = append(out.Checks, ch)
	}
	writeJSON(w, http.StatusOK, out)
}
