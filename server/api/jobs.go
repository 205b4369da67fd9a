package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	pluginmanifest "github.com/patchbay/patchbay/internal/manifest"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Jobs is what the API needs from the job dispatcher.
type Jobs interface {
	// Created hands the dispatcher a job just stored.
	Created(ctx context.Context, j store.Job) error
	// Progress returns an open job, its counts and how many of its pending
	// runs are on offline agents, from memory; ok is false when the job is
	// not open there (then the store has it).
	Progress(jobID string) (j store.Job, c store.Counts, offline int, ok bool)
	Cancel(ctx context.Context, jobID string) (int, error)
}

// scriptPlugin is the plugin that runs catalog scripts; its "name"
// parameter names the script.
const scriptPlugin = "script"

// registerJobs adds the job routes.
func (a *API) registerJobs(mux *http.ServeMux) {
	mux.Handle("POST /v1/jobs", a.auth(apiv1.RoleTechnician, a.handleJobCreate))
	mux.Handle("GET /v1/jobs", a.auth(apiv1.RoleViewer, a.handleJobList))
	mux.Handle("GET /v1/jobs/{id}", a.auth(apiv1.RoleViewer, a.handleJobShow))
	mux.Handle("POST /v1/jobs/{id}/cancel", a.auth(apiv1.RoleTechnician, a.handleJobCancel))
	mux.Handle("GET /v1/jobs/{id}/export", a.auth(apiv1.RoleViewer, a.handleJobExport))
}

func (a *API) handleJobCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.JobCreate
	if !decode(w, r, &req) {
		return
	}
	job, revoked, status, err := a.createJob(r.Context(), req, c, "", nil)
	if status == http.StatusInternalServerError {
		a.internal(w, r, "create job", err)
		return
	}
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	out := a.jobJSON(job, nil, nil)
	out.RevokedNotTargeted = revoked
	if names, err := a.siteNames(r.Context()); err == nil {
		out.Sites = names.names(job.Sites)
	}
	writeJSON(w, http.StatusCreated, out)
}

// createJob plans, stores and audits a job and hands it to the dispatcher:
// the one path of POST /v1/jobs and of scheduled jobs. sched is the
// schedule that creates it (nil by hand); then ctx carries the claim of
// its firing (store.WithFiring) and the audit record names the schedule.
// An error with status 500 is internal; others are the caller's.
func (a *API) createJob(ctx context.Context, req apiv1.JobCreate, c caller, actor string, sched *store.Schedule) (store.Job, int, int, error) {
	ierr := http.StatusInternalServerError
	if actor == "" {
		actor = c.actor()
	}
	job, sel, status, err := a.planJob(ctx, req, c)
	if err != nil {
		return job, 0, status, err
	}
	job.CreatedBy = actor
	if status, err := a.applyWindow(ctx, c.scope(), req, &job); err != nil {
		return job, 0, status, err
	}
	if err := checkJobReboot(req.Reboot, job.Window); err != nil {
		return job, 0, http.StatusBadRequest, err
	}
	job.Reboot = req.Reboot
	if sched != nil {
		job.ScheduleID = sched.ID
	}
	revoked, err := a.revokedMatching(ctx, c.scope(), sel)
	if err != nil {
		return job, 0, ierr, err
	}
	err = a.Store.CreateJobStream(ctx, &job, func(ctx context.Context, emit func([]store.Run) error) error {
		return a.resolveTargets(ctx, c.scope(), &job, sel, req, emit)
	})
	var te *targetError
	if errors.As(err, &te) {
		if te.noMatch && revoked > 0 {
			return job, 0, te.status, fmt.Errorf("no agent that is not revoked matches %q: the %d that match are revoked (patchbay agents list --target shows them)", req.Target, revoked)
		}
		return job, 0, te.status, te.err
	}
	if errors.Is(err, store.ErrFiringClaimed) {
		return job, 0, http.StatusConflict, err
	}
	if err != nil {
		return job, 0, ierr, err
	}
	detail := map[string]string{
		"plugin": job.Plugin + "@" + job.PluginVersion, "target": job.Target, "agents": strconv.Itoa(job.Total),
		"dry_run": strconv.FormatBool(job.DryRun), "reason": job.Reason,
	}
	if revoked > 0 {
		detail["revoked_not_targeted"] = strconv.Itoa(revoked)
	}
	if job.Script != "" {
		detail["script"] = job.Script + "@" + job.ScriptVersion + " sha256:" + job.ScriptSHA256
	}
	if req.Window != "" {
		detail["window"] = req.Window
	}
	if job.Reboot != "" {
		detail["reboot"] = job.Reboot
	}
	if sched != nil {
		detail["schedule"] = sched.Name + " " + sched.ID
		detail["owner"] = sched.CreatedBy
	}
	if err := a.audit(ctx, actor, "job.create", "job "+job.ID, detail); err != nil {
		return job, 0, ierr, err
	}
	if a.Jobs != nil {
		if err := a.Jobs.Created(ctx, job); err != nil {
			// Stored: the dispatcher loads it from the store on its next tick.
			a.Log.Error().Err(err).Str("job_id", job.ID).Msg("hand the new job to the dispatcher")
		}
	}
	return job, revoked, 0, nil
}

// revokedMatching counts the revoked agents that sel matches: a job never
// targets them, and its creator is told how many it left out.
func (a *API) revokedMatching(ctx context.Context, scope store.Scope, sel *selector.Selector) (int, error) {
	revoked, err := a.Store.RevokedTargets(ctx, scope, sel.UsesTags())
	if err != nil {
		return 0, err
	}
	inv, err := a.inventoryFilter(ctx, sel)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ag := range revoked {
		if sel.Match(selector.Attrs{ID: ag.ID, Hostname: ag.Hostname, OS: ag.OS, Arch: ag.Arch, Tags: ag.Tags}) && inInventory(inv, ag.ID) {
			n++
		}
	}
	return n, nil
}

// planJob validates a job request and resolves its agents and the plugin
// build each of them will run. The relay's checks give early, clear errors;
// the agent checks everything again against what it actually runs.
func (a *API) planJob(ctx context.Context, req apiv1.JobCreate, c caller) (store.Job, *selector.Selector, int, error) {
	bad := http.StatusBadRequest
	if !pluginmanifest.ValidName(req.Plugin) {
		return store.Job{}, nil, bad, fmt.Errorf("plugin name %q invalid", req.Plugin)
	}
	if req.Target == "" {
		return store.Job{}, nil, bad, errors.New(`a target is required: pass --target SELECTOR ("all" selects every agent)`)
	}
	sel, err := selector.Parse(req.Target)
	if err != nil {
		return store.Job{}, nil, bad, err
	}
	timeout, err := durationOr(req.Timeout, apiv1.DefaultRunTimeout, time.Second, 24*time.Hour, "timeout")
	if err != nil {
		return store.Job{}, nil, bad, err
	}
	expires, err := durationOr(req.Expires, apiv1.DefaultJobExpiry, time.Second, apiv1.MaxJobExpiry, "expires")
	if err != nil {
		return store.Job{}, nil, bad, err
	}
	if req.Concurrency < 0 {
		return store.Job{}, nil, bad, errors.New("concurrency must be 0 (no limit) or more")
	}
	if len(req.Reason) > 1024 {
		return store.Job{}, nil, bad, errors.New("reason longer than 1024 bytes")
	}

	if req.Plugin == wire.UpgradePlugin {
		job := store.Job{
			ID: store.NewID(), Target: req.Target, DryRun: req.DryRun,
			Concurrency: req.Concurrency, MaxFailures: -1, MaxFailuresBP: -1, Timeout: timeout,
			Reason: req.Reason, State: store.JobRunning, CreatedBy: c.actor(), CreatedByToken: c.tok.ID, CreatedByUser: c.tok.UserID,
			CreatedAt: a.now(),
		}
		job.ExpiresAt = job.CreatedAt.Add(expires)
		job, status, err := a.planUpgrade(req, job)
		return job, sel, status, err
	}
	versions, err := a.Store.ListArtifacts(ctx, "plugin", req.Plugin)
	if err != nil {
		return store.Job{}, nil, http.StatusInternalServerError, err
	}
	var plugin *store.Artifact
	for i := range versions {
		if req.Version == "" || versions[i].Version == req.Version {
			plugin = &versions[i]
			break
		}
	}
	if plugin != nil && !plugin.AvailableIn(c.scope()) {
		plugin = nil // published to other sites only: as if absent
	}
	if plugin == nil {
		if req.Version != "" {
			return store.Job{}, nil, http.StatusNotFound, fmt.Errorf("plugin %s version %s is not in the catalog: see patchbay plugins list", req.Plugin, req.Version)
		}
		return store.Job{}, nil, http.StatusNotFound, fmt.Errorf("plugin %s is not in the catalog: publish it with patchbay plugins publish", req.Plugin)
	}
	manifest := plugin.Manifest
	job := store.Job{
		ID: store.NewID(), Plugin: req.Plugin, PluginVersion: plugin.Version, Target: req.Target, DryRun: req.DryRun,
		Concurrency: req.Concurrency, MaxFailures: -1, MaxFailuresBP: -1, Timeout: timeout, AllowDowngrade: req.AllowDowngrade,
		Reason: req.Reason, State: store.JobRunning, CreatedBy: c.actor(), CreatedByToken: c.tok.ID, CreatedByUser: c.tok.UserID,
		CreatedAt: a.now(),
	}
	job.ExpiresAt = job.CreatedAt.Add(expires)

	if req.Plugin == scriptPlugin {
		name := req.Params["name"]
		if name == "" {
			return store.Job{}, nil, bad, errors.New("the script plugin needs --param name=SCRIPT: see patchbay scripts list")
		}
		scripts, err := a.Store.ListArtifacts(ctx, "script", name)
		if err != nil {
			return store.Job{}, nil, http.StatusInternalServerError, err
		}
		scripts = slices.DeleteFunc(scripts, func(s store.Artifact) bool { return !s.AvailableIn(c.scope()) })
		if len(scripts) == 0 {
			return store.Job{}, nil, http.StatusNotFound, fmt.Errorf("script %s is not in the catalog: publish it with patchbay scripts publish", name)
		}
		s := scripts[0]
		job.Script, job.ScriptSHA256, job.ScriptVersion, job.ScriptSize = s.Name, s.SHA256, s.Version, s.Size
		if _, err := pluginmanifest.ValidateFreeParams(req.Params); err != nil {
			return store.Job{}, nil, bad, err
		}
	} else if _, err := manifest.ValidateParams(req.Params); err != nil {
		return store.Job{}, nil, bad, fmt.Errorf("plugin %s %s: %w", req.Plugin, plugin.Version, err)
	}
	job.Params = req.Params

	return job, sel, 0, nil
}

// targetError is a planning error found while resolving targets; it rolls
// the job back and is answered with status.
type targetError struct {
	status  int
	err     error
	noMatch bool // no agent matched the target
}

func (e *targetError) Error() string { return e.err.Error() }

// targetPage is how many agents are read at a time to resolve a target.
const targetPage = 1000

// resolveTargets streams the agents matching sel, a page at a time, as runs
// (seq in agent ID order, which is enrollment order), each with the build of
// the job's plugin version for the agent's OS and architecture. It then sets
// the job's total and the counts that depend on it.
//
// Only agents of the caller's sites (scope) are read, and of those only the
// ones in a site the plugin (or script) is published to; job.Sites are the
// sites of the agents it targets.
func (a *API) resolveTargets(ctx context.Context, scope store.Scope, job *store.Job, sel *selector.Selector, req apiv1.JobCreate, emit func([]store.Run) error) error {
	type platform struct{ os, arch string }
	builds := map[platform]*store.Artifact{} // build of job.PluginVersion for each OS and arch
	published, err := a.publishedTo(ctx, job)
	if err != nil {
		return err
	}
	inv, err := a.inventoryFilter(ctx, sel) // inventory terms: the agents they select, read once
	if err != nil {
		return err
	}
	sites := map[string]bool{}
	seq := 0
	var runs []store.Run // one page's runs; reused, as emit keeps none (a Run is ~300 bytes)
	for after := ""; ; {
		page, err := a.Store.TargetPage(ctx, scope, after, targetPage, sel.UsesTags())
		if err != nil {
			return err
		}
		runs = runs[:0]
		for _, ag := range page {
			after = ag.ID
			if !published(ag.SiteID) || !sel.Match(selector.Attrs{ID: ag.ID, Hostname: ag.Hostname, OS: ag.OS, Arch: ag.Arch, Tags: ag.Tags}) || !inInventory(inv, ag.ID) {
				continue
			}
			if !sites[ag.SiteID] {
				sites[ag.SiteID] = true
				job.Sites = append(job.Sites, ag.SiteID)
			}
			run := store.Run{ID: store.NewID(), Seq: seq, AgentID: ag.ID, Hostname: ag.Hostname, State: store.RunPending}
			seq++
			key := platform{ag.OS, ag.Arch}
			build, ok := builds[key]
			if !ok && job.Plugin == wire.UpgradePlugin {
				if build, err = upgradeBuild(a.Releases, job.PluginVersion, ag.OS, ag.Arch); err != nil {
					return err
				}
				builds[key] = build
			} else if !ok {
				art, err := a.Store.ResolveArtifact(ctx, "plugin", job.Plugin, job.PluginVersion, ag.OS, ag.Arch)
				switch {
				case err == nil:
					build = &art
				case !errors.Is(err, store.ErrNotFound):
					return err
				}
				builds[key] = build
			}
			if build == nil {
				run.State, run.EndedAt = store.RunFailed, job.CreatedAt
				run.Error = fmt.Sprintf("no build of plugin %s %s for %s/%s in the catalog: publish one", job.Plugin, job.PluginVersion, ag.OS, ag.Arch)
				if job.Plugin == wire.UpgradePlugin {
					run.Error = fmt.Sprintf("release %s has no agent for %s/%s (%s): add it to the release", job.PluginVersion, ag.OS, ag.Arch, release.AgentName(job.PluginVersion, ag.OS, ag.Arch))
				}
				if ag.OS == "" {
					run.Error = "the agent has never connected, so its OS is unknown"
				}
			} else {
				run.PluginSHA256, run.PluginSize, run.Version = build.SHA256, build.Size, build.Version
			}
			runs = append(runs, run)
		}
		if err := emit(runs); err != nil {
			return err
		}
		if len(page) < targetPage {
			break
		}
	}
	job.Total = seq
	if job.Total == 0 {
		return &targetError{http.StatusBadRequest, fmt.Errorf("no agent matches %q: check it with patchbay agents list --target", req.Target), true}
	}
	if req.Canary != "" {
		if job.Canary, err = apiv1.ParseCount(req.Canary, job.Total); err != nil {
			return &targetError{status: http.StatusBadRequest, err: fmt.Errorf("canary %w", err)}
		}
	}
	job.MaxFailuresBP = -1
	if req.MaxFailures != "" {
		if bp, ok, err := apiv1.ParsePercent(req.MaxFailures); err != nil {
			return &targetError{status: http.StatusBadRequest, err: fmt.Errorf("max-failures %w", err)}
		} else if ok {
			job.MaxFailuresBP = bp // a share of the runs finished so far
		} else if job.MaxFailures, err = apiv1.ParseCount(req.MaxFailures, job.Total); err != nil {
			return &targetError{status: http.StatusBadRequest, err: fmt.Errorf("max-failures %w", err)}
		}
	}
	return nil
}

func durationOr(s string, def, lo, hi time.Duration, what string) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := apiv1.ParseTTL(s, hi)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s %v outside %v..%v", what, d, lo, hi)
	}
	return d, nil
}

func (a *API) handleJobList(w http.ResponseWriter, r *http.Request, c caller) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			WriteError(w, http.StatusBadRequest, "limit must be 1..1000")
			return
		}
		limit = n
	}
	jobs, err := a.Store.ListJobs(r.Context(), c.scope(), limit)
	if err != nil {
		a.internal(w, r, "list jobs", err)
		return
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	sites, err := a.Store.JobSitesOf(r.Context(), ids)
	if err != nil {
		a.internal(w, r, "list jobs", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "list jobs", err)
		return
	}
	out := []apiv1.Job{}
	for _, j := range jobs {
		j, counts, _, err := a.jobState(r.Context(), j)
		if err != nil {
			a.internal(w, r, "list jobs", err)
			return
		}
		jj := a.jobJSON(j, counts, nil)
		jj.Sites = names.names(sites[j.ID])
		out = append(out, jj)
	}
	writeJSON(w, http.StatusOK, out)
}

// jobState returns a job with its counts by state and how many of its
// pending runs are on offline agents: from the dispatcher's memory while
// the job is open, else as stored (a job's final counts are stored when it
// ends; those of jobs that ended before that was done are counted).
func (a *API) jobState(ctx context.Context, j store.Job) (store.Job, map[string]int, int, error) {
	if a.Jobs != nil {
		if mj, c, offline, ok := a.Jobs.Progress(j.ID); ok {
			return mj, c.ByState, offline, nil
		}
		if j.EndedAt.IsZero() {
			// It ended since it was read (or is not loaded yet): read it again.
			var err error
			if j, err = a.Store.GetJob(ctx, j.ID); err != nil {
				return store.Job{}, nil, 0, err
			}
		}
	}
	if j.Counts != nil {
		return j, j.Counts, 0, nil
	}
	c, err := a.Store.RunCounts(ctx, j.ID, 0)
	if err != nil {
		return store.Job{}, nil, 0, err
	}
	return j, c.ByState, 0, nil
}

// getJob returns a job and its state (see jobState), answering 404 for an
// unknown job and for one with a site out of the caller's scope; ok is
// false when an error was written.
func (a *API) getJob(w http.ResponseWriter, r *http.Request, c caller, what string) (store.Job, map[string]int, int, bool) {
	id := r.PathValue("id")
	if a.Jobs != nil {
		if j, cnt, offline, ok := a.Jobs.Progress(id); ok {
			// Open: only its sites are read from the store.
			scope := c.scope()
			if !scope.All {
				sites, err := a.Store.JobSites(r.Context(), j.ID)
				if err != nil {
					a.internal(w, r, what, err)
					return store.Job{}, nil, 0, false
				}
				if !scope.HasAll(sites) {
					WriteError(w, http.StatusNotFound, "no job with ID or ID prefix %q: patchbay jobs list shows them", id)
					return store.Job{}, nil, 0, false
				}
			}
			return j, cnt.ByState, offline, true
		}
	}
	j, ok := a.findJob(w, r, c) // an ID prefix, or a job not open here
	if !ok {
		return store.Job{}, nil, 0, false
	}
	j, counts, offline, err := a.jobState(r.Context(), j)
	if err != nil {
		a.internal(w, r, what, err)
		return store.Job{}, nil, 0, false
	}
	return j, counts, offline, true
}

func (a *API) handleJobShow(w http.ResponseWriter, r *http.Request, c caller) {
	j, counts, offline, ok := a.getJob(w, r, c, "show job")
	if !ok {
		return
	}
	out := a.jobJSON(j, counts, nil)
	out.Offline = offline
	if sites, err := a.Store.JobSites(r.Context(), j.ID); err == nil {
		if names, err := a.siteNames(r.Context()); err == nil {
			out.Sites = names.names(sites)
		}
	}
	if r.URL.Query().Get("results") == "false" {
		writeJSON(w, http.StatusOK, out) // progress polling: counts only
		return
	}
	// The results are streamed a page at a time into the job object, so a
	// job over 100,000 agents is never held in memory whole.
	head, err := json.Marshal(out)
	if err != nil {
		a.internal(w, r, "show job", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(head[:len(head)-1]) // without the closing brace
	a.streamResultsJSON(w, r, j.ID)
	w.Write([]byte("}\n"))
}

func (a *API) handleJobCancel(w http.ResponseWriter, r *http.Request, c caller) {
	j, ok := a.findJob(w, r, c)
	if !ok {
		return
	}
	id := j.ID
	if a.Jobs == nil {
		WriteError(w, http.StatusServiceUnavailable, "this relay does not run jobs")
		return
	}
	if !ownJob(c, j) {
		WriteError(w, http.StatusForbidden, "job %s was started by %s: a technician cancels only their own jobs; ask them or an admin", shortID(id), j.CreatedBy)
		return
	}
	n, err := a.Jobs.Cancel(r.Context(), id)
	if err != nil {
		a.internal(w, r, "cancel job", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "job.cancel", "job "+id, map[string]string{
		"plugin": j.Plugin, "state_before": j.State, "never_started": strconv.Itoa(n)}); err != nil {
		a.internal(w, r, "cancel job", err)
		return
	}
	j, err = a.Store.GetJob(r.Context(), id)
	if err != nil {
		a.internal(w, r, "cancel job", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.JobCancel{ID: id, Cancelled: n, State: j.State})
}

func (a *API) jobJSON(j store.Job, counts map[string]int, results []apiv1.RunResult) apiv1.Job {
	if counts == nil {
		counts = map[string]int{}
	}
	return apiv1.Job{
		ID: j.ID, Plugin: j.Plugin, Version: j.PluginVersion, Script: j.Script, Target: j.Target, Params: j.Params,
		DryRun: j.DryRun, Concurrency: j.Concurrency, Canary: j.Canary, MaxFailures: j.MaxFailures, MaxFailuresPercent: maxFailuresPct(j),
		Timeout: j.Timeout.String(), AllowDowngrade: j.AllowDowngrade, Reason: j.Reason, State: j.State,
		Total: j.Total, Counts: counts, CreatedBy: j.CreatedBy, CreatedAt: j.CreatedAt, ExpiresAt: j.ExpiresAt,
		EndedAt: timePtr(j.EndedAt), Results: results, Window: windowText(j.Window), ScheduleID: j.ScheduleID,
		Reboot: j.Reboot,
	}
}

func maxFailuresPct(j store.Job) *float64 {
	if j.MaxFailuresBP < 0 {
		return nil
	}
	p := float64(j.MaxFailuresBP) / 100
	return &p
}

func runJSON(r store.Run) apiv1.RunResult {
	out := apiv1.RunResult{
		RunID: r.ID, AgentID: r.AgentID, Hostname: r.Hostname, State: r.State, Needed: r.Needed, Changed: r.Changed,
		RebootRequired: r.RebootRequired, Version: r.Version, Summary: r.Summary, Error: r.Error, Details: apiv1.ParseDetails(r.Details, r.RebootRequired),
		Output: r.Output, Signer: r.Signer, Started: timePtr(r.StartedAt), Ended: timePtr(r.EndedAt),
	}
	if !r.StartedAt.IsZero() && !r.EndedAt.IsZero() {
		out.DurationMS = r.EndedAt.Sub(r.StartedAt).Milliseconds()
	}
	if r.Consent != "" {
		var c apiv1.RunConsent
		if err := json.Unmarshal([]byte(r.Consent), &c); err == nil {
			out.Consent = &c
		} // the relay wrote it (server/jobs); unreadable would be a store edited by hand: shown without it
	}
	return out
}

// publishedTo returns whether the job's plugin version (and script) are
// published to a site: a job runs only where its code is published.
func (a *API) publishedTo(ctx context.Context, job *store.Job) (func(site string) bool, error) {
	if job.Plugin == wire.UpgradePlugin {
		return func(string) bool { return true }, nil // a release is the organisation's, for every site
	}
	var arts []store.Artifact
	versions, err := a.Store.ListArtifacts(ctx, store.KindPlugin, job.Plugin)
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		if v.Version == job.PluginVersion {
			arts = append(arts, v)
		}
	}
	if job.Script != "" {
		script, err := a.Store.GetArtifact(ctx, job.ScriptSHA256)
		if err != nil {
			return nil, err
		}
		arts = append(arts, script)
	}
	return func(site string) bool {
		for _, art := range arts {
			if !art.PublishedTo(site) {
				return false
			}
		}
		return true
	}, nil
}

// ownJob reports whether c may cancel j: an admin any job, anyone else the
// jobs their own token or their user's tokens started.
func ownJob(c caller, j store.Job) bool {
	switch {
	case c.tok.Role == apiv1.RoleAdmin:
		return true
	case j.CreatedByToken != "" && j.CreatedByToken == c.tok.ID:
		return true
	case j.CreatedByUser != "" && j.CreatedByUser == c.tok.UserID:
		return true
	}
	return false
}
