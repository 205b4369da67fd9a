package main

import (
	"fmt"
	"github.com/patchbay/patchbay/client"
	"io"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func (a *app) apiTokensCmd() *cobra.Command {
	return group("api-tokens", "Create, list and revoke API tokens for people and scripts",
		`API tokens authenticate people and scripts to the relay (admin role to
manage them). Each token has a role:

  viewer      list agents, read the audit log
  technician  viewer + sessions and runs
  admin       technician + tokens, API tokens, revocation

Give each person and each script its own token, so the audit log says who
did what and one can be revoked without disturbing the others. A token you
create while logged in as a user belongs to you and reaches your sites; a
token created with a token of no user (automation) reaches the sites given
with --site.`,
		`  patchbay api-tokens create --role technician --name "Dana Scully"
  patchbay api-tokens create --role viewer --name acme-exporter --site acme/paris --site acme/lyon
  patchbay api-tokens list
  patchbay api-tokens revoke at-0190c6a8`,
		a.apiTokensCreateCmd(), a.apiTokensListCmd(), a.apiTokensRevokeCmd())
}

func (a *app) apiTokensCreateCmd() *cobra.Command {
	var role, name, ttl string
	var sites []string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "create --role viewer|auditor|technician|admin --name NAME [--site SITE]... [--ttl DUR]",
		Short: "Create an API token",
		Long: `Create an API token (admin role) for a person or a script.

The token alone is printed on the first line of standard output; its ID,
role, expiry and a "patchbay login" command line go to standard error. The
token is shown only this once. Without --ttl it does not expire (revoke it
when it is no longer needed). With -o json the whole token object (secret
included) is printed instead.

--site gives the sites the token reaches (default: default/default; an admin
token reaches every site whatever it is given). It is only for tokens of no
user, created while logged in with such a token: a token you create as a
user reaches your own sites, which an admin sets with patchbay users sites.
` + siteGrantHelp,
		Example: `  patchbay api-tokens create --role technician --name "Dana Scully" --ttl 90d
  patchbay api-tokens create --role viewer --name grafana-exporter
  patchbay api-tokens create --role technician --name acme-runner --site acme/paris
  patchbay api-tokens create --role viewer --name soc-export --site all`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apiv1.RoleRank(role) == 0 {
				return usageErrorf(cmd, "--role %q: want viewer, auditor, technician or admin", role)
			}
			if name == "" {
				return usageErrorf(cmd, "--name is required (who or what the token is for)")
			}
			if ttl != "" {
				if _, err := apiv1.ParseTTL(ttl, maxTTLSyntax); err != nil {
					return usageErrorf(cmd, "--ttl: %v", err)
				}
			}
			refs, err := siteRefs(cmd, sites)
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				tok, err := c.CreateAPIToken(cmd.Context(), apiv1.APITokenRequest{Role: role, Name: name, TTL: ttl, Sites: refs})
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, tok)
				}
				fmt.Fprintln(a.stdout, tok.Token)
				cfg := c.Config()
				fmt.Fprintf(a.stderr, "API token %s for %q (%s), expires %s.", clean(tok.ID), clean(tok.Name), clean(tok.Role), withRelOrNever(a.now(), tok.ExpiresAt))
				if len(tok.Sites) > 0 {
					fmt.Fprintf(a.stderr, " It reaches %s.", reach(tok.Sites))
				}
				fmt.Fprintf(a.stderr, "\nLog in with:\n  patchbay login --server %s --ca-fingerprint %s --token %s\n",
					shellQuote(cfg.Server), cfg.CAFingerprint, shellQuote(clean(tok.Token)))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "viewer, auditor (reads every recording), technician or admin (required)")
	f.StringVar(&name, "name", "", "who or what the token is for, shown in the audit log (required)")
	f.StringVar(&ttl, "ttl", "", "how long the token is valid: 90m, 24h, 90d, ...; empty: no expiry")
	addSitesFlag(cmd, &sites, `a site the token reaches (repeatable, or "all"); only for tokens of no user`)
	addOutputFlag(cmd, &output)
	return cmd
}

// withRelOrNever is withRel for an expiry where nil means it never expires.
func withRelOrNever(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	return withRel(now, t)
}

func (a *app) apiTokensListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List API tokens",
		Long: `List API tokens (admin role), without their secrets.

STATUS is active, expired or revoked.`,
		Example: `  patchbay api-tokens list
  patchbay api-tokens list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				toks, err := c.APITokens(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, toks)
				}
				return writeAPITokensTable(a.stdout, toks, a.now())
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// writeAPITokensTable writes the API tokens list table.
func writeAPITokensTable(w io.Writer, toks []apiv1.APIToken, now time.Time) error {
	t := newTable(w, "ID", "NAME", "ROLE", "STATUS", "CREATED", "EXPIRES")
	for _, tok := range toks {
		status := "active"
		switch {
		case tok.Revoked:
			status = "revoked"
		case tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt):
			status = "expired"
		}
		t.row(tok.ID, tok.Name, tok.Role, status, fmtTime(tok.CreatedAt), withRelOrNever(now, tok.ExpiresAt))
	}
	return t.flush()
}

func (a *app) apiTokensRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke an API token and end the access it gives",
		Long: `Revoke an API token (admin role), named by its ID, a unique prefix of the ID or
its name (when one active token has it). Access ends everywhere within a
second: the relay refuses the token from then on; the interactive sessions
it opened end, the technician being told why; and the SSH certificates it
was issued are refused by every agent, also on connections already open
(agents that are offline learn it when they reconnect). Jobs it started go
on: they belong to the organisation (cancel them with patchbay jobs cancel).
The revocation is audited. Revoking your own token logs you out.`,
		Example: `  patchbay api-tokens revoke at-0190c6a8
  patchbay api-tokens revoke alice`,
		Args: oneArg("token ID or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.RevokeAPIToken(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Revoked API token %s: the relay refuses it from now on; its sessions are ended and its SSH certificates refused by every agent.\n", clean(args[0]))
				return nil
			})
		},
	}
}
