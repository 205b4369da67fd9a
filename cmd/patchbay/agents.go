package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/spf13/cobra"
)

func (a *app) agentsCmd() *cobra.Command {
	return group("agents", "List, inspect, move and revoke agents; print installers",
		`Work with the agents enrolled on the relay that you reach: list them
(optionally by a target selector or a site), show one in detail, move one to
another site (admin), or revoke one; print a one-line installer that
installs, enrolls and starts a new agent (admin).`,
		`  patchbay agents list --target 'os=linux'
  patchbay agents list --site acme/paris
  patchbay agents show web-01
  patchbay agents move web-01 --site acme/lyon
  patchbay agents revoke 0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e
  patchbay agents installer --os linux --allowed-signers org_signers
  patchbay agents upgrade --version v1.5.0 --target all --canary 1% --wait`,
		a.agentsListCmd(), a.agentsShowCmd(), a.agentsMoveCmd(), a.agentsRevokeCmd(), a.agentsInstallerCmd(), a.agentsUpgradeCmd())
}

func (a *app) agentsListCmd() *cobra.Command {
	var target, site string
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [--target SELECTOR] [--site SITE] [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List agents, optionally those matching a target selector",
		Long: `List the enrolled agents of the sites you reach (viewer role), or only
those matching --target, or only those of one site (--site).

The table shows ID, HOSTNAME, SITE (ORG/SITE), OS, ARCH, VERSION, STATE (online, offline, or
revoked: a revoked agent is refused by the relay and never targeted by a job),
LAST SEEN (relative, "never" if the agent never connected) and TAGS (k=v
sorted by key). -o json prints the relay's agent objects unchanged (id,
hostname, os, arch, version, tags, online, last_seen in RFC 3339, revoked,
revoked_at, ...), for scripts.

Commands that take an agent (agents show, agents revoke, ssh, proxy,
sessions list --agent) accept its ID, a unique prefix of the ID, or its
hostname. ` + siteRefHelp + `

` + selector.Help,
		Example: `  patchbay agents list
  patchbay agents list --target 'os=linux,site=paris'
  patchbay agents list --site acme/paris
  patchbay agents list --target 'hostname=web-*' -o json | jq -r '.[].id'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				agents, err := c.AgentsAt(cmd.Context(), target, site)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, agents)
				}
				if len(agents) == 0 {
					switch {
					case target != "" && site != "":
						fmt.Fprintf(a.stderr, "No agents of site %s match %q.\n", clean(site), target)
					case target != "":
						fmt.Fprintf(a.stderr, "No agents match %q.\n", target)
					case site != "":
						fmt.Fprintf(a.stderr, "No agents in site %s: enroll some with a token from patchbay tokens create --site %s.\n", clean(site), shellQuote(clean(site)))
					default:
						fmt.Fprintln(a.stderr, "No agents enrolled yet: create a token with patchbay tokens create.")
					}
					return nil
				}
				return writeAgentsTable(a.stdout, agents, a.now())
			})
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "selector that agents must match (see above); empty: all")
	cmd.Flags().StringVar(&site, "site", "", "only the agents of this site (ORG/SITE, name, ID or ID prefix); empty: every site you reach")
	addOutputFlag(cmd, &output)
	return cmd
}

// writeAgentsTable writes the agents list table, relative times against now.
func writeAgentsTable(w io.Writer, agents []apiv1.Agent, now time.Time) error {
	t := newTable(w, "ID", "HOSTNAME", "SITE", "OS", "ARCH", "VERSION", "STATE", "LAST SEEN", "TAGS")
	for _, ag := range agents {
		t.row(ag.ID, ag.Hostname, ag.Site, ag.OS, ag.Arch, ag.Version, agentState(ag), relTime(now, ag.LastSeen), fmtTags(ag.Tags, ","))
	}
	return t.flush()
}

// agentState is "revoked", "online" or "offline".
func agentState(ag apiv1.Agent) string {
	switch {
	case ag.Revoked:
		return "revoked"
	case ag.Online:
		return "online"
	}
	return "offline"
}

func (a *app) agentsShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "show AGENT [-o table|json]",
		Short: "Show one agent in detail",
		Long: `Show everything the relay knows about one agent (viewer role): identity,
site, OS and version, online state and when it was last seen, tags (and which
of them the enrollment token fixed), logged-in users, IP addresses,
enrollment and revocation.

AGENT is the agent's ID, a unique prefix of it, or its hostname
(case-insensitive); one that names several agents is refused with their IDs
and hostnames, so pick one.`,
		Example: `  patchbay agents show web-01
  patchbay agents show 0190c6a8-7d2e -o json`,
		Args: oneArg("AGENT (ID, ID prefix or hostname)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				ag, err := c.Agent(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, ag)
				}
				return writeAgentDetail(a.stdout, ag, a.now())
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// writeAgentDetail writes one agent as "Key: value" lines.
func writeAgentDetail(w io.Writer, ag apiv1.Agent, now time.Time) error {
	t := newTable(w)
	t.row("ID:", ag.ID)
	t.row("Hostname:", ag.Hostname)
	t.row("Site:", ag.Site)
	t.row("OS:", ag.OS)
	t.row("OS version:", ag.OSVersion)
	t.row("Arch:", ag.Arch)
	t.row("Agent version:", ag.Version)
	t.row("Online:", yesNo(ag.Online))
	t.row("Last seen:", withRel(now, ag.LastSeen))
	t.row("First seen:", withRel(now, ag.FirstSeen))
	enrolled := ag.EnrolledAt
	t.row("Enrolled:", withRel(now, &enrolled))
	t.row("Tags:", fmtTags(ag.Tags, ", "))
	t.row("Scoped tags:", fmtTags(ag.ScopedTags, ", "))
	t.row("Users:", strings.Join(ag.Users, ", "))
	t.row("IPs:", strings.Join(ag.IPs, ", "))
	revoked := "no"
	if ag.Revoked {
		revoked = "yes"
		if ag.RevokedAt != nil {
			revoked += ", " + withRel(now, ag.RevokedAt)
		}
	}
	t.row("Revoked:", revoked)
	return t.flush()
}

func (a *app) agentsRevokeCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "revoke AGENT",
		Short: "Revoke an agent's certificate and disconnect it",
		Long: `Revoke an agent (admin role): the relay closes its connection at once and
refuses its certificate from then on. The revocation is audited. It cannot be
undone: to bring the machine back, enroll it again with a new token (it gets
a new ID).

AGENT is the agent's ID, a unique prefix of it, or a hostname that exactly
one agent has; prefer the full ID.`,
		Example: `  patchbay agents revoke 0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e
  patchbay agents revoke kiosk-3`,
		Args: oneArg("AGENT (ID, ID prefix or hostname)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				ag, err := c.RevokeAgent(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, ag)
				}
				fmt.Fprintf(a.stdout, "Revoked agent %s (%s): it was disconnected and the relay will refuse it from now on.\n",
					clean(ag.ID), clean(ag.Hostname))
				fmt.Fprintln(a.stderr, "To bring the machine back, enroll it again with a token from patchbay tokens create.")
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
