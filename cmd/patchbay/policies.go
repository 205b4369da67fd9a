package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func (a *app) policiesCmd() *cobra.Command {
	return group("policies", "Checks that agents run on their own, and the fixes they run when one fails",
		`A policy attaches a check to the agents a selector (--target) or a site
(--site) names. Agents receive their policies when they connect and when
they change, keep them in their data directory, and run each check every
--interval, also while the relay is unreachable (results are queued and
sent when the link is back). The relay stores a check's state only when it
changes.

Checks: a plugin's Check (--check PLUGIN), or a built-in:
  builtin:disk-space      free space on the file system of path (default /):
                          fails under min_free_pct (or --threshold PCT) or min_free_bytes
  builtin:dir-size        fails while the files under path exceed max_bytes (or --threshold)
  builtin:service-down    fails while the systemd unit is not active (Linux)
  builtin:pending-reboot  fails while /var/run/reboot-required exists (Debian, Ubuntu)
  builtin:stuck-print-queue
                          fails while a CUPS queue (queue, default every queue) holds a
                          job older than max_age (default 30m) or is stopped with jobs
                          waiting, or the scheduler does not answer (cups_server: another
                          scheduler); reads lpstat; not on Windows
  builtin:cert-expiry     fails while a certificate in path (a PEM/DER file, or the
                          *.pem, *.crt, *.cer, *.der files of a directory) or presented
                          by host (HOST:PORT, TLS, timeout default 10s) expires within
                          days (or --threshold; default 30) or has expired; a file that
                          does not parse is an error naming it

Self-heal: with --fix (a plugin, or script:NAME for a catalog script) a
failing check makes the agent ask the relay for the fix; the relay creates
a job owned by the policy ("policy NAME (self-heal)") for that one agent,
which runs like any job (signed, verified, journaled, audited as
job.create), and the agent checks again once it ran. Limits: at most
--max-fixes-per-day self-heals per agent and policy (checked by the agent
and the relay), --max-fixes-per-site-hour per site (the relay refuses
more). A fix that did not help is not asked for again until the check has
passed once.`,
		`  patchbay policies create disk --target os=linux --check builtin:disk-space \
      --param path=/ --threshold 10 --interval 5m \
      --fix cacheclear --fix-param scopes=temp,package
  patchbay policies list
  patchbay policies show disk -o json
  patchbay policies delete disk`,
		a.policiesCreateCmd(), a.policiesListCmd(), a.policiesShowCmd(), a.policiesDeleteCmd())
}

func (a *app) policiesCreateCmd() *cobra.Command {
	var (
		output            outputFlag
		req               apiv1.PolicyCreate
		params, fixParams []string
		threshold         string
	)
	cmd := &cobra.Command{
		Use:   "create NAME (--target SELECTOR | --site SITE) --check CHECK --interval D [flags]",
		Short: "Create a policy (admin)",
		Long: `Create a policy (admin). See patchbay policies --help for checks and
self-heal. --threshold sets the check's threshold parameter (the percentage
of free space for builtin:disk-space, bytes for builtin:dir-size, days for
builtin:cert-expiry). Audited
as policy.create. ` + siteRefHelp,
		Example: `  patchbay policies create tmp-cache --target tag:role=kiosk --check builtin:dir-size \
      --param path=/var/tmp/app --threshold 1000000000 --interval 10m \
      --fix cacheclear --fix-param scopes=temp --max-fixes-per-day 3
  patchbay policies create printing --site acme/paris --check builtin:stuck-print-queue \
      --param max_age=20m --interval 5m --fix printerreset --fix-param older_than=20m
  patchbay policies create certs --target os=linux --check builtin:cert-expiry \
      --param path=/etc/ssl/local --param host=intranet.acme.example:443 --threshold 21 --interval 12h`,
		Args: oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			var err error
			if req.Params, err = parseParams(params); err != nil {
				return fmt.Errorf("--param %w", err)
			}
			if threshold != "" {
				req.Params["threshold"] = threshold
			}
			if req.FixParams, err = parseParams(fixParams); err != nil {
				return fmt.Errorf("--fix-param %w", err)
			}
			return a.withClient(func(c *client.Client) error {
				p, err := c.CreatePolicy(cmd.Context(), req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, p)
				}
				fmt.Fprintf(a.stdout, "Created policy %s, ID %s.\n", clean(p.Name), clean(p.ID))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Target, "target", "", "agents the policy applies to (selector)")
	f.StringVar(&req.Site, "site", "", "site the policy applies to (with --target: the agents of that site it selects)")
	f.StringVar(&req.Check, "check", "", "builtin:disk-space, builtin:dir-size, builtin:service-down, builtin:pending-reboot, builtin:stuck-print-queue, builtin:cert-expiry or a plugin name")
	f.StringArrayVar(&params, "param", nil, "check parameter k=v; repeatable")
	f.StringVar(&threshold, "threshold", "", "the check's threshold (its threshold parameter)")
	f.StringVar(&req.Interval, "interval", "5m", "how often agents run the check (10s..168h)")
	f.StringVar(&req.Fix, "fix", "", "plugin or script:NAME to run when the check fails")
	f.StringArrayVar(&fixParams, "fix-param", nil, "fix parameter k=v; repeatable")
	f.IntVar(&req.MaxFixesDay, "max-fixes-per-day", 0, "self-heals per agent and day (default 3)")
	f.IntVar(&req.MaxFixesSiteHour, "max-fixes-per-site-hour", 0, "self-heals per site and hour (default 10)")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) policiesListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List policies",
		Long: `List the policies with their target, check, interval, fix and self-heal
limits. Viewers see the policies of their sites and the relay-wide ones.`,
		Example: `  patchbay policies list
  patchbay policies list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				ps, err := c.Policies(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, ps)
				}
				t := newTable(a.stdout, "NAME", "TARGET", "SITE", "CHECK", "INTERVAL", "FIX", "LIMITS")
				for _, p := range ps {
					t.row(p.Name, p.Target, p.Site, p.Check, p.Interval, p.Fix,
						strconv.Itoa(p.MaxFixesDay)+"/agent/day "+strconv.Itoa(p.MaxFixesSiteHour)+"/site/hour")
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) policiesShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "show NAME [-o table|json]",
		Short: "Show a policy and its check state on each agent",
		Long: `Show a policy and the last known state of its check on each agent that
reported it (passed, failed or error), since when, and what the check found.`,
		Example: `  patchbay policies show disk
  patchbay policies show disk -o json`,
		Args: oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				p, err := c.Policy(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, p)
				}
				fmt.Fprintf(a.stdout, "Policy %s (%s)\nTarget:   %s\nSite:     %s\nCheck:    %s %s every %s\n", clean(p.Name), clean(p.ID),
					clean(p.Target), clean(p.Site), clean(p.Check), clean(kvList(p.Params)), clean(p.Interval))
				if p.Fix != "" {
					fmt.Fprintf(a.stdout, "Fix:      %s %s (at most %d per agent a day, %d per site an hour)\n", clean(p.Fix), clean(kvList(p.FixParams)), p.MaxFixesDay, p.MaxFixesSiteHour)
				}
				fmt.Fprintln(a.stdout)
				t := newTable(a.stdout, "AGENT", "STATE", "SINCE", "SUMMARY")
				for _, s := range p.States {
					t.row(s.AgentID, s.State, s.ChangedAt.Local().Format(time.DateTime), s.Summary)
				}
				if err := t.flush(); err != nil || len(p.Events) == 0 {
					return err
				}
				fmt.Fprintln(a.stdout, "\nLatest changes:")
				t = newTable(a.stdout, "AT", "AGENT", "STATE", "SELF-HEAL", "SUMMARY")
				for _, e := range p.Events {
					t.row(e.At.Local().Format(time.DateTime), e.AgentID, e.State, e.Fix, e.Summary)
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func kvList(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (a *app) policiesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy (admin); agents stop its check",
		Long: `Delete a policy (admin). Connected agents get their new set at once and
stop its check; the others when they reconnect. Audited as policy.delete.`,
		Example: `  patchbay policies delete disk`,
		Args:    oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeletePolicy(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Deleted policy %s.\n", clean(args[0]))
				return nil
			})
		},
	}
}
