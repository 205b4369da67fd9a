package apiv1

import "time"

// User is a person's account (GET /v1/users). Password is only set in the
// answer to a create or reset that generated it, shown once.
type User struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Source string `json:"source"` // local (password) or oidc
	// TOTP is "on", "off" or "pending" (enrolled, not yet confirmed by a code).
	TOTP              string     `json:"totp"`
	RecoveryCodesLeft int        `json:"recovery_codes_left"`
	Disabled          bool       `json:"disabled"`
	DisabledAt        *time.Time `json:"disabled_at,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	Password          string     `json:"password,omitempty"`
	// JobsCancelled is, in the answer to a disable with CancelJobs, how
	// many of the user's running jobs were cancelled.
	JobsCancelled int `json:"jobs_cancelled,omitempty"`
	// Sites the user is granted ("ORG/SITE"), or ["all"]. Admins reach
	// every site whatever their grants.
	Sites []string `json:"sites"`
}

// UserRoleRequest changes a user's role (POST /v1/users/{id}/role).
type UserRoleRequest struct {
	Role string `json:"role"`
}

// UserSitesRequest replaces a user's grants (POST /v1/users/{id}/sites):
// site references (ID, ID prefix, "ORG/SITE" or unique name), or "all".
type UserSitesRequest struct {
	Sites []string `json:"sites"`
}

// UserDisableRequest is the optional body of POST /v1/users/{id}/disable.
// Jobs belong to the organisation: by default a disabled user's running
// jobs go on; CancelJobs cancels them (their runs not yet started).
type UserDisableRequest struct {
	CancelJobs bool `json:"cancel_jobs,omitempty"`
}

// UserRequest creates a user (POST /v1/users). An empty Password makes the
// relay generate one, returned once.
type UserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password,omitempty"`
	// Sites the user is granted (as in UserSitesRequest); empty: the
	// default site.
	Sites []string `json:"sites,omitempty"`
}

// UserResetRequest sets a new password for a user (POST
// /v1/users/{id}/reset); empty: the relay generates one. ClearTOTP also
// removes their second factor and recovery codes (a lost phone).
type UserResetRequest struct {
	Password  string `json:"password,omitempty"`
	ClearTOTP bool   `json:"clear_totp,omitempty"`
}

// Settings are the relay-wide settings (GET /v1/settings).
type Settings struct {
	// RequireTOTP: every user must have a TOTP second factor; one without
	// can log in only to enrol it.
	RequireTOTP bool `json:"require_totp"`
}

// RequireTOTPRequest is the body of PUT /v1/settings/require-totp.
type RequireTOTPRequest struct {
	Enabled bool `json:"enabled"`
}

// PasswordLoginRequest is the body of POST /v1/login/password. Code is a
// TOTP code or a recovery code; empty when the user has no second factor.
type PasswordLoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
	Code     string `json:"code,omitempty"`
}

// PasswordLogin answers a successful password login: who logged in (as
// POST /v1/login answers) and the session's API token, owned by the user
// and valid until ExpiresAt. TOTPEnrolRequired says the relay requires a
// second factor that the user has not enrolled: the token only serves to
// enrol it (patchbay account totp enrol).
type PasswordLogin struct {
	Whoami
	Token             string    `json:"token"`
	ExpiresAt         time.Time `json:"expires_at"`
	TOTPEnrolRequired bool      `json:"totp_enrol_required,omitempty"`
	RecoveryCodesLeft *int      `json:"recovery_codes_left,omitempty"` // set when a recovery code was used
}

// ErrCodeTOTPRequired is Error.Code when a login needs a TOTP code (or a
// recovery code) that was not sent.
const ErrCodeTOTPRequired = "totp_required"

// PasswordChangeRequest changes the caller's own password.
type PasswordChangeRequest struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// TOTPEnrolment is a new TOTP secret for the caller, pending until a code
// confirms it (POST /v1/account/totp/confirm).
type TOTPEnrolment struct {
	Secret string `json:"secret"` // base32
	URI    string `json:"uri"`    // otpauth://totp/...
}

// TOTPConfirmRequest confirms an enrolment with the first code.
type TOTPConfirmRequest struct {
	Code string `json:"code"`
}

// TOTPConfirmation carries the recovery codes, shown only this once.
type TOTPConfirmation struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// TOTPDisableRequest turns the caller's TOTP off; it needs their password.
type TOTPDisableRequest struct {
	Password string `json:"password"`
}
