package main

import (
	"fmt"
	"github.com/patchbay/patchbay/client"
	"io"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

// maxTTLSyntax only bounds what the CLI accepts as a duration; the relay
// applies its own maximum and says so.
const maxTTLSyntax = 100 * 365 * 24 * time.Hour

func (a *app) tokensCmd() *cobra.Command {
	return group("tokens", "Create, list and revoke agent enrollment tokens",
		`Enrollment tokens let agents join the relay (admin role). A token names the
site its agents belong to (default/default unless --site says otherwise) and
can carry tags that every agent enrolled with it receives (and cannot
override), a number of uses and an expiry. Agents already enrolled keep
working when their token expires or is revoked.`,
		`  patchbay tokens create --site acme/paris --uses 50 --ttl 7d
  patchbay tokens create --tags site=paris,env=prod --uses 50 --ttl 7d
  patchbay tokens list
  patchbay tokens revoke et-0190c6a8`,
		a.tokensCreateCmd(), a.tokensListCmd(), a.tokensRevokeCmd())
}

func (a *app) tokensCreateCmd() *cobra.Command {
	var tagsFlag, ttl, site string
	var uses int
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "create [--site SITE] [--tags k=v,...] [--uses N] [--ttl DUR]",
		Short: "Create an enrollment token for agents",
		Long: `Create an enrollment token (admin role).

The token alone is printed on the first line of standard output, so it can be
captured with $(...); its ID, expiry, uses and a ready-to-run
"patchbay-agent enroll" command line go to standard error. The token is shown
only this once: the relay keeps only a hash of it.

--site is the site every agent enrolled with the token belongs to (only an
admin can move an agent later, with patchbay agents move); without it, the
default site default/default. ` + siteRefHelp + `

--tags are fixed on every agent enrolled with the token and win over tags the
agent asks for. --uses is how many agents may enroll with it (0: unlimited).
--ttl is how long it stays valid: a Go duration (90m, 24h) or days (7d).
With -o json the whole token object (secret included) is printed instead.`,
		Example: `  patchbay tokens create
  patchbay tokens create --site acme/paris --uses 25 --ttl 7d
  patchbay tokens create --tags site=paris,role=kiosk --uses 25 --ttl 7d
  TOKEN=$(patchbay tokens create --uses 1 2>/dev/null)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tags, err := parseTags(tagsFlag)
			if err != nil {
				return usageErrorf(cmd, "--tags: %v", err)
			}
			if uses < 0 {
				return usageErrorf(cmd, "--uses %d: want 0 (unlimited) or more", uses)
			}
			if _, err := apiv1.ParseTTL(ttl, maxTTLSyntax); err != nil {
				return usageErrorf(cmd, "--ttl: %v", err)
			}
			return a.withClient(func(c *client.Client) error {
				req := apiv1.EnrollTokenRequest{Tags: tags, Uses: &uses, TTL: ttl, Site: site}
				if len(tags) == 0 {
					req.Tags = nil
				}
				tok, err := c.CreateEnrollToken(cmd.Context(), req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, tok)
				}
				fmt.Fprintln(a.stdout, tok.Token)
				cfg := c.Config()
				now := a.now()
				fmt.Fprintf(a.stderr, "Enrollment token %s: %s, expires %s", clean(tok.ID), fmtUses(tok.UsesAllowed), withRel(now, &tok.ExpiresAt))
				if tok.Site != "" {
					fmt.Fprintf(a.stderr, ", site %s", clean(tok.Site))
				}
				if len(tok.Tags) > 0 {
					fmt.Fprintf(a.stderr, ", tags %s", clean(fmtTags(tok.Tags, ",")))
				}
				fmt.Fprintf(a.stderr, ".\nEnroll an agent with:\n  patchbay-agent enroll --server %s --token %s --ca-fingerprint %s\n",
					shellQuote(cfg.Server), shellQuote(clean(tok.Token)), cfg.CAFingerprint)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&site, "site", "", "the site agents enrolled with the token belong to (default: default/default)")
	f.StringVar(&tagsFlag, "tags", "", "tags for every agent enrolled with the token, k=v,k=v")
	f.IntVar(&uses, "uses", 1, "how many agents may enroll with the token; 0: unlimited")
	f.StringVar(&ttl, "ttl", "24h", "how long the token is valid: 90m, 24h, 7d, ...")
	addOutputFlag(cmd, &output)
	return cmd
}

// fmtUses describes how many enrollments a token allows.
func fmtUses(n int) string {
	switch n {
	case 0:
		return "unlimited uses"
	case 1:
		return "1 use"
	}
	return strconv.Itoa(n) + " uses"
}

func (a *app) tokensListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List enrollment tokens",
		Long: `List enrollment tokens (admin role), without their secrets.

SITE is the site agents enrolled with the token belong to. STATUS is active,
used up, expired or revoked. USES is uses so far / allowed.`,
		Example: `  patchbay tokens list
  patchbay tokens list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				toks, err := c.EnrollTokens(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, toks)
				}
				if len(toks) == 0 {
					fmt.Fprintln(a.stderr, "No enrollment tokens: create one with patchbay tokens create.")
					return nil
				}
				return writeEnrollTokensTable(a.stdout, toks, a.now())
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// enrollTokenStatus is active, used up, expired or revoked.
func enrollTokenStatus(t apiv1.EnrollToken, now time.Time) string {
	switch {
	case t.Revoked:
		return "revoked"
	case !now.Before(t.ExpiresAt):
		return "expired"
	case t.UsesAllowed > 0 && t.Uses >= t.UsesAllowed:
		return "used up"
	}
	return "active"
}

// writeEnrollTokensTable writes the tokens list table.
func writeEnrollTokensTable(w io.Writer, toks []apiv1.EnrollToken, now time.Time) error {
	t := newTable(w, "ID", "SITE", "STATUS", "USES", "EXPIRES", "CREATED", "CREATED BY", "TAGS")
	for _, tok := range toks {
		allowed := "unlimited"
		if tok.UsesAllowed > 0 {
			allowed = strconv.Itoa(tok.UsesAllowed)
		}
		t.row(tok.ID, tok.Site, enrollTokenStatus(tok, now), fmt.Sprintf("%d/%s", tok.Uses, allowed),
			withRel(now, &tok.ExpiresAt), fmtTime(tok.CreatedAt), tok.CreatedBy, fmtTags(tok.Tags, ","))
	}
	return t.flush()
}

func (a *app) tokensRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an enrollment token",
		Long: `Revoke an enrollment token (admin role): no agent can enroll with it any
more. Agents already enrolled with it are not affected (revoke those with
patchbay agents revoke).`,
		Example: `  patchbay tokens revoke et-0190c6a8`,
		Args:    oneArg("token ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.RevokeEnrollToken(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Revoked enrollment token %s: it can no longer enroll agents.\n", clean(args[0]))
				return nil
			})
		},
	}
}
