package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
)

// cronHelp says how schedules and windows read a cron spec.
const cronHelp = `A cron spec has 5 fields: minute hour day-of-month month day-of-week, read in the time
zone --tz (an IANA name such as Europe/Paris; default UTC). "0 3 * * 1-5" is 03:00 on
weekdays, "30 22 * * 6" 22:30 on Saturdays, "0 */4 * * *" every four hours; @daily and
@weekly work too. For tests and the rare operator who needs it, a 6th, leading seconds
field is accepted: "*/20 * * * * *" is every 20 seconds.`

const scheduleRefHelp = `SCHEDULE is a schedule's name, its ID, or a prefix of the ID that names one schedule.`

func (a *app) schedulesCmd() *cobra.Command {
	return group("schedules", "Run jobs on a schedule (cron), optionally only inside a maintenance window",
		`A schedule creates an ordinary job at each fire time of its cron spec: the same checks,
gates (canary, max failures, concurrency, expiry) and audit record as "patchbay run", made
as the schedule's owner (who created it) with the sites that owner reaches at that time.
Each firing creates one job, even with several relays or across restarts. A firing missed
while no relay ran is made up once when a relay is back within an hour of it; older ones
are skipped (never one job per missed tick).

`+cronHelp,
		`  patchbay schedules create nightly-cache --cron '0 3 * * 1-5' --tz Europe/Paris --plugin cacheclear --target os=windows --canary 5 --max-failures 2%
  patchbay schedules create --cron '0 22 * * 6' --plugin patchinstall --param security_only=true --target all --window paris/saturday-night
  patchbay schedules list -o json
  patchbay schedules pause nightly-cache`,
		a.schedulesCreateCmd(), a.schedulesListCmd(""), a.scheduleActionCmd("show"), a.scheduleActionCmd("pause"),
		a.scheduleActionCmd("resume"), a.scheduleActionCmd("delete"))
}

func (a *app) schedulesCreateCmd() *cobra.Command {
	var req apiv1.ScheduleCreate
	var params []string
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "create [NAME] --cron SPEC [--tz ZONE] --plugin PLUGIN[@VERSION]|SCRIPT --target SELECTOR [job flags] [--window WINDOW]",
		Short: "Create a schedule that runs a plugin or script at each fire time",
		Long: `Create a schedule (technician role). The plugin and its parameters are checked now, and
again at each firing. With --window the schedule fires only while that maintenance window
is open (a fire time outside it is skipped), and the job's runs start only while it is
open. NAME defaults to "PLUGIN CRON".

` + cronHelp,
		Example: "  patchbay schedules create nightly-cache --cron '0 3 * * 1-5' --tz Europe/Paris --plugin cacheclear --target all",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j := &req.Job
			name, version, hasVersion := strings.Cut(j.Plugin, "@")
			if hasVersion {
				j.Plugin, j.Version = name, version
			}
			if j.Plugin == "" || req.Cron == "" || j.Target == "" {
				return usageErrorf(cmd, "--cron, --plugin and --target are required")
			}
			if _, err := selector.Parse(j.Target); err != nil {
				return usageErrorf(cmd, "--target: %v", err)
			}
			var err error
			if j.Params, err = parseParams(params); err != nil {
				return usageErrorf(cmd, "--param: %v", err)
			}
			req.Name = j.Plugin + " " + req.Cron
			if len(args) == 1 {
				req.Name = args[0]
			}
			return a.withClient(func(c *client.Client) error {
				if err := a.resolveRunnable(cmd.Context(), c, j); err != nil {
					return err
				}
				s, err := c.CreateSchedule(cmd.Context(), req)
				if err != nil {
					return err
				}
				return a.printSchedule(s, output)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Cron, "cron", "", "cron spec of the fire times (required), e.g. '0 3 * * 1-5'")
	f.StringVar(&req.TZ, "tz", "UTC", "time zone the spec is read in (IANA name)")
	f.StringVar(&req.Job.Plugin, "plugin", "", "plugin (or script) to run, as PLUGIN or PLUGIN@VERSION (required)")
	f.StringVar(&req.Job.Window, "window", "", "maintenance window (SITE/NAME, NAME or ID): fire and start runs only while it is open")
	jobFlags(cmd, &req.Job, &params)
	addOutputFlag(cmd, &output)
	return cmd
}

// jobFlags are the flags of patchbay run that a scheduled job takes.
func jobFlags(cmd *cobra.Command, req *apiv1.JobCreate, params *[]string) {
	f := cmd.Flags()
	f.StringVar(&req.Target, "target", "", "selector of the agents to run on (required)")
	f.StringArrayVar(params, "param", nil, "plugin parameter k=v; repeatable")
	f.BoolVar(&req.DryRun, "dry-run", false, "run only Check")
	f.IntVar(&req.Concurrency, "concurrency", 0, "at most this many agents at once (0: no limit)")
	f.StringVar(&req.Canary, "canary", "", "run on N agents (or P%) first")
	f.StringVar(&req.MaxFailures, "max-failures", "", "halt once more than N agents (or P% of those finished) have failed")
	f.StringVar(&req.Timeout, "timeout", "", "limit for each agent's run (default 30m)")
	f.StringVar(&req.Expires, "expires", "", "each job's expiry (default 24h, or until its window closes)")
	f.StringVar(&req.Reason, "reason", "", "why (a ticket number): in the audit log and shown when a fix asks for consent")
	f.BoolVar(&req.AllowDowngrade, "allow-downgrade", false, "let agents run an older plugin version than one they already ran")
}

func (a *app) schedulesListCmd(kind string) *cobra.Command {
	var output outputFlag
	what := "schedules"
	if kind != "" {
		what = "patch policies"
	}
	cmd := &cobra.Command{
		Use:   "list [-o table|json]",
		Short: "List " + what + " with their next fire time and last job",
		Long: "List the " + what + ` you see (viewer role): yours, and those whose owner reached no site you
do not. NEXT is the next fire time ("paused" for a paused one); LAST ERROR says why the last
fire time made no job (outside its window, missed, the target matched nobody).`,
		Args:    noArgs,
		Example: "  patchbay " + map[bool]string{true: "schedules", false: "patch-policies"}[kind == ""] + " list\n  patchbay " + map[bool]string{true: "schedules", false: "patch-policies"}[kind == ""] + " list -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				l, err := c.Schedules(cmd.Context(), kind)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, l)
				}
				t := newTable(a.stdout, "ID", "NAME", "KIND", "CRON", "TZ", "WINDOW", "PLUGIN", "TARGET", "NEXT", "LAST JOB", "LAST ERROR")
				for _, s := range l {
					t.row(s.ID, s.Name, s.Kind, s.Cron, s.TZ, s.Window, s.Job.Plugin, s.Job.Target, nextText(s), s.LastJob, s.LastError)
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func nextText(s apiv1.Schedule) string {
	if s.Paused || s.NextFire == nil {
		return "paused"
	}
	return fmtTime(*s.NextFire)
}

func (a *app) scheduleActionCmd(action string) *cobra.Command {
	var output outputFlag
	short := map[string]string{
		"show":   "Show a schedule",
		"pause":  "Pause a schedule: it fires no more until resumed",
		"resume": "Resume a paused schedule from its next fire time (missed firings are not made up)",
		"delete": "Delete a schedule (the jobs it created stay)",
	}[action]
	cmd := &cobra.Command{
		Use:     action + " SCHEDULE",
		Short:   short,
		Long:    short + ".\n\n" + scheduleRefHelp,
		Example: "  patchbay schedules " + action + " nightly-cache",
		Args:    oneArg("SCHEDULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				s, err := c.ScheduleDo(cmd.Context(), action, args[0])
				if err != nil {
					return err
				}
				if action == "delete" {
					fmt.Fprintf(a.stdout, "Schedule %s deleted.\n", args[0])
					return nil
				}
				return a.printSchedule(s, output)
			})
		},
	}
	if action != "delete" {
		addOutputFlag(cmd, &output)
	}
	return cmd
}

func (a *app) printSchedule(s apiv1.Schedule, output outputFlag) error {
	if output == formatJSON {
		return writeJSON(a.stdout, s)
	}
	w := a.stdout
	fmt.Fprintf(w, "Schedule %s (%s)\n", s.Name, s.ID)
	fmt.Fprintf(w, "  kind:    %s\n  cron:    %s (%s)\n  next:    %s\n", s.Kind, s.Cron, s.TZ, nextText(s))
	if s.Window != "" {
		fmt.Fprintf(w, "  window:  %s\n", s.Window)
	}
	if s.Site != "" {
		fmt.Fprintf(w, "  site:    %s\n  reboot:  %s\n", s.Site, s.Reboot)
	}
	fmt.Fprintf(w, "  job:     %s on %s", s.Job.Plugin, s.Job.Target)
	for k, v := range s.Job.Params {
		fmt.Fprintf(w, " %s=%s", k, v)
	}
	fmt.Fprintln(w)
	if s.LastFire != nil {
		fmt.Fprintf(w, "  last:    %s job %s\n", fmtTime(*s.LastFire), s.LastJob)
	}
	if s.LastError != "" {
		fmt.Fprintf(w, "  error:   %s\n", s.LastError)
	}
	fmt.Fprintf(w, "  owner:   %s\n", s.CreatedBy)
	return nil
}

func (a *app) windowsCmd() *cobra.Command {
	return group("windows", "Maintenance windows of a site: when scheduled jobs may run",
		`A maintenance window belongs to a site. It opens at each fire time of --cron-start (read in
--tz) and stays open for --duration. Schedules and jobs given --window start runs only while
it is open: outside it their runs wait (pending, not failed); when it closes no new run
starts, and runs already going finish.

`+cronHelp,
		`  patchbay windows create saturday-night --site acme/paris --cron-start '0 22 * * 6' --duration 4h --tz Europe/Paris
  patchbay windows list
  patchbay windows delete acme/paris/saturday-night`,
		a.windowsCreateCmd(), a.windowsListCmd(), a.windowsDeleteCmd())
}

func (a *app) windowsCreateCmd() *cobra.Command {
	var req apiv1.WindowCreate
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "create NAME --site SITE --cron-start SPEC --duration DURATION [--tz ZONE]",
		Short:   "Create a site's maintenance window",
		Long:    "Create a maintenance window (technician role) on a site you reach.\n\n" + cronHelp,
		Example: "  patchbay windows create weeknights --site paris --cron-start '0 22 * * 1-5' --duration 2h --tz Europe/Paris",
		Args:    oneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			if req.Site == "" || req.CronStart == "" || req.Duration == "" {
				return usageErrorf(cmd, "--site, --cron-start and --duration are required")
			}
			if _, err := time.ParseDuration(req.Duration); err != nil {
				return usageErrorf(cmd, "--duration %q: want e.g. 2h or 90m", req.Duration)
			}
			return a.withClient(func(c *client.Client) error {
				w, err := c.CreateWindow(cmd.Context(), req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, w)
				}
				fmt.Fprintf(a.stdout, "Window %s/%s (%s): from %s (%s) for %s; open now: %v\n", w.Site, w.Name, w.ID, w.CronStart, w.TZ, w.Duration, w.Open)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Site, "site", "", "site (ORG/SITE, name or ID) the window belongs to (required)")
	f.StringVar(&req.CronStart, "cron-start", "", "cron spec of when the window opens (required), e.g. '0 22 * * 6'")
	f.StringVar(&req.Duration, "duration", "", "how long it stays open (required), e.g. 2h")
	f.StringVar(&req.TZ, "tz", "UTC", "time zone the spec is read in (IANA name)")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) windowsListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Short:   "List the maintenance windows of the sites you reach",
		Long:    "List the maintenance windows of the sites you reach (viewer role), whether each is open now and when it next opens.",
		Args:    noArgs,
		Example: "  patchbay windows list -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				l, err := c.Windows(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, l)
				}
				t := newTable(a.stdout, "ID", "SITE", "NAME", "START", "TZ", "DURATION", "OPEN", "NEXT OPEN")
				for _, w := range l {
					next := ""
					if w.NextOpen != nil {
						next = fmtTime(*w.NextOpen)
					}
					t.row(w.ID, w.Site, w.Name, w.CronStart, w.TZ, w.Duration, fmt.Sprint(w.Open), next)
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) windowsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete WINDOW",
		Short:   "Delete a maintenance window no schedule uses",
		Long:    "Delete a window (technician role). WINDOW is ORG/SITE/NAME, SITE/NAME, a NAME only one site has, or an ID or ID prefix.",
		Example: "  patchbay windows delete paris/saturday-night",
		Args:    oneArg("WINDOW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteWindow(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Window %s deleted.\n", args[0])
				return nil
			})
		},
	}
}

func (a *app) patchPoliciesCmd() *cobra.Command {
	return group("patch-policies", "Install updates on a site's agents in its maintenance window",
		`A patch policy installs updates (patchinstall) on a site's agents each time a maintenance
window of that site opens; the runs start only while the window is open. It is a schedule of
kind patch-policy: patchbay schedules show|pause|resume|delete act on it.

--categories security (the default) installs security updates only (security_only=true);
all installs every update; any other list (e.g. security,critical) is passed as
patchinstall's categories, which only the windowsupdate manager takes.

--reboot is sent with each run and weighed by the endpoint's own consent policy
(patchbay-agent consent reboot: ask, never, force), which stays the authority:
  ask              the endpoint's policy decides (a logged-in user is asked; nobody: now)
  never            no restart; the result says a restart is pending
  force-in-window  restart now without asking when nobody is logged in and the window is
                   still open by the agent's clock; nobody logged in after it closed: no
                   restart; a user logged in: asked (or told, under force). An endpoint
                   whose policy is never is never restarted.
Agents from before this field, or connected to another relay of a tier, decide by their
policy alone (see README, "Schedules and maintenance windows").`,
		`  patchbay patch-policies create --site acme/paris --categories security --window saturday-night
  patchbay patch-policies list`,
		a.patchPolicyCreateCmd(), a.schedulesListCmd("patch-policy"))
}

func (a *app) patchPolicyCreateCmd() *cobra.Command {
	var req apiv1.PatchPolicyCreate
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "create [NAME] --site SITE --window WINDOW [--categories security|all|LIST] [--reboot ask|never|force-in-window] [--target SELECTOR]",
		Short: "Create a patch policy for a site",
		Long: `Create a patch policy (technician role): a schedule that, each time WINDOW opens, creates a
patchinstall job over the agents of SITE (narrowed by --target) whose runs start only while
the window is open. NAME defaults to "patch ORG/SITE".`,
		Example: "  patchbay patch-policies create --site paris --categories security --window saturday-night --reboot ask",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.Name = args[0]
			}
			if req.Site == "" || req.Window == "" {
				return usageErrorf(cmd, "--site and --window are required")
			}
			return a.withClient(func(c *client.Client) error {
				s, err := c.CreatePatchPolicy(cmd.Context(), req)
				if err != nil {
					return err
				}
				return a.printSchedule(s, output)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Site, "site", "", "site whose agents are patched (required)")
	f.StringVar(&req.Window, "window", "", "maintenance window of the site (required): the policy fires when it opens")
	f.StringVar(&req.Categories, "categories", "security", "security, all, or windowsupdate classifications")
	f.StringVar(&req.Reboot, "reboot", "ask", "ask, never or force-in-window")
	f.StringVar(&req.Target, "target", "", "narrow the site's agents with a selector (default all)")
	addOutputFlag(cmd, &output)
	return cmd
}
