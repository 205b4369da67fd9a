package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/account"
	"github.com/patchbay/patchbay/server/store"
)

// SessionTTL is how long the token of a password login lasts.
const SessionTTL = 12 * time.Hour

// The login path of people (POST /v1/login/password and the console's
// password form): user name and password, checked against the argon2id
// hash; then, when the user has a second factor, a TOTP code (each time
// step accepted once: store.AcceptTOTPStep) or a recovery code (each works
// once). Success mints a session API token owned by the user (SessionTTL,
// the user's role) and audits login.password. A refusal never says which
// part was wrong, and costs the same time for an unknown user as for a
// wrong password. The one thing a caller learns is that a correct
// password needs a code (ErrCodeRequired), as with every two-step login:
// the CLI then asks for one. Throttling (authlimit, per source and per user
// name) is the caller's: the handler here and the console's password form.

// ErrLoginRefused is a wrong user name, password or code.
var ErrLoginRefused = errors.New("login refused: user name, password or code wrong (after repeated failures the relay slows down sign-ins)")

// ErrCodeRequired is a right password without the code its user needs.
var ErrCodeRequired = errors.New("login needs a code: enter the 6-digit code from your authenticator app, or a recovery code")

// ErrEnrolRequired is a right password of a user who must enrol TOTP first,
// from a login path that cannot enrol (the console).
var ErrEnrolRequired = errors.New("this relay requires two-factor login and your account has none yet: log in with patchbay login --user NAME and run patchbay account totp enrol, then log in here")

// PasswordAttempt is what a person presents at a password login.
type PasswordAttempt struct {
	User, Password, Code string
	Remote               string // the client's address, for the audit record
	Via                  string // "cli" or "console", for the audit record
	// AllowEnrol mints an enrolment-only session for a user who must enrol
	// TOTP (the CLI can enrol; the console answers ErrEnrolRequired).
	AllowEnrol bool
}

// LoginRefusal is ErrLoginRefused with the reason, for the relay's log only.
type LoginRefusal struct{ Reason string }

func (e *LoginRefusal) Error() string        { return ErrLoginRefused.Error() }
func (e *LoginRefusal) Is(target error) bool { return target == ErrLoginRefused }

func refused(reason string) error { return &LoginRefusal{Reason: reason} }

// NormUserName is how user names are compared: trimmed, lower case.
func NormUserName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// PasswordLogin checks a password login and mints its session token. It
// returns the token (secret included) and, when a recovery code was used,
// how many are left (else -1); ErrLoginRefused (a *LoginRefusal),
// ErrCodeRequired, ErrEnrolRequired or another error when the relay failed.
func (a *API) PasswordLogin(ctx context.Context, in PasswordAttempt) (secret string, tok store.APIToken, recoveryLeft int, err error) {
	recoveryLeft = -1
	name := NormUserName(in.User)
	if !validUserName(name) {
		account.VerifyNothing(in.Password)
		return "", tok, -1, refused("malformed user name")
	}
	u, err := a.Store.GetUserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		account.VerifyNothing(in.Password)
		return "", tok, -1, refused("no such user")
	}
	if err != nil {
		return "", tok, -1, err
	}
	if u.Source != store.SourceLocal || u.PasswordHash == "" {
		account.VerifyNothing(in.Password)
		return "", tok, -1, refused("user has no password (source " + u.Source + ")")
	}
	ok, rehash, err := account.Verify(u.PasswordHash, in.Password)
	if err != nil {
		return "", tok, -1, fmt.Errorf("user %s: %w", u.Name, err)
	}
	if !ok {
		return "", tok, -1, refused("wrong password")
	}
	if !u.DisabledAt.IsZero() {
		return "", tok, -1, refused("user disabled")
	}
	now := a.now()
	factor := "none"
	kind := store.KindSession
	switch {
	case u.TOTPSecret != "" && strings.TrimSpace(in.Code) == "":
		return "", tok, -1, ErrCodeRequired
	case u.TOTPSecret != "" && account.IsRecoveryCode(in.Code):
		err := a.Store.UseRecoveryCode(ctx, u.ID, account.HashRecoveryCode(in.Code), now)
		if errors.Is(err, store.ErrNotFound) {
			return "", tok, -1, refused("wrong or used recovery code")
		}
		if err != nil {
			return "", tok, -1, err
		}
		factor, recoveryLeft = "recovery code", len(u.RecoveryHashes)-1
	case u.TOTPSecret != "":
		step, err := account.ValidateTOTP(u.TOTPSecret, in.Code, u.TOTPLastStep, now)
		if err != nil {
			return "", tok, -1, refused("totp: " + err.Error())
		}
		if err := a.Store.AcceptTOTPStep(ctx, u.ID, step); errors.Is(err, store.ErrTOTPReplayed) {
			return "", tok, -1, refused("totp: code already used")
		} else if err != nil {
			return "", tok, -1, err
		}
		factor = "totp"
	default:
		required, err := a.requireTOTP(ctx)
		if err != nil {
			return "", tok, -1, err
		}
		if required {
			if !in.AllowEnrol {
				return "", tok, -1, ErrEnrolRequired
			}
			kind = store.KindEnrol
		}
	}
	if rehash {
		if h, err := account.Hash(in.Password); err != nil || a.Store.SetUserPassword(ctx, u.ID, h, now) != nil {
			a.Log.Warn().Str("user", u.Name).Msg("rehash password with the current argon2id parameters failed; kept the old hash")
		}
	}
	secret, hash := NewSecret(PrefixAPI)
	tok = store.APIToken{ID: store.NewID(), Hash: hash, Role: u.Role, Name: u.Name, CreatedAt: now,
		ExpiresAt: now.Add(SessionTTL), UserID: u.ID, Kind: kind, UserName: u.Name}
	if err := a.Store.CreateAPIToken(ctx, tok); err != nil {
		return "", tok, -1, err
	}
	detail := map[string]string{"remote": in.Remote, "via": in.Via, "second_factor": factor, "token": tok.ID,
		"expires_at": tok.ExpiresAt.Format(time.RFC3339)}
	if kind == store.KindEnrol {
		detail["totp_enrol_required"] = "true"
	}
	if recoveryLeft >= 0 {
		detail["recovery_codes_left"] = strconv.Itoa(recoveryLeft)
	}
	if err := a.audit(ctx, Actor(tok), "login.password", u.ID, detail); err != nil {
		a.Store.RevokeAPIToken(ctx, tok.ID, now) // no unaudited session
		return "", tok, -1, err
	}
	return secret, tok, recoveryLeft, nil
}

// requireTOTP reads the relay's require_totp setting.
func (a *API) requireTOTP(ctx context.Context) (bool, error) {
	v, err := a.Store.Setting(ctx, store.SettingRequireTOTP)
	return v == "on", err
}

// handlePasswordLogin is POST /v1/login/password (no token needed).
func (a *API) handlePasswordLogin(w http.ResponseWriter, r *http.Request) {
	var req apiv1.PasswordLoginRequest
	if !decode(w, r, &req) {
		return
	}
	name := NormUserName(req.User)
	ticket, ok := a.begin(w, r, name)
	if !ok {
		return
	}
	secret, tok, left, err := a.PasswordLogin(r.Context(), PasswordAttempt{User: req.User, Password: req.Password,
		Code: req.Code, Remote: r.RemoteAddr, Via: "cli", AllowEnrol: true})
	var refusal *LoginRefusal
	switch {
	case errors.As(err, &refusal):
		a.slowFailed(r, ticket, name, "password ("+refusal.Reason+")")
		WriteError(w, http.StatusUnauthorized, "%v", err)
		return
	case errors.Is(err, ErrCodeRequired):
		a.settle(ticket, false) // the password was right; the code is still to come
		writeJSON(w, http.StatusUnauthorized, apiv1.Error{Error: err.Error(), Code: apiv1.ErrCodeTOTPRequired})
		return
	case err != nil:
		a.settle(ticket, false)
		a.internal(w, r, "log in", err)
		return
	}
	a.settle(ticket, true)
	out := apiv1.PasswordLogin{Whoami: a.whoami(r.Context(), tok), Token: secret, ExpiresAt: tok.ExpiresAt,
		TOTPEnrolRequired: tok.Kind == store.KindEnrol}
	if left >= 0 {
		out.RecoveryCodesLeft = &left
	}
	writeJSON(w, http.StatusOK, out)
}

// enrolOnly lists what an enrolment-only session (store.KindEnrol) may call.
var enrolOnly = map[string]bool{
	"/v1/whoami": true, "/v1/login": true, "/v1/account/totp": true, "/v1/account/totp/confirm": true,
}
