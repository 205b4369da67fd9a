package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// PolicyNotifier hears of policy changes, to send agents their new set.
type PolicyNotifier interface {
	PoliciesChanged()
}

func (a *API) registerPolicies(mux *http.ServeMux) {
	mux.Handle("POST /v1/policies", a.auth(apiv1.RoleAdmin, a.handlePolicyCreate))
	mux.Handle("GET /v1/policies", a.auth(apiv1.RoleViewer, a.handlePolicyList))
	mux.Handle("GET /v1/policies/{name}", a.auth(apiv1.RoleViewer, a.handlePolicyShow))
	mux.Handle("DELETE /v1/policies/{name}", a.auth(apiv1.RoleAdmin, a.handlePolicyDelete))
}

// Self-heal limits when a policy sets none.
const (
	defaultMaxFixesDay      = 3
	defaultMaxFixesSiteHour = 10
)

func (a *API) handlePolicyCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.PolicyCreate
	if !decode(w, r, &req) {
		return
	}
	p, status, err := a.planPolicy(r.Context(), req, c)
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	if err := a.Store.CreatePolicy(r.Context(), p); errors.Is(err, store.ErrNameTaken) {
		WriteError(w, http.StatusConflict, "policy %s exists: delete it first (patchbay policies delete %s)", p.Name, p.Name)
		return
	} else if err != nil {
		a.internal(w, r, "create policy", err)
		return
	}
	detail := map[string]string{"check": p.Check, "target": p.Target, "interval": p.Interval.String(), "fix": p.Fix,
		"max_fixes_day": strconv.Itoa(p.MaxFixesDay), "max_fixes_site_hour": strconv.Itoa(p.MaxFixesSiteHour)}
	if p.SiteID != "" {
		detail["site"] = p.SiteID
	}
	if err := a.audit(r.Context(), c.actor(), "policy.create", "policy "+p.Name, detail); err != nil {
		a.internal(w, r, "create policy", err)
		return
	}
	if a.Policies != nil {
		a.Policies.PoliciesChanged()
	}
	writeJSON(w, http.StatusCreated, policyJSON(p))
}

// planPolicy validates a request into a policy.
func (a *API) planPolicy(ctx context.Context, req apiv1.PolicyCreate, c caller) (store.Policy, int, error) {
	bad := http.StatusBadRequest
	if !wire.ValidPolicyName(req.Name) {
		return store.Policy{}, bad, fmt.Errorf("policy name %q: want 1-64 of [A-Za-z0-9_.-]", req.Name)
	}
	if req.Target == "" && req.Site == "" {
		return store.Policy{}, bad, errors.New("a policy needs --target SELECTOR or --site SITE")
	}
	if req.Target != "" {
		if _, err := selector.Parse(req.Target); err != nil {
			return store.Policy{}, bad, err
		}
	}
	if !wire.ValidCheckName(req.Check) {
		return store.Policy{}, bad, fmt.Errorf("check %q: want builtin:NAME or a plugin name", req.Check)
	}
	if _, ok := wire.BuiltinChecks[req.Check]; strings.HasPrefix(req.Check, "builtin:") && !ok {
		names := slices.Sorted(maps.Keys(wire.BuiltinChecks))
		return store.Policy{}, bad, fmt.Errorf("unknown built-in check %q: use one of %s", req.Check, strings.Join(names, ", "))
	}
	if !strings.HasPrefix(req.Check, "builtin:") {
		versions, err := a.Store.ListArtifacts(ctx, store.KindPlugin, req.Check)
		if err != nil {
			return store.Policy{}, http.StatusInternalServerError, err
		}
		if len(versions) == 0 {
			return store.Policy{}, http.StatusNotFound, fmt.Errorf("check plugin %s is not in the catalog: publish it with patchbay plugins publish", req.Check)
		}
	}
	interval, err := time.ParseDuration(req.Interval)
	if err != nil || interval < wire.MinCheckInterval || interval > wire.MaxCheckInterval {
		return store.Policy{}, bad, fmt.Errorf("interval %q: want a duration from %v to %v, e.g. 5m", req.Interval, wire.MinCheckInterval, wire.MaxCheckInterval)
	}
	probe := wire.Policies{Policies: []wire.Policy{{ID: store.NewID(), Name: req.Name, Check: req.Check, Params: req.Params, Interval: wire.Duration(interval)}}}
	if err := probe.Validate(); err != nil {
		return store.Policy{}, bad, err
	}
	if req.MaxFixesDay < 0 || req.MaxFixesSiteHour < 0 || req.MaxFixesDay > 1000 || req.MaxFixesSiteHour > 100000 {
		return store.Policy{}, bad, errors.New("max fixes must be 0 (the default) or more, at most 1000 a day and 100000 an hour")
	}
	p := store.Policy{ID: store.NewID(), Name: req.Name, Target: req.Target, Check: req.Check, Params: req.Params, Interval: interval,
		Fix: req.Fix, FixParams: req.FixParams, MaxFixesDay: req.MaxFixesDay, MaxFixesSiteHour: req.MaxFixesSiteHour,
		CreatedBy: c.actor(), CreatedAt: a.now()}
	if p.MaxFixesDay == 0 {
		p.MaxFixesDay = defaultMaxFixesDay
	}
	if p.MaxFixesSiteHour == 0 {
		p.MaxFixesSiteHour = defaultMaxFixesSiteHour
	}
	if req.Site != "" {
		site, err := a.resolveSite(ctx, c.scope(), req.Site)
		if err != nil {
			return store.Policy{}, http.StatusNotFound, fmt.Errorf("site %s: %w", req.Site, err)
		}
		p.SiteID = site.ID
	}
	if p.Fix != "" {
		if _, _, status, err := a.planFixJob(ctx, p, "all", c); err != nil {
			return store.Policy{}, status, fmt.Errorf("fix: %w", err)
		}
	}
	return p, 0, nil
}

// fixRequest turns a policy's fix into a job request for target.
func fixRequest(p store.Policy, target, reason string) apiv1.JobCreate {
	req := apiv1.JobCreate{Plugin: p.Fix, Params: p.FixParams, Target: target, Reason: reason}
	if name, ok := strings.CutPrefix(p.Fix, "script:"); ok {
		req.Plugin = scriptPlugin
		params := map[string]string{"name": name}
		for k, v := range p.FixParams {
			params[k] = v
		}
		req.Params = params
	}
	return req
}

func (a *API) planFixJob(ctx context.Context, p store.Policy, target string, c caller) (store.Job, *selector.Selector, int, error) {
	return a.planJob(ctx, fixRequest(p, target, "self-heal: policy "+p.Name), c)
}

func (a *API) handlePolicyList(w http.ResponseWriter, r *http.Request, c caller) {
	ps, err := a.Store.ListPolicies(r.Context())
	if err != nil {
		a.internal(w, r, "list policies", err)
		return
	}
	out := []apiv1.Policy{}
	for _, p := range ps {
		if p.SiteID == "" || c.scope().Has(p.SiteID) {
			out = append(out, policyJSON(p))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handlePolicyShow(w http.ResponseWriter, r *http.Request, c caller) {
	p, err := a.Store.GetPolicy(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.SiteID != "" && !c.scope().Has(p.SiteID)) {
		WriteError(w, http.StatusNotFound, "policy %s not found: see patchbay policies list", r.PathValue("name"))
		return
	} else if err != nil {
		a.internal(w, r, "show policy", err)
		return
	}
	out := policyJSON(p)
	// Only the agents of the caller's sites: a site-wide policy's states
	// on other sites' agents are theirs.
	states, err := a.Store.PolicyCheckStates(r.Context(), c.scope(), p.ID)
	if err != nil {
		a.internal(w, r, "show policy", err)
		return
	}
	for _, s := range states {
		cs := apiv1.CheckState{AgentID: s.AgentID, State: s.State, Summary: s.Summary, ChangedAt: s.ChangedAt}
		if a.CheckedAt != nil {
			if t := a.CheckedAt(s.AgentID, p.ID); !t.IsZero() {
				cs.CheckedAt = &t
			}
		}
		out.States = append(out.States, cs)
	}
	events, err := a.Store.PolicyCheckEvents(r.Context(), c.scope(), p.ID, 100)
	if err != nil {
		a.internal(w, r, "show policy", err)
		return
	}
	for _, e := range events {
		out.Events = append(out.Events, apiv1.CheckEvent{AgentID: e.AgentID, State: e.State, Summary: e.Summary, Fix: e.Fix, At: e.At})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handlePolicyDelete(w http.ResponseWriter, r *http.Request, c caller) {
	p, err := a.Store.GetPolicy(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.SiteID != "" && !c.scope().Has(p.SiteID)) {
		WriteError(w, http.StatusNotFound, "policy %s not found: see patchbay policies list", r.PathValue("name"))
		return
	} else if err != nil {
		a.internal(w, r, "delete policy", err)
		return
	}
	if err := a.Store.DeletePolicy(r.Context(), p.ID); err != nil {
		a.internal(w, r, "delete policy", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "policy.delete", "policy "+p.Name, map[string]string{"check": p.Check}); err != nil {
		a.internal(w, r, "delete policy", err)
		return
	}
	if a.Policies != nil {
		a.Policies.PoliciesChanged()
	}
	w.WriteHeader(http.StatusNoContent)
}

func policyJSON(p store.Policy) apiv1.Policy {
	return apiv1.Policy{ID: p.ID, Name: p.Name, Target: p.Target, Site: p.SiteID, Check: p.Check, Params: p.Params,
		Interval: p.Interval.String(), Fix: p.Fix, FixParams: p.FixParams, MaxFixesDay: p.MaxFixesDay,
		MaxFixesSiteHour: p.MaxFixesSiteHour, CreatedBy: p.CreatedBy, CreatedAt: p.CreatedAt}
}

// SelfHeal creates the job that runs policy p's fix on agent ag, on the
// agent's request: the relay's gate on self-heals. A request ID seen before
// gets its job again; a self-heal over the policy's limits (per site and
// hour, per agent and day) is refused with store.ErrFixLimit. The job goes
// through the same planning, audit ("job.create" by "policy NAME
// (self-heal)") and dispatch as a person's job, and is owned by the policy
// (its creator; no token or user).
func (a *API) SelfHeal(ctx context.Context, p store.Policy, ag store.Agent, requestID, summary string) (string, error) {
	if job, err := a.Store.PolicyFixFor(ctx, requestID); err == nil {
		return job, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if p.Fix == "" {
		return "", fmt.Errorf("policy %s names no fix", p.Name)
	}
	now := a.now()
	c := caller{tok: store.APIToken{Name: "policy " + p.Name, Role: apiv1.RoleAdmin, ID: p.ID}}
	reason := "self-heal: policy " + p.Name
	if summary != "" {
		reason += ": " + summary
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	req := fixRequest(p, "id="+ag.ID, reason)
	job, sel, _, err := a.planJob(ctx, req, c)
	if err != nil {
		return "", err
	}
	job.CreatedBy = "policy " + p.Name + " (self-heal)"
	// The limits are taken before the job exists (atomically, so that
	// agents asking at the same moment cannot all take the last one), and
	// given back if it cannot be created.
	err = a.Store.ReservePolicyFix(ctx, p, store.PolicyFix{RequestID: requestID, PolicyID: p.ID, AgentID: ag.ID, SiteID: ag.SiteID, JobID: job.ID, CreatedAt: now})
	if errors.Is(err, store.ErrPolicyFixExists) {
		return a.Store.PolicyFixFor(ctx, requestID) // asked twice at once (another relay)
	} else if err != nil {
		return "", err
	}
	err = a.Store.CreateJobStream(ctx, &job, func(ctx context.Context, emit func([]store.Run) error) error {
		return a.resolveTargets(ctx, store.Scope{Sites: []string{ag.SiteID}}, &job, sel, req, emit)
	})
	if err != nil {
		if rerr := a.Store.ReleasePolicyFix(ctx, requestID); rerr != nil {
			a.Log.Error().Err(rerr).Msg("give back a self-heal reservation")
		}
		return "", err
	}
	detail := map[string]string{"plugin": job.Plugin + "@" + job.PluginVersion, "target": job.Target, "agents": strconv.Itoa(job.Total),
		"reason": job.Reason, "policy": p.Name, "check": p.Check, "self_heal": "true"}
	if job.Script != "" {
		detail["script"] = job.Script + "@" + job.ScriptVersion + " sha256:" + job.ScriptSHA256
	}
	if err := a.audit(ctx, job.CreatedBy, "job.create", "job "+job.ID, detail); err != nil {
		return "", err
	}
	return job.ID, nil
}

// StartJob hands a stored job to the dispatcher.
func (a *API) StartJob(ctx context.Context, jobID string) {
	if a.Jobs == nil {
		return
	}
	j, err := a.Store.GetJob(ctx, jobID)
	if err == nil {
		err = a.Jobs.Created(ctx, j)
	}
	if err != nil {
		a.Log.Error().Err(err).Str("job_id", jobID).Msg("hand the self-heal job to the dispatcher")
	}
}
