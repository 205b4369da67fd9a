package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

// siteRefHelp says how commands name a site.
const siteRefHelp = `SITE is what patchbay sites list prints: ORG/SITE (case-insensitive), a
site name that only one site has, or the site's ID or a unique prefix of it
(at least 4 characters).`

// siteGrantHelp says how commands that grant sites take them.
const siteGrantHelp = `--site is repeatable (or takes a comma-separated list); "all" grants every
site, present and future. ` + siteRefHelp

func (a *app) orgsCmd() *cobra.Command {
	return group("orgs", "Create and list organisations (the customers or companies sites belong to)",
		`Organisations group sites: a managed service provider's customers, a
company's subsidiaries. Every site belongs to one organisation and is named
ORG/SITE. Managing them needs the admin role. The relay starts with the
organisation "default" and its site default/default, where agents land
unless their enrollment token names another site.`,
		`  patchbay orgs create acme
  patchbay orgs list`,
		a.orgsCreateCmd(), a.orgsListCmd())
}

func (a *app) orgsCreateCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "create NAME [-o table|json]",
		Short: "Create an organisation",
		Long: `Create an organisation (admin). NAME is 1-64 of letters, digits, space and
_.- (no "/", not "all"), unique. Then give it sites with patchbay sites
create. Audited as organisation.create.`,
		Example: `  patchbay orgs create acme
  patchbay orgs create "Dental Clinic Dupont"`,
		Args: oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				o, err := c.CreateOrganisation(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, o)
				}
				fmt.Fprintf(a.stdout, "Created organisation %s, ID %s.\n", clean(o.Name), clean(o.ID))
				fmt.Fprintf(a.stderr, "Give it a site with: patchbay sites create %s NAME\n", shellQuote(clean(o.Name)))
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) orgsListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List organisations",
		Long: `List the organisations (admin) with how many sites each has. Their sites
are listed by patchbay sites list.`,
		Example: `  patchbay orgs list
  patchbay orgs list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				orgs, err := c.Organisations(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, orgs)
				}
				t := newTable(a.stdout, "NAME", "ID", "SITES", "CREATED")
				for _, o := range orgs {
					t.row(o.Name, o.ID, strconv.Itoa(o.Sites), fmtTime(o.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) sitesCmd() *cobra.Command {
	return group("sites", "Create, list and delete sites (where agents are)",
		`A site is where agents are: a customer's office, a branch, a shop. Every
agent belongs to exactly one site, set by the enrollment token it enrolled
with (patchbay tokens create --site) and changed only by an admin (patchbay
agents move). People and API tokens are granted sites (patchbay users create
--site, patchbay users sites, patchbay api-tokens create --site); admins
reach every site. Everything else is filtered by the caller's sites on the
relay: agents, selectors, sessions, recordings, jobs, the catalog and the
audit log. What lies outside answers "not found", like what does not exist.

Sites are named ORG/SITE. The relay starts with default/default, the site of
every agent enrolled with a token that names none.`,
		`  patchbay sites create acme paris
  patchbay sites list
  patchbay tokens create --site acme/paris --uses 20
  patchbay sites delete acme/paris`,
		a.sitesCreateCmd(), a.sitesListCmd(), a.sitesDeleteCmd())
}

func (a *app) sitesCreateCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "create ORG NAME | ORG/NAME [-o table|json]",
		Short: "Create a site of an organisation",
		Long: `Create a site of an existing organisation (admin). ORG is the
organisation's name or ID (patchbay orgs list); NAME is 1-64 of letters,
digits, space and _.- (no "/", not "all"), unique in the organisation.
Then enroll its agents with a token for it (patchbay tokens create --site
ORG/NAME) and grant it to the people who support it (patchbay users sites).
Audited as site.create.`,
		Example: `  patchbay sites create acme paris
  patchbay sites create acme/lyon
  patchbay sites create "Dental Clinic Dupont" "Main office"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var org, name string
			switch len(args) {
			case 1:
				var ok bool
				if org, name, ok = strings.Cut(args[0], "/"); !ok || org == "" || name == "" {
					return usageErrorf(cmd, "site %q: want ORG NAME or ORG/NAME", args[0])
				}
			case 2:
				org, name = args[0], args[1]
			default:
				return usageErrorf(cmd, "%s needs ORG NAME or ORG/NAME (got %d arguments)", cmd.CommandPath(), len(args))
			}
			return a.withClient(func(c *client.Client) error {
				s, err := c.CreateSite(cmd.Context(), org, name)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, s)
				}
				fmt.Fprintf(a.stdout, "Created site %s, ID %s.\n", clean(s.FullName), clean(s.ID))
				full := shellQuote(clean(s.FullName))
				fmt.Fprintf(a.stderr, "Enroll its agents with a token for it:\n  patchbay tokens create --site %s\n"+
					"Grant it to the people who support it (this replaces their grants: name all of their sites):\n  patchbay users sites USER --site %s\n", full, full)
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) sitesListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List the sites you reach",
		Long: `List the sites you reach (viewer role): every site for an admin, the sites
you are granted otherwise. ID is the shortest prefix of the site's ID that
tells the listed sites apart (-o json has it whole); SITE is ORG/SITE;
AGENTS is how many agents belong to it (revoked ones not counted).

Commands that take a site (--site, sites delete) accept ORG/SITE, a site
name only one site has, or the ID or a unique prefix of it.`,
		Example: `  patchbay sites list
  patchbay sites list -o json | jq -r '.[].full_name'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				sites, err := c.Sites(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, sites)
				}
				if len(sites) == 0 {
					fmt.Fprintln(a.stderr, "You reach no site: ask an admin to grant you one (patchbay users sites).")
					return nil
				}
				return writeSitesTable(a.stdout, sites)
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// writeSitesTable writes the sites list table.
func writeSitesTable(w io.Writer, sites []apiv1.Site) error {
	ids := make([]string, len(sites))
	for i, s := range sites {
		ids[i] = s.ID
	}
	n := uniquePrefixLen(ids, 8)
	t := newTable(w, "ID", "SITE", "AGENTS")
	for _, s := range sites {
		t.row(s.ID[:min(n, len(s.ID))], s.FullName, strconv.Itoa(s.Agents))
	}
	return t.flush()
}

// uniquePrefixLen is the shortest length, at least least, at which the
// prefixes of ids are all different and do not end in "-".
func uniquePrefixLen(ids []string, least int) int {
	longest := 0
	for _, id := range ids {
		longest = max(longest, len(id))
	}
	for n := least; n < longest; n++ {
		seen := make(map[string]bool, len(ids))
		unique := true
		for _, id := range ids {
			p := id[:min(n, len(id))]
			if seen[p] || strings.HasSuffix(p, "-") {
				unique = false
				break
			}
			seen[p] = true
		}
		if unique {
			return n
		}
	}
	return longest
}

func (a *app) sitesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete SITE",
		Short: "Delete a site that no agent or enrollment token belongs to",
		Long: `Delete a site (admin). The relay refuses while agents or enrollment tokens
belong to it (move the agents with patchbay agents move), and never deletes
the default site. Grants of the site end with it. Audited as site.delete.

` + siteRefHelp,
		Example: `  patchbay sites delete acme/paris`,
		Args:    oneArg("SITE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteSite(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Deleted site %s.\n", clean(args[0]))
				return nil
			})
		},
	}
}

func (a *app) agentsMoveCmd() *cobra.Command {
	var site string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "move AGENT --site SITE [-o table|json]",
		Short: "Move an agent to another site",
		Long: `Move an agent to another site (admin only: an agent's site decides who
reaches it). From then on it is seen, targeted and reached only by those who
reach the new site. Its past sessions, recordings and jobs stay with the site
they were in. Audited as agent.move, in both sites.

AGENT is the agent's ID, a unique prefix of it, or a hostname that exactly
one agent has. ` + siteRefHelp,
		Example: `  patchbay agents move web-01 --site acme/paris
  patchbay agents move 0190c6a8-7d2e --site lyon`,
		Args: oneArg("AGENT (ID, ID prefix or hostname)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(site) == "" {
				return usageErrorf(cmd, "--site is required: the site to move the agent to (patchbay sites list shows them)")
			}
			return a.withClient(func(c *client.Client) error {
				ag, err := c.MoveAgent(cmd.Context(), args[0], site)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, ag)
				}
				fmt.Fprintf(a.stdout, "Agent %s (%s) is in site %s.\n", clean(ag.ID), clean(ag.Hostname), clean(ag.Site))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&site, "site", "", "the site to move the agent to (required)")
	addOutputFlag(cmd, &output)
	return cmd
}

// addSitesFlag registers the repeatable --site of commands that grant or
// publish to sites.
func addSitesFlag(cmd *cobra.Command, dst *[]string, usage string) {
	cmd.Flags().StringArrayVar(dst, "site", nil, usage)
}

// siteRefs splits and checks the values of a repeatable --site: commas
// separate sites too (site names cannot hold one); "all" stands alone.
func siteRefs(cmd *cobra.Command, vals []string) ([]string, error) {
	var refs []string
	for _, v := range vals {
		for _, ref := range strings.Split(v, ",") {
			ref = strings.TrimSpace(ref)
			if ref == "" {
				return nil, usageErrorf(cmd, "--site %q: empty site name", v)
			}
			refs = append(refs, ref)
		}
	}
	for _, ref := range refs {
		if strings.EqualFold(ref, apiv1.AllSitesName) && len(refs) > 1 {
			return nil, usageErrorf(cmd, "--site all means every site: give it alone")
		}
	}
	return refs, nil
}

// reach says which sites a grant list reaches: "every site", "site
// acme/paris" or "sites acme/lyon, acme/paris".
func reach(sites []string) string {
	switch {
	case len(sites) == 0:
		return "no site"
	case len(sites) == 1 && sites[0] == apiv1.AllSitesName:
		return "every site"
	case len(sites) == 1:
		return "site " + clean(sites[0])
	}
	return "sites " + clean(strings.Join(sites, ", "))
}

// fmtSites joins site names for a table cell.
func fmtSites(sites []string) string {
	return strings.Join(sites, ",")
}
