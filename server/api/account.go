package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/account"
	"github.com/patchbay/patchbay/server/store"
)

// Self-service for the user behind the calling token: change the password,
// enrol, confirm and turn off TOTP. Audited as user.password,
// user.totp.enrol, user.totp.confirm and user.totp.disable. A password typed
// here is throttled like a login (per source and per user name).

// TOTPIssuer names the relay in authenticator apps.
const TOTPIssuer = "Patchbay"

func (a *API) registerAccount(mux *http.ServeMux) {
	mux.Handle("POST /v1/account/password", a.auth(apiv1.RoleViewer, a.handlePasswordChange))
	mux.Handle("POST /v1/account/totp", a.auth(apiv1.RoleViewer, a.handleTOTPEnrol))
	mux.Handle("POST /v1/account/totp/confirm", a.auth(apiv1.RoleViewer, a.handleTOTPConfirm))
	mux.Handle("POST /v1/account/totp/disable", a.auth(apiv1.RoleViewer, a.handleTOTPDisable))
}

// self returns the calling token's user. On failure it has answered.
func (a *API) self(w http.ResponseWriter, r *http.Request, c caller) (store.User, bool) {
	if c.tok.UserID == "" {
		WriteError(w, http.StatusBadRequest, "API token %q belongs to no user: log in as a user (patchbay login --user NAME)", c.tok.Name)
		return store.User{}, false
	}
	u, err := a.Store.GetUser(r.Context(), c.tok.UserID)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusUnauthorized, "your user was deleted: log in again")
		return u, false
	}
	if err != nil {
		a.internal(w, r, "look up user", err)
		return u, false
	}
	return u, true
}

// checkOwnPassword verifies the caller's password with login throttling.
// On failure it has answered.
func (a *API) checkOwnPassword(w http.ResponseWriter, r *http.Request, u store.User, pw string) bool {
	ticket, ok := a.begin(w, r, u.Name)
	if !ok {
		return false
	}
	ok, _, err := account.Verify(u.PasswordHash, pw)
	if err != nil {
		a.settle(ticket, false)
		a.internal(w, r, "check password", err)
		return false
	}
	if !ok {
		a.slowFailed(r, ticket, u.Name, "password (account change)")
		WriteError(w, http.StatusUnauthorized, "wrong password: nothing changed")
		return false
	}
	a.settle(ticket, true)
	return true
}

// handlePasswordChange changes the caller's password (the old one is
// needed) and ends their other password sessions.
func (a *API) handlePasswordChange(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.PasswordChangeRequest
	if !decode(w, r, &req) {
		return
	}
	u, ok := a.self(w, r, c)
	if !ok || !a.checkOwnPassword(w, r, u, req.OldPassword) {
		return
	}
	if req.NewPassword == "" {
		WriteError(w, http.StatusBadRequest, "new_password is empty")
		return
	}
	_, hash, _, ok := a.newPassword(w, r, req.NewPassword)
	if !ok {
		return
	}
	ctx, now := r.Context(), a.now()
	err := a.Store.SetUserPassword(ctx, u.ID, hash, now)
	var ended []string
	if err == nil {
		ended, err = a.Store.RevokeUserSessions(ctx, u.ID, c.tok.ID, now)
	}
	if err == nil {
		a.endAccess(ctx, ended, "access revoked: "+u.Name+" changed their password")
		err = a.audit(ctx, c.actor(), "user.password", u.ID, map[string]string{"name": u.Name, "other_sessions_ended": strconv.Itoa(len(ended))})
	}
	if err != nil {
		a.internal(w, r, "change password", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleTOTPEnrol starts an enrolment: a new secret, pending until a code
// from it confirms it. A user who has TOTP turns it off first.
func (a *API) handleTOTPEnrol(w http.ResponseWriter, r *http.Request, c caller) {
	u, ok := a.self(w, r, c)
	if !ok {
		return
	}
	if u.TOTPSecret != "" {
		WriteError(w, http.StatusConflict, "TOTP is already on for %s: turn it off first (patchbay account totp disable) to enrol a new device", u.Name)
		return
	}
	e, err := account.NewTOTP(TOTPIssuer, u.Name)
	if err != nil {
		a.internal(w, r, "enrol totp", err)
		return
	}
	ctx := r.Context()
	err = a.Store.SetUserTOTPPending(ctx, u.ID, e.Secret, a.now())
	if err == nil {
		err = a.audit(ctx, c.actor(), "user.totp.enrol", u.ID, map[string]string{"name": u.Name})
	}
	if err != nil {
		a.internal(w, r, "enrol totp", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.TOTPEnrolment{Secret: e.Secret, URI: e.URI})
}

// handleTOTPConfirm turns the pending secret on with its first code and
// returns the recovery codes (once). An enrolment-only session becomes a
// full one.
func (a *API) handleTOTPConfirm(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.TOTPConfirmRequest
	if !decode(w, r, &req) {
		return
	}
	u, ok := a.self(w, r, c)
	if !ok {
		return
	}
	if u.TOTPPending == "" {
		WriteError(w, http.StatusConflict, "no TOTP enrolment is pending for %s: start one with patchbay account totp enrol", u.Name)
		return
	}
	if a.throttled(w, r, u.Name) {
		return
	}
	now := a.now()
	step, err := account.ValidateTOTP(u.TOTPPending, req.Code, u.TOTPLastStep, now)
	if err != nil {
		a.authFailed(r, u.Name, "totp confirmation")
		WriteError(w, http.StatusBadRequest, "the code does not match the new secret (%v): check the authenticator app's clock and try the next code", err)
		return
	}
	codes, hashes := account.NewRecoveryCodes()
	ctx := r.Context()
	err = a.Store.ConfirmUserTOTP(ctx, u.ID, u.TOTPPending, step, hashes, now)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusConflict, "the enrolment changed meanwhile (another enrol or confirm): start again with patchbay account totp enrol")
		return
	}
	if err == nil && c.tok.Kind == store.KindEnrol {
		err = a.Store.SetAPITokenKind(ctx, c.tok.ID, store.KindSession)
	}
	if err == nil {
		err = a.audit(ctx, c.actor(), "user.totp.confirm", u.ID, map[string]string{"name": u.Name,
			"recovery_codes": strconv.Itoa(len(codes))})
	}
	if err != nil {
		a.internal(w, r, "confirm totp", err)
		return
	}
	writeJSON(w, http.StatusOK, apiv1.TOTPConfirmation{RecoveryCodes: codes})
}

// handleTOTPDisable turns the caller's TOTP off (their password is needed),
// unless the relay requires it.
func (a *API) handleTOTPDisable(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.TOTPDisableRequest
	if !decode(w, r, &req) {
		return
	}
	u, ok := a.self(w, r, c)
	if !ok {
		return
	}
	ctx := r.Context()
	required, err := a.requireTOTP(ctx)
	if err != nil {
		a.internal(w, r, "turn off totp", err)
		return
	}
	if required {
		WriteError(w, http.StatusConflict, "this relay requires TOTP for everyone: an admin can reset it for you (patchbay users reset %s --totp) if you lost the device", u.Name)
		return
	}
	if u.TOTPSecret == "" && u.TOTPPending == "" {
		WriteError(w, http.StatusConflict, "TOTP is not on for %s", u.Name)
		return
	}
	if !a.checkOwnPassword(w, r, u, req.Password) {
		return
	}
	err = a.Store.ClearUserTOTP(ctx, u.ID, a.now())
	if err == nil {
		err = a.audit(ctx, c.actor(), "user.totp.disable", u.ID, map[string]string{"name": u.Name})
	}
	if err != nil {
		a.internal(w, r, "turn off totp", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
