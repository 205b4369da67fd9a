package main

import (
	"fmt"
	"io"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func (a *app) usersCmd() *cobra.Command {
	return group("users", "Create and manage the people who log in with a password",
		`Users are people who log in with a name and a password, and a TOTP code
from an authenticator app when they have enrolled one (patchbay login
--user NAME). Managing them needs the admin role. Each user has a role:

  viewer      list agents, read the audit log
  auditor     viewer + every recording of their sites
  technician  viewer + sessions and runs (and their own sessions' recordings)
  admin       technician + tokens, users, sites, revocation

A password login gives a session of 12 hours. API tokens a user creates
belong to that user: disabling or deleting the user stops them too, and
they never have a higher role than the user. Passwords are stored as
argon2id hashes; recovery codes as SHA-256 hashes.

Each user is granted sites (patchbay sites list): they see and reach only
the agents, sessions, jobs, catalog items and audit records of those sites;
what lies outside answers "not found". Admins reach every site whatever
their grants. Grants are given at creation (--site, default: the default
site) and replaced with patchbay users sites.

USER below is what "patchbay users list" prints: a name, an ID or a
unique prefix of an ID.`,
		`  patchbay users create dana --role technician --site acme/paris
  patchbay users sites dana --site acme/paris --site acme/lyon
  patchbay users set-role dana auditor
  patchbay users list
  patchbay users disable dana
  patchbay users reset dana --totp
  patchbay users require-totp on`,
		a.usersCreateCmd(), a.usersListCmd(), a.usersShowCmd(), a.usersSitesCmd(), a.usersSetRoleCmd(),
		a.usersStateCmd("disable", "Disable a user: their sessions and API tokens stop at once",
			`Disable a user (admin). From their next request on, the relay refuses
every session and API token of theirs with 401, and they cannot log in;
their live sessions end within a second (they are told why) and agents
refuse their SSH certificates. Their running jobs go on, since jobs belong
to the organisation, unless --cancel-jobs. "patchbay users enable" undoes
it (not the ended sessions). Audited as user.disable.`),
		a.usersStateCmd("enable", "Enable a disabled user",
			`Enable a disabled user (admin): they can log in again, and their API
tokens that are not expired or revoked work again. Audited as user.enable.`),
		a.usersDeleteCmd(), a.usersResetCmd(), a.usersRequireTOTPCmd())
}

func (a *app) usersCreateCmd() *cobra.Command {
	var role string
	var sites []string
	var stdin bool
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "create NAME --role viewer|auditor|technician|admin [--site SITE]... [--password-stdin]",
		Short: "Create a user",
		Long: `Create a user (admin) who logs in with patchbay login --user NAME or the
web console's password form.

NAME is 1-64 of a-z, 0-9 and . _ @ - (upper case is taken as lower case).
Without --password-stdin the relay generates a password (20 characters) and
it is printed on standard output, this once: hand it over safely; the user
changes it with patchbay account password. With --password-stdin the
password (at least 12 characters) is read from the first line of standard
input instead.

--site grants the sites the user reaches (default: the default site,
default/default); admins reach every site whatever their grants.
` + siteGrantHelp + `
Audited as user.create.`,
		Example: `  patchbay users create dana --role technician --site acme/paris
  patchbay users create sam --role viewer --site acme/paris,acme/lyon
  patchbay users create soc --role auditor --site all
  pass show patchbay/dana | patchbay users create dana --role viewer --password-stdin`,
		Args: oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if apiv1.RoleRank(role) == 0 {
				return usageErrorf(cmd, "--role %q: want viewer, auditor, technician or admin", role)
			}
			refs, err := siteRefs(cmd, sites)
			if err != nil {
				return err
			}
			req := apiv1.UserRequest{Name: args[0], Role: role, Sites: refs}
			if stdin {
				var err error
				if req.Password, err = a.stdinLine("password"); err != nil {
					return err
				}
			}
			return a.withClient(func(c *client.Client) error {
				u, err := c.CreateUser(cmd.Context(), req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, u)
				}
				if u.Password != "" {
					fmt.Fprintln(a.stdout, u.Password)
					fmt.Fprintf(a.stderr, "User %s (%s) created, ID %s. The password above is shown only this once.\n",
						clean(u.Name), clean(u.Role), clean(u.ID))
				} else {
					fmt.Fprintf(a.stdout, "User %s (%s) created, ID %s.\n", clean(u.Name), clean(u.Role), clean(u.ID))
				}
				if len(u.Sites) > 0 {
					fmt.Fprintf(a.stderr, "They reach %s.\n", reach(u.Sites))
				}
				cfg := c.Config()
				fmt.Fprintf(a.stderr, "They log in with:\n  patchbay login --server %s --ca-fingerprint %s --user %s\n",
					shellQuote(cfg.Server), cfg.CAFingerprint, shellQuote(clean(u.Name)))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "viewer, auditor (reads every recording), technician or admin (required)")
	f.BoolVar(&stdin, "password-stdin", false, "read the password from standard input instead of generating one")
	addSitesFlag(cmd, &sites, `a site the user reaches (repeatable, or "all"); default: the default site`)
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) usersListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List users",
		Long: `List users (admin). SITES are the sites the user is granted (ORG/SITE, or
"all"; admins reach every site whatever it says); STATUS is active or
disabled; TOTP is on, off or pending (enrolled, not confirmed yet); RECOVERY
is how many unused recovery codes the user has left. Whether the relay requires TOTP for everyone is
printed on standard error.`,
		Example: `  patchbay users list
  patchbay users list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				users, err := c.Users(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, users)
				}
				if err := writeUsersTable(a.stdout, users); err != nil {
					return err
				}
				if s, err := c.Settings(cmd.Context()); err == nil {
					fmt.Fprintf(a.stderr, "require-totp: %s\n", onOff(s.RequireTOTP))
				}
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func writeUsersTable(w io.Writer, users []apiv1.User) error {
	t := newTable(w, "NAME", "ID", "ROLE", "SITES", "STATUS", "TOTP", "RECOVERY", "SOURCE", "CREATED")
	for _, u := range users {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		rec := "-"
		if u.TOTP == "on" {
			rec = fmt.Sprint(u.RecoveryCodesLeft)
		}
		t.row(u.Name, u.ID, u.Role, fmtSites(u.Sites), status, u.TOTP, rec, u.Source, fmtTime(u.CreatedAt))
	}
	return t.flush()
}

func (a *app) usersShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "show USER [-o table|json]",
		Short:   "Show one user",
		Long:    `Show one user (admin), named by name, ID or unique ID prefix, with the sites they are granted.`,
		Example: `  patchbay users show dana`,
		Args:    oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				u, err := c.User(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, u)
				}
				return writeUsersTable(a.stdout, []apiv1.User{u})
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) usersSitesCmd() *cobra.Command {
	var sites []string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "sites USER --site SITE... [-o table|json]",
		Short: "Replace the sites a user is granted",
		Long: `Replace the sites a user is granted (admin): afterwards they reach exactly
the sites given, from their next request on, with their password sessions
and their API tokens alike. An admin reaches every site whatever the grants.
To take every site away, disable the user instead (patchbay users disable).
` + siteGrantHelp + `
Audited as user.sites.`,
		Example: `  patchbay users sites dana --site acme/paris
  patchbay users sites dana --site acme/paris --site acme/lyon
  patchbay users sites soc --site all`,
		Args: oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			refs, err := siteRefs(cmd, sites)
			if err != nil {
				return err
			}
			if len(refs) == 0 {
				return usageErrorf(cmd, "--site is required: the sites %s reaches from now on (repeatable, or all)", args[0])
			}
			return a.withClient(func(c *client.Client) error {
				u, err := c.SetUserSites(cmd.Context(), args[0], refs)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, u)
				}
				fmt.Fprintf(a.stdout, "User %s now reaches %s.\n", clean(u.Name), reach(u.Sites))
				if u.Role == apiv1.RoleAdmin {
					fmt.Fprintf(a.stderr, "%s is an admin and reaches every site whatever the grants.\n", clean(u.Name))
				}
				return nil
			})
		},
	}
	addSitesFlag(cmd, &sites, `a site the user reaches (repeatable, or "all"; required)`)
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) usersSetRoleCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "set-role USER viewer|auditor|technician|admin [-o table|json]",
		Short: "Change a user's role",
		Long: `Change a local user's role (admin). A lower role applies at once to the
user's live sessions and API tokens (a token never outranks its user); a
higher one from their next login. The role of a user who signs in with
single sign-on follows their groups at the identity provider
(--oidc-role-map) and cannot be set here. An admin cannot lower their own
role. Audited as user.role.`,
		Example: `  patchbay users set-role dana auditor`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf(cmd, "want USER and a role (viewer, auditor, technician or admin)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				u, err := c.SetUserRole(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, u)
				}
				fmt.Fprintf(a.stdout, "User %s is now %s.\n", clean(u.Name), u.Role)
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// usersStateCmd is users disable or users enable.
func (a *app) usersStateCmd(verb, short, long string) *cobra.Command {
	var cancelJobs bool
	cmd := &cobra.Command{
		Use:     verb + " USER",
		Short:   short,
		Long:    long,
		Example: "  patchbay users " + verb + " dana",
		Args:    oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				var u apiv1.User
				var err error
				if verb == "disable" {
					u, err = c.DisableUser(cmd.Context(), args[0], cancelJobs)
				} else {
					u, err = c.EnableUser(cmd.Context(), args[0])
				}
				if err != nil {
					return err
				}
				switch {
				case u.Disabled && cancelJobs:
					fmt.Fprintf(a.stdout, "Disabled user %s: the relay refuses their sessions and API tokens from now on, their live sessions ended, and %d running job(s) of theirs were cancelled.\n",
						clean(u.Name), u.JobsCancelled)
				case u.Disabled:
					fmt.Fprintf(a.stdout, "Disabled user %s: the relay refuses their sessions and API tokens from now on, and their live sessions ended. Their running jobs go on (--cancel-jobs stops them).\n", clean(u.Name))
				default:
					fmt.Fprintf(a.stdout, "Enabled user %s.\n", clean(u.Name))
				}
				return nil
			})
		},
	}
	if verb == "disable" {
		cmd.Flags().BoolVar(&cancelJobs, "cancel-jobs", false, "also cancel the user's running jobs (by default they go on: jobs belong to the organisation)")
	}
	return cmd
}

func (a *app) usersDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete USER",
		Short: "Delete a user and revoke their tokens",
		Long: `Delete a user (admin) and revoke every session and API token they own.
Their audit records stay. To keep the account for later, disable it instead.
Audited as user.delete.`,
		Example: `  patchbay users delete dana`,
		Args:    oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Deleted user %s and revoked their tokens.\n", clean(args[0]))
				return nil
			})
		},
	}
}

func (a *app) usersResetCmd() *cobra.Command {
	var totp, stdin bool
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "reset USER [--totp] [--password-stdin]",
		Short: "Set a new password for a user (and remove their TOTP)",
		Long: `Give a user a new password (admin) and end their password sessions
(their API tokens for automation keep working). The relay generates the
password and it is printed on standard output, this once; with
--password-stdin it is read from standard input instead.

--totp also removes their TOTP second factor and recovery codes, for a lost
phone: they enrol again with patchbay account totp enrol (and must, at
their next login, when the relay requires TOTP). Audited as user.reset.`,
		Example: `  patchbay users reset dana
  patchbay users reset dana --totp`,
		Args: oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apiv1.UserResetRequest{ClearTOTP: totp}
			if stdin {
				var err error
				if req.Password, err = a.stdinLine("password"); err != nil {
					return err
				}
			}
			return a.withClient(func(c *client.Client) error {
				u, err := c.ResetUser(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, u)
				}
				if u.Password != "" {
					fmt.Fprintln(a.stdout, u.Password)
					fmt.Fprintf(a.stderr, "New password for %s above, shown only this once.", clean(u.Name))
				} else {
					fmt.Fprintf(a.stdout, "New password set for %s.", clean(u.Name))
				}
				if totp {
					fmt.Fprint(a.stderr, " TOTP removed: they enrol again with patchbay account totp enrol.")
				}
				fmt.Fprintln(a.stderr)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&totp, "totp", false, "also remove the user's TOTP second factor and recovery codes")
	f.BoolVar(&stdin, "password-stdin", false, "read the new password from standard input instead of generating one")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) usersRequireTOTPCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "require-totp on|off",
		Short: "Require a TOTP second factor of every user",
		Long: `Require (on) or stop requiring (off) a TOTP second factor for every
user's password login (admin). While it is on, a user without TOTP can log
in only to enrol it (patchbay account totp enrol), and nobody can turn
their TOTP off. Bare API tokens (automation) are not affected. Audited as
settings.require-totp.`,
		Example: `  patchbay users require-totp on`,
		Args:    oneArg("on or off"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var on bool
			switch args[0] {
			case "on":
				on = true
			case "off":
			default:
				return usageErrorf(cmd, "require-totp %q: want on or off", args[0])
			}
			return a.withClient(func(c *client.Client) error {
				s, err := c.SetRequireTOTP(cmd.Context(), on)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "require-totp: %s\n", onOff(s.RequireTOTP))
				return nil
			})
		},
	}
}

// recoveryNote says how many recovery codes are left after one was used.
func recoveryNote(left int) string {
	if left == 0 {
		return "that was your last recovery code: enrol TOTP again to get new ones (patchbay account totp disable, then enrol; or ask an admin for patchbay users reset --totp)"
	}
	return fmt.Sprintf("recovery code used: %d left", left)
}
