package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/schedule"
	"github.com/patchbay/patchbay/server/store"
)

// Schedules create ordinary jobs at the fire times of a cron spec, through
// createJob (the gates, audit and scope of a job made by hand, as the
// schedule's owner); maintenance windows are per site and keep a job's
// runs from starting while they are closed (server/jobs). The firing loop
// is schedule.Runner; it calls Fire.

func (a *API) registerSchedules(mux *http.ServeMux) {
	mux.Handle("POST /v1/schedules", a.auth(apiv1.RoleTechnician, a.handleScheduleCreate))
	mux.Handle("GET /v1/schedules", a.auth(apiv1.RoleViewer, a.handleScheduleList))
	mux.Handle("GET /v1/schedules/{id}", a.auth(apiv1.RoleViewer, a.handleScheduleShow))
	mux.Handle("POST /v1/schedules/{id}/pause", a.auth(apiv1.RoleTechnician, a.handleSchedulePause))
	mux.Handle("POST /v1/schedules/{id}/resume", a.auth(apiv1.RoleTechnician, a.handleSchedulePause))
	mux.Handle("DELETE /v1/schedules/{id}", a.auth(apiv1.RoleTechnician, a.handleScheduleDelete))
	mux.Handle("POST /v1/windows", a.auth(apiv1.RoleTechnician, a.handleWindowCreate))
	mux.Handle("GET /v1/windows", a.auth(apiv1.RoleViewer, a.handleWindowList))
	mux.Handle("DELETE /v1/windows/{id}", a.auth(apiv1.RoleTechnician, a.handleWindowDelete))
	mux.Handle("POST /v1/patch-policies", a.auth(apiv1.RoleTechnician, a.handlePatchPolicyCreate))
}

// windowText is how a job's window reads: "NAME: CRON for DURATION (TZ)".
func windowText(raw string) string {
	w, err := schedule.ParseWindow(raw)
	if err != nil || w == nil {
		return raw
	}
	return fmt.Sprintf("%s: %s for %s (%s)", w.Name, w.Cron, w.Duration, w.TZ)
}

// resolveWindow finds the window ref names among the sites scope reaches:
// an ID, a unique ID prefix, "ORG/SITE/NAME", "SITE/NAME" or a NAME only
// one site has (names ignore case).
func (a *API) resolveWindow(ctx context.Context, scope store.Scope, ref string) (store.MaintWindow, error) {
	ws, err := a.Store.ListWindows(ctx, scope)
	if err != nil {
		return store.MaintWindow{}, err
	}
	names, err := a.siteNames(ctx)
	if err != nil {
		return store.MaintWindow{}, err
	}
	ref = strings.ToLower(strings.TrimSpace(ref))
	var found []store.MaintWindow
	for _, w := range ws {
		full := strings.ToLower(names.name(w.SiteID) + "/" + w.Name)
		switch {
		case w.ID == ref:
			return w, nil
		case len(ref) >= 4 && strings.HasPrefix(w.ID, ref), full == ref, strings.HasSuffix(full, "/"+ref):
			found = append(found, w)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return store.MaintWindow{}, fmt.Errorf("window %q: no such window: patchbay windows list shows them", ref)
	}
	list := make([]string, len(found))
	for i, w := range found {
		list[i] = names.name(w.SiteID) + "/" + w.Name
	}
	return store.MaintWindow{}, fmt.Errorf("window %q is ambiguous: it names %s: write ORG/SITE/NAME", ref, strings.Join(list, ", "))
}

func toWindow(w store.MaintWindow) (schedule.Window, error) {
	return schedule.NewWindow(w.Name, w.SiteID, w.Cron, w.TZ, w.Duration)
}

// applyWindow gives job the window req names: its runs start only while it
// is open. Without --expires the job lasts at least until the window's
// next close, so that it is not expired before it could run.
func (a *API) applyWindow(ctx context.Context, scope store.Scope, req apiv1.JobCreate, job *store.Job) (int, error) {
	if req.Window == "" {
		return 0, nil
	}
	mw, err := a.resolveWindow(ctx, scope, req.Window)
	if err != nil {
		return http.StatusBadRequest, err
	}
	w, err := toWindow(mw)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	job.Window = w.JSON()
	if end := w.NextClose(job.CreatedAt); req.Expires == "" && end.After(job.ExpiresAt) {
		job.ExpiresAt = end
	}
	return 0, nil
}

// ownerCaller is the caller a schedule's jobs are created as: its owner's
// user with the role and sites they have now, or the token without a user
// that created it. A disabled or deleted owner fires nothing.
func (a *API) ownerCaller(ctx context.Context, sc store.Schedule) (caller, error) {
	tok := store.APIToken{ID: sc.CreatedByToken, UserID: sc.CreatedByUser, Role: sc.OwnerRole, Sites: sc.OwnerSites, Name: sc.CreatedBy}
	if sc.CreatedByUser != "" {
		u, err := a.Store.GetUser(ctx, sc.CreatedByUser)
		if err != nil {
			return caller{}, fmt.Errorf("owner of schedule %s: %w: recreate the schedule as a current user", sc.Name, err)
		}
		if !u.DisabledAt.IsZero() {
			return caller{}, fmt.Errorf("owner %s of schedule %s is disabled: recreate the schedule as a current user", u.Name, sc.Name)
		}
		sites, err := a.Store.UserSites(ctx, u.ID)
		if err != nil {
			return caller{}, err
		}
		tok.Role, tok.Sites, tok.UserName = u.Role, sites, u.Name
	}
	if sc.CreatedByUser == "" && sc.CreatedByToken != "" {
		toks, err := a.Store.ListAPITokens(ctx)
		if err != nil {
			return caller{}, err
		}
		i := slices.IndexFunc(toks, func(t store.APIToken) bool { return t.ID == sc.CreatedByToken })
		now := a.now()
		if i < 0 || !toks[i].RevokedAt.IsZero() || !toks[i].ExpiresAt.IsZero() && now.After(toks[i].ExpiresAt) {
			return caller{}, fmt.Errorf("the API token that owns schedule %s was revoked, expired or deleted: recreate the schedule", sc.Name)
		}
	}
	if tok.Role != apiv1.RoleAdmin && tok.Role != apiv1.RoleTechnician {
		return caller{}, fmt.Errorf("owner of schedule %s is a %s now: jobs need a technician", sc.Name, tok.Role)
	}
	return caller{tok: tok, site: sc.SiteID}, nil
}

// Fire creates the job of schedule sc's firing claimed at sc.NextFire,
// moving its next fire time to next: inside its window only (else the
// firing is skipped). A firing another relay claimed first creates
// nothing. It returns the job's ID ("" for none).
func (a *API) Fire(ctx context.Context, sc store.Schedule, next time.Time) (string, error) {
	if sc.Kind == store.ScheduleReport {
		return a.fireReport(ctx, sc, next)
	}
	now := a.now()
	skip := func(why string) (string, error) {
		if ok, err := a.Store.SkipFiring(ctx, sc.ID, sc.NextFire, next, why); err != nil || !ok {
			return "", err
		}
		a.Log.Info().Str("schedule", sc.Name).Time("fire", sc.NextFire).Msg("firing skipped: " + why)
		return "", nil
	}
	var req apiv1.JobCreate
	if err := json.Unmarshal([]byte(sc.Request), &req); err != nil {
		return skip(fmt.Sprintf("job request unreadable: %v", err))
	}
	if sc.WindowID != "" {
		mw, err := a.Store.GetWindow(ctx, sc.WindowID)
		if err != nil {
			return skip(fmt.Sprintf("window: %v", err))
		}
		w, err := toWindow(mw)
		if err != nil {
			return skip(err.Error())
		}
		if open, _ := w.OpenAt(now); !open {
			return skip(fmt.Sprintf("outside window %s (next opens %s)", w.Name, w.NextOpen(now).Format(time.RFC3339)))
		}
	}
	c, err := a.ownerCaller(ctx, sc)
	if err != nil {
		return a.fireFailed(ctx, sc, next, err)
	}
	actor := fmt.Sprintf("schedule %s (%s, for %s)", sc.Name, shortID(sc.ID), sc.CreatedBy)
	if sc.Kind == store.SchedulePatchPolicy && req.Reboot == "" {
		req.Reboot = sc.Reboot // a policy made before jobs carried it
	}
	job, _, _, err := a.createJob(store.WithFiring(ctx, sc.ID, sc.NextFire, next), req, c, actor, &sc)
	if errors.Is(err, store.ErrFiringClaimed) {
		return "", nil
	}
	if err != nil {
		return a.fireFailed(ctx, sc, next, err)
	}
	return job.ID, nil
}

// fireFailed records a firing whose job could not be created (the target
// matches nobody, the plugin was withdrawn, the owner left): skipped, with
// the error on the schedule and in the audit log.
func (a *API) fireFailed(ctx context.Context, sc store.Schedule, next time.Time, cause error) (string, error) {
	ok, err := a.Store.SkipFiring(ctx, sc.ID, sc.NextFire, next, cause.Error())
	if err != nil || !ok {
		return "", err
	}
	return "", a.audit(ctx, "schedule "+sc.Name+" ("+shortID(sc.ID)+")", "schedule.fail", "schedule "+sc.ID,
		map[string]string{"fire": sc.NextFire.Format(time.RFC3339), "error": cause.Error(), "owner": sc.CreatedBy})
}

// visible reports whether c sees schedule sc: its owner, or a caller who
// reaches every site its owner reached.
func (c caller) sees(sc store.Schedule) bool {
	return c.scope().HasAll(sc.OwnerSites) || sc.CreatedByUser != "" && sc.CreatedByUser == c.tok.UserID ||
		sc.CreatedByUser == "" && sc.CreatedByToken == c.tok.ID
}

func (a *API) handleScheduleCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.ScheduleCreate
	if !decode(w, r, &req) {
		return
	}
	sc, status, err := a.newSchedule(r.Context(), c, req.Name, req.Cron, req.TZ, "", req.Job)
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	sc.Kind = store.ScheduleJob
	a.storeSchedule(w, r, c, sc)
}

// newSchedule checks a schedule's spec, window and job request (planned
// once now, so that a plugin that is not there is refused at once) and
// fills in its owner and first fire time.
func (a *API) newSchedule(ctx context.Context, c caller, name, cron, tz, site string, job apiv1.JobCreate) (store.Schedule, int, error) {
	bad := http.StatusBadRequest
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return store.Schedule{}, bad, errors.New("a schedule needs a name of 1 to 100 characters: pass --name")
	}
	spec, err := schedule.Parse(cron, tz)
	if err != nil {
		return store.Schedule{}, bad, err
	}
	sc := store.Schedule{ID: store.NewID(), Name: name, Cron: spec.Cron, TZ: spec.TZ, CreatedBy: c.actor(),
		CreatedByToken: c.tok.ID, CreatedByUser: c.tok.UserID, OwnerRole: c.tok.Role, OwnerSites: c.tok.Sites, CreatedAt: a.now()}
	if job.Window != "" {
		mw, err := a.resolveWindow(ctx, c.scope(), job.Window)
		if err != nil {
			return store.Schedule{}, bad, err
		}
		sc.WindowID, job.Window = mw.ID, mw.ID
	}
	if _, _, status, err := a.planJob(ctx, job, caller{tok: c.tok, site: site}); err != nil {
		return store.Schedule{}, status, err
	}
	if err := checkJobReboot(job.Reboot, job.Window); err != nil {
		return store.Schedule{}, bad, err
	}
	b, err := json.Marshal(job)
	if err != nil {
		return store.Schedule{}, http.StatusInternalServerError, err
	}
	sc.Request = string(b)
	sc.NextFire = spec.Next(sc.CreatedAt)
	return sc, 0, nil
}

func (a *API) storeSchedule(w http.ResponseWriter, r *http.Request, c caller, sc store.Schedule) {
	err := a.Store.CreateSchedule(r.Context(), sc)
	if errors.Is(err, store.ErrNameTaken) {
		WriteError(w, http.StatusConflict, "a schedule named %q exists: choose another name or delete it", sc.Name)
		return
	}
	if err != nil {
		a.internal(w, r, "create schedule", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "schedule.create", "schedule "+sc.ID, map[string]string{
		"name": sc.Name, "kind": sc.Kind, "cron": sc.Cron, "tz": sc.TZ, "window": sc.WindowID, "job": sc.Request, "reboot": sc.Reboot,
	}); err != nil {
		a.internal(w, r, "create schedule", err)
		return
	}
	writeJSON(w, http.StatusCreated, a.scheduleJSON(r.Context(), sc))
}

func (a *API) scheduleJSON(ctx context.Context, sc store.Schedule) apiv1.Schedule {
	out := apiv1.Schedule{ID: sc.ID, Name: sc.Name, Kind: sc.Kind, Cron: sc.Cron, TZ: sc.TZ, Reboot: sc.Reboot, Paused: sc.Paused,
		LastJob: sc.LastJob, LastError: sc.LastError, CreatedBy: sc.CreatedBy, CreatedAt: sc.CreatedAt, LastFire: timePtr(sc.LastFire)}
	if !sc.Paused {
		out.NextFire = timePtr(sc.NextFire)
	}
	_ = json.Unmarshal([]byte(sc.Request), &out.Job)
	names, _ := a.siteNames(ctx)
	if sc.WindowID != "" {
		out.Window = sc.WindowID
		if mw, err := a.Store.GetWindow(ctx, sc.WindowID); err == nil {
			out.Window = names.name(mw.SiteID) + "/" + mw.Name
		}
		out.Job.Window = out.Window
	}
	if sc.SiteID != "" {
		out.Site = names.name(sc.SiteID)
	}
	return out
}

// findSchedule resolves an ID, unique ID prefix or name among the
// schedules c sees.
func (a *API) findSchedule(ctx context.Context, c caller, ref string) (store.Schedule, int, error) {
	all, err := a.Store.ListSchedules(ctx, "")
	if err != nil {
		return store.Schedule{}, http.StatusInternalServerError, err
	}
	var found []store.Schedule
	for _, sc := range all {
		if !c.sees(sc) {
			continue
		}
		if sc.ID == ref || strings.EqualFold(sc.Name, ref) {
			return sc, 0, nil
		}
		if len(ref) >= 4 && strings.HasPrefix(sc.ID, ref) {
			found = append(found, sc)
		}
	}
	switch len(found) {
	case 1:
		return found[0], 0, nil
	case 0:
		return store.Schedule{}, http.StatusNotFound, fmt.Errorf("schedule %q not found: patchbay schedules list shows them", ref)
	}
	return store.Schedule{}, http.StatusBadRequest, fmt.Errorf("schedule %q is ambiguous (%d match): give more of the ID or the name", ref, len(found))
}

func (a *API) handleScheduleList(w http.ResponseWriter, r *http.Request, c caller) {
	all, err := a.Store.ListSchedules(r.Context(), r.URL.Query().Get("kind"))
	if err != nil {
		a.internal(w, r, "list schedules", err)
		return
	}
	out := []apiv1.Schedule{}
	for _, sc := range all {
		if c.sees(sc) {
			out = append(out, a.scheduleJSON(r.Context(), sc))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleScheduleShow(w http.ResponseWriter, r *http.Request, c caller) {
	sc, status, err := a.findSchedule(r.Context(), c, r.PathValue("id"))
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, a.scheduleJSON(r.Context(), sc))
}

func (a *API) handleSchedulePause(w http.ResponseWriter, r *http.Request, c caller) {
	sc, status, err := a.findSchedule(r.Context(), c, r.PathValue("id"))
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	pause := strings.HasSuffix(r.URL.Path, "/pause")
	next := sc.NextFire
	if !pause {
		spec, err := schedule.Parse(sc.Cron, sc.TZ)
		if err != nil {
			a.internal(w, r, "resume schedule", err)
			return
		}
		next = spec.Next(a.now()) // the firings while paused are not made up
	}
	if err := a.Store.SetSchedulePaused(r.Context(), sc.ID, pause, next); err != nil {
		a.internal(w, r, "pause schedule", err)
		return
	}
	action := map[bool]string{true: "schedule.pause", false: "schedule.resume"}[pause]
	if err := a.audit(r.Context(), c.actor(), action, "schedule "+sc.ID, map[string]string{"name": sc.Name}); err != nil {
		a.internal(w, r, "pause schedule", err)
		return
	}
	sc.Paused, sc.NextFire = pause, next
	writeJSON(w, http.StatusOK, a.scheduleJSON(r.Context(), sc))
}

func (a *API) handleScheduleDelete(w http.ResponseWriter, r *http.Request, c caller) {
	sc, status, err := a.findSchedule(r.Context(), c, r.PathValue("id"))
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	if err := a.Store.DeleteSchedule(r.Context(), sc.ID); err != nil {
		a.internal(w, r, "delete schedule", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "schedule.delete", "schedule "+sc.ID, map[string]string{"name": sc.Name}); err != nil {
		a.internal(w, r, "delete schedule", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) handleWindowCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.WindowCreate
	if !decode(w, r, &req) {
		return
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 || strings.Contains(name, "/") {
		WriteError(w, http.StatusBadRequest, "a window needs a name of 1 to 100 characters without '/'")
		return
	}
	site, err := a.resolveSite(r.Context(), c.scope(), req.Site)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "duration %q: want e.g. 2h or 90m", req.Duration)
		return
	}
	win, err := schedule.NewWindow(name, site.ID, req.CronStart, req.TZ, d)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	mw := store.MaintWindow{ID: store.NewID(), Name: name, SiteID: site.ID, Cron: win.Cron, TZ: win.TZ, Duration: d, CreatedBy: c.actor(), CreatedAt: a.now()}
	err = a.Store.CreateWindow(r.Context(), mw)
	if errors.Is(err, store.ErrNameTaken) {
		WriteError(w, http.StatusConflict, "site %s has a window named %q: choose another name or delete it", site.FullName(), name)
		return
	}
	if err != nil {
		a.internal(w, r, "create window", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "window.create", "window "+mw.ID, map[string]string{
		"name": name, "site": site.ID, "cron": mw.Cron, "tz": mw.TZ, "duration": d.String()}); err != nil {
		a.internal(w, r, "create window", err)
		return
	}
	names, _ := a.siteNames(r.Context())
	writeJSON(w, http.StatusCreated, a.windowJSON(names, mw))
}

func (a *API) windowJSON(names siteNames, mw store.MaintWindow) apiv1.Window {
	out := apiv1.Window{ID: mw.ID, Name: mw.Name, Site: names.name(mw.SiteID), CronStart: mw.Cron, Duration: mw.Duration.String(), TZ: mw.TZ,
		CreatedBy: mw.CreatedBy, CreatedAt: mw.CreatedAt}
	if win, err := toWindow(mw); err == nil {
		now := a.now()
		out.Open, _ = win.OpenAt(now)
		out.NextOpen = timePtr(win.NextOpen(now))
	}
	return out
}

func (a *API) handleWindowList(w http.ResponseWriter, r *http.Request, c caller) {
	ws, err := a.Store.ListWindows(r.Context(), c.scope())
	if err != nil {
		a.internal(w, r, "list windows", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "list windows", err)
		return
	}
	out := make([]apiv1.Window, 0, len(ws))
	for _, mw := range ws {
		out = append(out, a.windowJSON(names, mw))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleWindowDelete(w http.ResponseWriter, r *http.Request, c caller) {
	mw, err := a.resolveWindow(r.Context(), c.scope(), r.PathValue("id"))
	if err != nil {
		WriteError(w, http.StatusNotFound, "%v", err)
		return
	}
	err = a.Store.DeleteWindow(r.Context(), mw.ID)
	if errors.Is(err, store.ErrWindowInUse) {
		WriteError(w, http.StatusConflict, "window %s: schedules use it: delete or change them first (patchbay schedules list)", mw.Name)
		return
	}
	if err != nil {
		a.internal(w, r, "delete window", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "window.delete", "window "+mw.ID, map[string]string{"name": mw.Name, "site": mw.SiteID}); err != nil {
		a.internal(w, r, "delete window", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Reboot choices of a patch policy (wire.RunReboot's modes).
var rebootChoices = []string{wire.RebootAsk, wire.RebootNever, wire.RebootForceInWindow}

// checkJobReboot checks a job's restart wish: "" or a reboot choice;
// force-in-window needs a maintenance window.
func checkJobReboot(reboot, window string) error {
	switch {
	case reboot == "":
	case !slices.Contains(rebootChoices, reboot):
		return fmt.Errorf("reboot %q: want ask, never or force-in-window", reboot)
	case reboot == wire.RebootForceInWindow && window == "":
		return fmt.Errorf("reboot force-in-window needs a maintenance window: give the job a window")
	}
	return nil
}

// patchPlugin is the plugin patch policies run.
const patchPlugin = "patchinstall"

// handlePatchPolicyCreate makes a schedule (kind patch-policy) that creates
// a patchinstall job over the site's agents each time the window opens,
// whose runs start only while it is open. The reboot choice goes with each
// run (wire.RunReboot, with the window's end): the endpoint's consent
// policy stays the authority and weighs it (agent/consent DecideReboot;
// README, "Patch policies").
func (a *API) handlePatchPolicyCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.PatchPolicyCreate
	if !decode(w, r, &req) {
		return
	}
	site, err := a.resolveSite(r.Context(), c.scope(), req.Site)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.Window == "" {
		WriteError(w, http.StatusBadRequest, "a patch policy needs --window: patchbay windows create makes one")
		return
	}
	mw, err := a.resolveWindow(r.Context(), c.scope(), req.Window)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if req.Reboot == "" {
		req.Reboot = "ask"
	}
	if !slices.Contains(rebootChoices, req.Reboot) {
		WriteError(w, http.StatusBadRequest, "reboot %q: want ask, never or force-in-window", req.Reboot)
		return
	}
	params := map[string]string{}
	switch cats := strings.ToLower(strings.ReplaceAll(req.Categories, " ", "")); cats {
	case "", "security":
		params["security_only"] = "true"
	case "all":
	default:
		params["categories"] = cats // windowsupdate classifications; patchinstall refuses them elsewhere
	}
	target := req.Target
	if target == "" {
		target = "all" // of the policy's site: its jobs are scoped to it
	}
	name := req.Name
	if name == "" {
		name = "patch " + site.FullName()
	}
	job := apiv1.JobCreate{Plugin: patchPlugin, Target: target, Params: params, Window: mw.ID, Reboot: req.Reboot,
		Reason: fmt.Sprintf("patch policy %s: %s updates in window %s (reboot: %s)", name, map[bool]string{true: "security", false: "all"}[params["security_only"] == "true"], mw.Name, req.Reboot)}
	sc, status, err := a.newSchedule(r.Context(), c, name, mw.Cron, mw.TZ, site.ID, job)
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	sc.Kind, sc.SiteID, sc.Reboot = store.SchedulePatchPolicy, site.ID, req.Reboot
	a.storeSchedule(w, r, c, sc)
}
