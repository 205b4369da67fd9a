package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/account"
	"github.com/patchbay/patchbay/server/store"
)

// Users (admin): people who log in with a password and TOTP. A user is
// named by what patchbay users list prints: the name, the ID or a unique ID
// prefix. Every change is audited (user.create, user.disable, user.enable,
// user.delete, user.reset, settings.require-totp).

func (a *API) registerUsers(mux *http.ServeMux) {
	mux.Handle("POST /v1/users", a.auth(apiv1.RoleAdmin, a.handleUserCreate))
	mux.Handle("GET /v1/users", a.auth(apiv1.RoleAdmin, a.handleUserList))
	mux.Handle("GET /v1/users/{id}", a.auth(apiv1.RoleAdmin, a.handleUserShow))
	mux.Handle("POST /v1/users/{id}/disable", a.auth(apiv1.RoleAdmin, a.handleUserDisable))
	mux.Handle("POST /v1/users/{id}/enable", a.auth(apiv1.RoleAdmin, a.handleUserEnable))
	mux.Handle("POST /v1/users/{id}/reset", a.auth(apiv1.RoleAdmin, a.handleUserReset))
	mux.Handle("DELETE /v1/users/{id}", a.auth(apiv1.RoleAdmin, a.handleUserDelete))
	mux.Handle("POST /v1/users/{id}/sites", a.auth(apiv1.RoleAdmin, a.handleUserSites))
	mux.Handle("POST /v1/users/{id}/role", a.auth(apiv1.RoleAdmin, a.handleUserRole))
	mux.Handle("GET /v1/settings", a.auth(apiv1.RoleViewer, a.handleSettings))
	mux.Handle("PUT /v1/settings/require-totp", a.auth(apiv1.RoleAdmin, a.handleRequireTOTP))
	a.registerAccount(mux)
}

// validUserName: 1-64 of a-z, 0-9 and . _ @ - (names are lower case; the
// API lower-cases what it is given), starting with a letter or digit.
func validUserName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '.' || s[0] == '-' || s[0] == '_' || s[0] == '@' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

func userJSON(u store.User) apiv1.User {
	totp := "off"
	switch {
	case u.TOTPSecret != "":
		totp = "on"
	case u.TOTPPending != "":
		totp = "pending"
	}
	return apiv1.User{ID: u.ID, Name: u.Name, Role: u.Role, Source: u.Source, TOTP: totp,
		RecoveryCodesLeft: len(u.RecoveryHashes), Disabled: !u.DisabledAt.IsZero(), DisabledAt: timePtr(u.DisabledAt),
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// newPassword returns the password asked for, checked, or a generated one
// (generated reports which), and its hash. On failure it has answered.
func (a *API) newPassword(w http.ResponseWriter, r *http.Request, asked string) (pw, hash string, generated, ok bool) {
	pw = asked
	if pw == "" {
		pw, generated = account.NewPassword(), true
	} else if err := account.CheckPassword(pw); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return "", "", false, false
	}
	hash, err := account.Hash(pw)
	if err != nil {
		a.internal(w, r, "hash password", err)
		return "", "", false, false
	}
	return pw, hash, generated, true
}

func (a *API) handleUserCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.UserRequest
	if !decode(w, r, &req) {
		return
	}
	name := NormUserName(req.Name)
	if !validUserName(name) {
		WriteError(w, http.StatusBadRequest, "user name %q: want 1-64 of a-z, 0-9 and . _ @ - (lower case), starting with a letter or digit", req.Name)
		return
	}
	if apiv1.RoleRank(req.Role) == 0 {
		WriteError(w, http.StatusBadRequest, "role %q: want viewer, auditor, technician or admin", req.Role)
		return
	}
	sites, err := a.resolveGrants(r.Context(), req.Sites)
	if err != nil {
		a.siteError(w, r, err)
		return
	}
	pw, hash, generated, ok := a.newPassword(w, r, req.Password)
	if !ok {
		return
	}
	now := a.now()
	u := store.User{ID: store.NewID(), Name: name, Role: req.Role, PasswordHash: hash, Source: store.SourceLocal,
		CreatedAt: now, UpdatedAt: now, Sites: sites}
	ctx := r.Context()
	err = a.Store.CreateUser(ctx, u)
	if errors.Is(err, store.ErrUserExists) {
		WriteError(w, http.StatusConflict, "a user named %s exists: pick another name, or patchbay users reset %s", name, name)
		return
	}
	if err == nil {
		err = a.audit(ctx, c.actor(), "user.create", u.ID, map[string]string{"name": name, "role": req.Role,
			"password": map[bool]string{true: "generated", false: "given"}[generated], "sites": strings.Join(sites, ",")})
	}
	if err != nil {
		a.internal(w, r, "create user", err)
		return
	}
	out := userJSON(u)
	if names, err := a.siteNames(ctx); err == nil {
		out.Sites = names.names(sites)
	}
	if generated {
		out.Password = pw
	}
	writeJSON(w, http.StatusCreated, out)
}

func (a *API) handleUserList(w http.ResponseWriter, r *http.Request, _ caller) {
	users, err := a.Store.ListUsers(r.Context())
	if err != nil {
		a.internal(w, r, "list users", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "list users", err)
		return
	}
	out := make([]apiv1.User, len(users))
	for i, u := range users {
		if out[i], err = a.userWithSites(r.Context(), u, names); err != nil {
			a.internal(w, r, "list users", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// findUser resolves the {id} path value: a user name, ID or unique ID
// prefix. On failure it has answered.
func (a *API) findUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	ref := r.PathValue("id")
	found, err := a.Store.FindUsers(r.Context(), ref, maxCandidates+1)
	if err != nil {
		a.internal(w, r, "look up user", err)
		return store.User{}, false
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		WriteError(w, http.StatusNotFound, "no user with name, ID or ID prefix %q: patchbay users list shows them", ref)
		return store.User{}, false
	}
	list := make([]string, len(found))
	for i, u := range found {
		list[i] = u.ID + " (" + u.Name + ")"
	}
	WriteError(w, http.StatusConflict, "%q names %s users: %s: give more of the ID, or the name", ref, count(len(found)), candidates(list))
	return store.User{}, false
}

func (a *API) handleUserShow(w http.ResponseWriter, r *http.Request, _ caller) {
	if u, ok := a.findUser(w, r); ok {
		names, err := a.siteNames(r.Context())
		if err != nil {
			a.internal(w, r, "show user", err)
			return
		}
		out, err := a.userWithSites(r.Context(), u, names)
		if err != nil {
			a.internal(w, r, "show user", err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// userWithSites is userJSON with the user's grants.
func (a *API) userWithSites(ctx context.Context, u store.User, names siteNames) (apiv1.User, error) {
	sites, err := a.Store.UserSites(ctx, u.ID)
	if err != nil {
		return apiv1.User{}, err
	}
	out := userJSON(u)
	out.Sites = names.names(sites)
	return out, nil
}

// handleUserRole changes a local user's role. A lower role applies to their
// live sessions and tokens at once (a token never outranks its user); a
// higher one from their next login. A single sign-on user's role follows
// their groups at the provider.
func (a *API) handleUserRole(w http.ResponseWriter, r *http.Request, c caller) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	var req apiv1.UserRoleRequest
	if !decode(w, r, &req) {
		return
	}
	if apiv1.RoleRank(req.Role) == 0 {
		WriteError(w, http.StatusBadRequest, "role %q: want viewer, auditor, technician or admin", req.Role)
		return
	}
	if u.Source == store.SourceOIDC {
		WriteError(w, http.StatusConflict, "%s signs in with single sign-on: their role follows their groups at the identity provider (--oidc-role-map)", u.Name)
		return
	}
	if u.ID == c.tok.UserID && apiv1.RoleRank(req.Role) < apiv1.RoleRank(u.Role) {
		WriteError(w, http.StatusConflict, "you cannot lower your own role: ask another admin")
		return
	}
	if req.Role != u.Role {
		if err := a.Store.SetUserRole(r.Context(), u.ID, req.Role, a.now()); err != nil {
			a.internal(w, r, "set user role", err)
			return
		}
		if err := a.audit(r.Context(), c.actor(), "user.role", u.ID, map[string]string{"name": u.Name, "from": u.Role, "to": req.Role}); err != nil {
			a.internal(w, r, "set user role", err)
			return
		}
		u.Role = req.Role
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "set user role", err)
		return
	}
	out, err := a.userWithSites(r.Context(), u, names)
	if err != nil {
		a.internal(w, r, "set user role", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleUserSites replaces a user's grants. Their live sessions and tokens
// follow at once: the next request is filtered by the new grants.
func (a *API) handleUserSites(w http.ResponseWriter, r *http.Request, c caller) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	var req apiv1.UserSitesRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Sites) == 0 {
		WriteError(w, http.StatusBadRequest, "sites: name at least one site (or \"all\"); to stop %s, disable them (patchbay users disable %s)", u.Name, u.Name)
		return
	}
	sites, err := a.resolveGrants(r.Context(), req.Sites)
	if err != nil {
		a.siteError(w, r, err)
		return
	}
	if err := a.Store.SetUserSites(r.Context(), u.ID, sites); err != nil {
		a.internal(w, r, "set user sites", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "set user sites", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "user.sites", u.ID, map[string]string{
		"name": u.Name, "sites": strings.Join(names.names(sites), ", ")}); err != nil {
		a.internal(w, r, "set user sites", err)
		return
	}
	out := userJSON(u)
	out.Sites = names.names(sites)
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleUserDisable(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.UserDisableRequest
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	a.setDisabled(w, r, c, true, req.CancelJobs)
}

func (a *API) handleUserEnable(w http.ResponseWriter, r *http.Request, c caller) {
	a.setDisabled(w, r, c, false, false)
}

// setDisabled disables or enables a user. A disabled user's tokens (sessions
// and API tokens alike) are refused from the next request on, and what they
// opened ends (EndAccess); with cancelJobs their running jobs are cancelled
// too.
func (a *API) setDisabled(w http.ResponseWriter, r *http.Request, c caller, disabled, cancelJobs bool) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	if disabled && u.ID == c.tok.UserID {
		WriteError(w, http.StatusConflict, "you cannot disable your own account: ask another admin")
		return
	}
	ctx, now := r.Context(), a.now()
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	err := a.Store.SetUserDisabled(ctx, u.ID, disabled, now)
	if err == nil && disabled {
		// Refused from the next request on; what they have open ends now.
		var ids []string
		if ids, err = a.Store.UserTokenIDs(ctx, u.ID); err == nil {
			a.endAccess(ctx, ids, "access revoked: user "+u.Name+" was disabled by "+c.tok.Name)
		}
	}
	if err == nil {
		err = a.audit(ctx, c.actor(), action, u.ID, map[string]string{"name": u.Name, "cancel_jobs": strconv.FormatBool(cancelJobs)})
	}
	cancelled := 0
	if err == nil && disabled && cancelJobs {
		cancelled, err = a.cancelJobsOf(ctx, c, u)
	}
	if err != nil {
		a.internal(w, r, action, err)
		return
	}
	if u, err = a.Store.GetUser(ctx, u.ID); err != nil {
		a.internal(w, r, action, err)
		return
	}
	out := userJSON(u)
	out.JobsCancelled = cancelled
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleUserDelete(w http.ResponseWriter, r *http.Request, c caller) {
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	if u.ID == c.tok.UserID {
		WriteError(w, http.StatusConflict, "you cannot delete your own account: ask another admin")
		return
	}
	ctx := r.Context()
	ids, err := a.Store.UserTokenIDs(ctx, u.ID)
	if err == nil {
		err = a.Store.DeleteUser(ctx, u.ID, a.now()) // revokes the tokens too
	}
	if err == nil {
		a.endAccess(ctx, ids, "access revoked: user "+u.Name+" was deleted by "+c.tok.Name)
		err = a.audit(ctx, c.actor(), "user.delete", u.ID, map[string]string{"name": u.Name})
	}
	if err != nil {
		a.internal(w, r, "delete user", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleUserReset sets a new password (given or generated), optionally
// removes the user's TOTP, and ends the user's password sessions (their API
// tokens for automation stay).
func (a *API) handleUserReset(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.UserResetRequest
	if !decode(w, r, &req) {
		return
	}
	u, ok := a.findUser(w, r)
	if !ok {
		return
	}
	pw, hash, generated, ok := a.newPassword(w, r, req.Password)
	if !ok {
		return
	}
	ctx, now := r.Context(), a.now()
	err := a.Store.SetUserPassword(ctx, u.ID, hash, now)
	if err == nil && req.ClearTOTP {
		err = a.Store.ClearUserTOTP(ctx, u.ID, now)
	}
	var ended []string
	if err == nil {
		ended, err = a.Store.RevokeUserSessions(ctx, u.ID, "", now)
	}
	if err == nil {
		a.endAccess(ctx, ended, "access revoked: the password of "+u.Name+" was reset by "+c.tok.Name)
		err = a.audit(ctx, c.actor(), "user.reset", u.ID, map[string]string{"name": u.Name,
			"totp_cleared": strconv.FormatBool(req.ClearTOTP), "sessions_ended": strconv.Itoa(len(ended))})
	}
	if err == nil {
		u, err = a.Store.GetUser(ctx, u.ID)
	}
	if err != nil {
		a.internal(w, r, "reset user", err)
		return
	}
	out := userJSON(u)
	if generated {
		out.Password = pw
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleSettings(w http.ResponseWriter, r *http.Request, _ caller) {
	req, err := a.requireTOTP(r.Context())
	if err != nil {
		a.internal(w, r, "read settings", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Settings{RequireTOTP: req})
}

func (a *API) handleRequireTOTP(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.RequireTOTPRequest
	if !decode(w, r, &req) {
		return
	}
	v := map[bool]string{true: "on", false: "off"}[req.Enabled]
	ctx := r.Context()
	err := a.Store.SetSetting(ctx, store.SettingRequireTOTP, v, a.now())
	if err == nil {
		err = a.audit(ctx, c.actor(), "settings.require-totp", store.SettingRequireTOTP, map[string]string{"value": v})
	}
	if err != nil {
		a.internal(w, r, "set require-totp", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.Settings{RequireTOTP: req.Enabled})
}

// cancelJobsOf cancels the running jobs u's tokens started, each audited as
// job.cancel, and returns how many.
func (a *API) cancelJobsOf(ctx context.Context, c caller, u store.User) (int, error) {
	if a.Jobs == nil {
		return 0, nil
	}
	jobs, err := a.Store.RunningJobsOfUser(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	for _, j := range jobs {
		n, err := a.Jobs.Cancel(ctx, j.ID)
		if err != nil {
			return 0, fmt.Errorf("cancel job %s: %w", j.ID, err)
		}
		if err := a.audit(ctx, c.actor(), "job.cancel", "job "+j.ID, map[string]string{
			"plugin": j.Plugin, "state_before": j.State, "never_started": strconv.Itoa(n),
			"why": "its user " + u.Name + " was disabled"}); err != nil {
			return 0, err
		}
	}
	return len(jobs), nil
}
