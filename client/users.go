package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// CreateUser creates a user (admin). With an empty password the relay
// generates one and returns it in the answer's Password, once.
func (c *Client) CreateUser(ctx context.Context, req apiv1.UserRequest) (apiv1.User, error) {
	var u apiv1.User
	if err := c.do(ctx, http.MethodPost, "/v1/users", nil, req, &u); err != nil {
		return u, fmt.Errorf("create user %s: %w", req.Name, err)
	}
	return u, nil
}

// Users lists the users (admin).
func (c *Client) Users(ctx context.Context) ([]apiv1.User, error) {
	users := []apiv1.User{}
	if err := c.do(ctx, http.MethodGet, "/v1/users", nil, nil, &users); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	if users == nil {
		users = []apiv1.User{}
	}
	return users, nil
}

// userCall is a call on one user named by ref (name, ID or unique ID prefix).
func (c *Client) userCall(ctx context.Context, what, method, ref, suffix string, in, out any) error {
	seg, err := pathSeg("user", ref)
	if err == nil {
		err = c.do(ctx, method, "/v1/users/"+seg+suffix, nil, in, out)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, ref, err)
	}
	return nil
}

// User shows one user (admin).
func (c *Client) User(ctx context.Context, ref string) (apiv1.User, error) {
	var u apiv1.User
	return u, c.userCall(ctx, "show user", http.MethodGet, ref, "", nil, &u)
}

// DisableUser disables a user (admin): their tokens stop working at once
// and what they opened ends; with cancelJobs their running jobs are
// cancelled too (u.JobsCancelled says how many).
func (c *Client) DisableUser(ctx context.Context, ref string, cancelJobs bool) (apiv1.User, error) {
	var u apiv1.User
	return u, c.userCall(ctx, "disable user", http.MethodPost, ref, "/disable", apiv1.UserDisableRequest{CancelJobs: cancelJobs}, &u)
}

// EnableUser enables a disabled user (admin).
func (c *Client) EnableUser(ctx context.Context, ref string) (apiv1.User, error) {
	var u apiv1.User
	return u, c.userCall(ctx, "enable user", http.MethodPost, ref, "/enable", nil, &u)
}

// DeleteUser deletes a user and revokes their tokens (admin).
func (c *Client) DeleteUser(ctx context.Context, ref string) error {
	return c.userCall(ctx, "delete user", http.MethodDelete, ref, "", nil, nil)
}

// ResetUser sets a new password (generated when req.Password is empty) and
// optionally clears the user's TOTP (admin).
func (c *Client) ResetUser(ctx context.Context, ref string, req apiv1.UserResetRequest) (apiv1.User, error) {
	var u apiv1.User
	return u, c.userCall(ctx, "reset user", http.MethodPost, ref, "/reset", req, &u)
}

// Settings returns the relay-wide settings.
func (c *Client) Settings(ctx context.Context) (apiv1.Settings, error) {
	var s apiv1.Settings
	if err := c.do(ctx, http.MethodGet, "/v1/settings", nil, nil, &s); err != nil {
		return s, fmt.Errorf("read settings: %w", err)
	}
	return s, nil
}

// SetRequireTOTP turns require-totp on or off (admin).
func (c *Client) SetRequireTOTP(ctx context.Context, on bool) (apiv1.Settings, error) {
	var s apiv1.Settings
	if err := c.do(ctx, http.MethodPut, "/v1/settings/require-totp", nil, apiv1.RequireTOTPRequest{Enabled: on}, &s); err != nil {
		return s, fmt.Errorf("set require-totp: %w", err)
	}
	return s, nil
}

// ChangePassword changes the logged-in user's password.
func (c *Client) ChangePassword(ctx context.Context, oldPW, newPW string) error {
	req := apiv1.PasswordChangeRequest{OldPassword: oldPW, NewPassword: newPW}
	if err := c.do(ctx, http.MethodPost, "/v1/account/password", nil, req, nil); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return nil
}

// EnrolTOTP starts a TOTP enrolment for the logged-in user.
func (c *Client) EnrolTOTP(ctx context.Context) (apiv1.TOTPEnrolment, error) {
	var e apiv1.TOTPEnrolment
	if err := c.do(ctx, http.MethodPost, "/v1/account/totp", nil, nil, &e); err != nil {
		return e, fmt.Errorf("enrol TOTP: %w", err)
	}
	return e, nil
}

// ConfirmTOTP confirms the enrolment with a first code; the answer holds
// the recovery codes, shown once.
func (c *Client) ConfirmTOTP(ctx context.Context, code string) (apiv1.TOTPConfirmation, error) {
	var out apiv1.TOTPConfirmation
	if err := c.do(ctx, http.MethodPost, "/v1/account/totp/confirm", nil, apiv1.TOTPConfirmRequest{Code: code}, &out); err != nil {
		return out, fmt.Errorf("confirm TOTP: %w", err)
	}
	return out, nil
}

// DisableTOTP turns the logged-in user's TOTP off (their password is needed).
func (c *Client) DisableTOTP(ctx context.Context, password string) error {
	if err := c.do(ctx, http.MethodPost, "/v1/account/totp/disable", nil, apiv1.TOTPDisableRequest{Password: password}, nil); err != nil {
		return fmt.Errorf("turn off TOTP: %w", err)
	}
	return nil
}
