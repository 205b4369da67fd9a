package main

import (
	"fmt"

	"github.com/patchbay/patchbay/client"
	"github.com/spf13/cobra"
)

func (a *app) accountCmd() *cobra.Command {
	totp := group("totp", "Enrol or turn off your TOTP second factor",
		`A TOTP second factor (RFC 6238: Google Authenticator, Aegis, 1Password,
FreeOTP, ...) makes a password login also ask for the 6-digit code the app
shows. Each code is accepted once. Enrolling also gives 10 recovery codes
for when the phone is lost: each logs in once in place of a code.`,
		`  patchbay account totp enrol
  patchbay account totp disable`,
		a.accountTOTPEnrolCmd(), a.accountTOTPDisableCmd())
	return group("account", "Your own user account: password and TOTP",
		`Change the password and the TOTP second factor of the user you are
logged in as (patchbay login --user NAME). A bare API token belongs to no
user and cannot use these commands.`,
		`  patchbay account password
  patchbay account totp enrol`,
		a.accountPasswordCmd(), totp)
}

func (a *app) accountPasswordCmd() *cobra.Command {
	var stdin bool
	cmd := &cobra.Command{
		Use:   "password [--password-stdin]",
		Short: "Change your password",
		Long: `Change your own password: the current one is asked first, then the new
one twice, without echo. With --password-stdin the current password is the
first line of standard input and the new one the second.

The new password needs at least 12 characters. Your other password sessions
(other terminals, browsers) end; this one stays. Audited as user.password.`,
		Example: `  patchbay account password
  printf '%s\n%s\n' "$OLD" "$NEW" | patchbay account password --password-stdin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			old, err := a.secret(stdin, "Current password")
			if err != nil {
				return err
			}
			pw, err := a.newPassword(stdin)
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				if err := c.ChangePassword(cmd.Context(), old, pw); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, "Password changed; your other sessions were ended.")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the current and the new password from standard input, one per line")
	return cmd
}

func (a *app) accountTOTPEnrolCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "enrol",
		Aliases: []string{"enroll"},
		Short:   "Add a TOTP second factor to your account",
		Long: `Enrol a TOTP second factor. The relay makes a secret; its base32 text and
its otpauth:// URI are printed on standard output: type the secret into
your authenticator app, or turn the URI into a QR code (for instance
qrencode -t ansiutf8 'otpauth://...') and scan it. Then enter the code the
app shows (prompted without echo; read from the next line of standard
input when that is not a terminal): it confirms the enrolment.

Then 10 recovery codes are printed, this once. Keep them somewhere safe
(a password manager, paper): each one logs you in once in place of a code
if the phone is lost. From now on, patchbay login --user and the web
console ask for a code. Audited as user.totp.enrol and user.totp.confirm.`,
		Example: `  patchbay account totp enrol`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				e, err := c.EnrolTOTP(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Secret: %s\nURI:    %s\n", clean(e.Secret), clean(e.URI))
				fmt.Fprintln(a.stderr, "Add the secret to your authenticator app (or scan the URI as a QR code), then enter the code it shows.")
				code, err := a.code(false, "Code")
				if err != nil {
					return err
				}
				conf, err := c.ConfirmTOTP(ctx, code)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, "TOTP is on. Recovery codes (each works once in place of a code; they are not shown again):")
				for _, rc := range conf.RecoveryCodes {
					fmt.Fprintf(a.stdout, "  %s\n", clean(rc))
				}
				return nil
			})
		},
	}
}

func (a *app) accountTOTPDisableCmd() *cobra.Command {
	var stdin bool
	cmd := &cobra.Command{
		Use:   "disable [--password-stdin]",
		Short: "Turn off your TOTP second factor",
		Long: `Turn off your TOTP second factor and delete your recovery codes. Your
password is asked for (without echo; with --password-stdin from standard
input). Refused while the relay requires TOTP for everyone (an admin can
reset it for you: patchbay users reset NAME --totp). Audited as
user.totp.disable.`,
		Example: `  patchbay account totp disable`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := a.secret(stdin, "Password")
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				if err := c.DisableTOTP(cmd.Context(), pw); err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, "TOTP is off: password logins no longer ask for a code.")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from standard input")
	return cmd
}
