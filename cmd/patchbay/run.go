package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
)

// pollEvery is how often --wait asks the relay for progress.
const pollEvery = 500 * time.Millisecond

func (a *app) runCmd() *cobra.Command {
	var req apiv1.JobCreate
	var params []string
	var wait, summary bool
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "run PLUGIN[@VERSION]|SCRIPT --target SELECTOR [--param k=v]... [--dry-run] [--wait]",
		Short: "Run a signed plugin (or script) on the agents matching a selector",
		Long: `Run a plugin from the relay's catalog on every agent matching --target (technician role).

Each agent downloads the plugin, checks its signature against its own trusted signers
(patchbay-agent trust), runs Check, and runs Fix only if Check found something to fix.
--dry-run runs only Check: a plan of which agents need the fix, changing nothing.

Every agent ends in exactly one state: succeeded, failed, skipped (Check found nothing
to fix, or the fix needed consent and did not get it), cancelled, halted (never started
because the job halted) or expired (offline until --expires). Offline agents run the job when they come back, until it expires.
With --dry-run, "succeeded" means Check ran and found work (needed=true).

A plugin or script whose manifest says needs_consent asks the person at each machine
before its Fix runs (never for Check or --dry-run), by that endpoint's own consent policy
(patchbay-agent run --consent-mode/--consent-backend); the prompt names you and --reason.
Denied, unanswered or nobody logged in (when the policy says deny) ends that agent
"skipped" with the reason; the job goes on with the other agents, and a skipped agent
does not count towards --max-failures. Each decision, signed by the agent, is in the
audit log (fix.approved, fix.denied).

Parameters are checked against the plugin's manifest (see patchbay plugins list -o json)
by the relay and again by each agent. PLUGIN is a plugin's name as patchbay plugins list
shows it, optionally with @VERSION (like --version; default the newest). A published
script runs by its name too (patchbay scripts list), through the script plugin:
  patchbay run flush-dns --target ...   is   patchbay run script --param name=flush-dns --target ...
the script's own parameters reach it as environment variables PATCHBAY_PARAM_<NAME>.
The newest version of a script runs.

Revoked agents are never targeted; when the selector matches some, the relay says how
many were left out (and a job whose selector matches only revoked agents is refused).

Without --wait the job ID alone is printed on the last line of standard output. With
--wait, progress goes to standard error (a live line on a terminal, plain lines
otherwise) and the results to standard output (-o table or json); the exit status is 1
when any agent failed or the job halted or was cancelled.

` + selector.Help,
		Example: `  patchbay run sysinfo --target all --wait
  patchbay run cacheclear --target os=linux,site=paris --param scopes=temp,user --dry-run --wait
  patchbay run flush-dns --target hostname=kiosk-* --wait -o json
  patchbay run cacheclear@1.2.0 --target id=0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e --wait
  JOB=$(patchbay run patchinstall --target role=server --param security_only=true --reason CHG-1234 | tail -1)`,
		Args: oneArg("PLUGIN or SCRIPT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, hasVersion := strings.Cut(args[0], "@")
			if hasVersion {
				if version == "" || (req.Version != "" && req.Version != version) {
					return usageErrorf(cmd, "%s: give the version once, as PLUGIN@VERSION or --version", args[0])
				}
				req.Version = version
			}
			req.Plugin = name
			var err error
			if req.Params, err = parseParams(params); err != nil {
				return usageErrorf(cmd, "--param: %v", err)
			}
			if req.Target == "" {
				return usageErrorf(cmd, `--target is required ("all" selects every agent)`)
			}
			if _, err := selector.Parse(req.Target); err != nil {
				return usageErrorf(cmd, "--target: %v", err)
			}
			return a.withClient(func(c *client.Client) error {
				if err := a.resolveRunnable(cmd.Context(), c, &req); err != nil {
					return err
				}
				job, err := c.CreateJob(cmd.Context(), req)
				if err != nil {
					return err
				}
				if n := job.RevokedNotTargeted; n == 1 {
					fmt.Fprintln(a.stderr, "1 matching agent is revoked and was not targeted.")
				} else if n > 1 {
					fmt.Fprintf(a.stderr, "%d matching agents are revoked and were not targeted.\n", n)
				}
				if !wait {
					fmt.Fprintf(a.stderr, "Job %s: %s %s on %d agent(s). Follow it with: patchbay jobs show %s\n",
						job.ID, job.Plugin, job.Version, job.Total, job.ID)
					fmt.Fprintln(a.stdout, job.ID)
					return nil
				}
				job, err = a.waitJob(cmd.Context(), c, job.ID)
				if err != nil {
					return err
				}
				if err := a.printJob(job, output, summary); err != nil {
					return err
				}
				if jobFailed(job) {
					return errReported
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Target, "target", "", "selector of the agents to run on (required)")
	f.StringArrayVar(&params, "param", nil, "plugin parameter k=v; repeatable")
	f.StringVar(&req.Version, "version", "", "plugin version (default: the newest in the catalog)")
	f.BoolVar(&req.DryRun, "dry-run", false, "run only Check: show which agents need the fix")
	f.IntVar(&req.Concurrency, "concurrency", 0, "at most this many agents at once (0: no limit)")
	f.StringVar(&req.Canary, "canary", "", "run on N agents (or P%) first; the rest start only if they stay within --max-failures")
	f.StringVar(&req.MaxFailures, "max-failures", "", "halt the job once more than N agents, or more than P% of those finished so far, have failed (default: never)")
	f.StringVar(&req.Timeout, "timeout", "", "limit for each agent's run (default 30m)")
	f.StringVar(&req.Expires, "expires", "", "offline agents that have not run it by then end expired (default 24h)")
	f.StringVar(&req.Reason, "reason", "", "why (a ticket number): recorded in the audit log and shown to the user when a fix asks for consent")
	f.BoolVar(&req.AllowDowngrade, "allow-downgrade", false, "let agents run an older plugin version than one they already ran")
	f.StringVar(&req.Window, "window", "", "maintenance window (SITE/NAME, NAME or ID): runs start only while it is open, and wait (pending) outside it")
	f.BoolVar(&wait, "wait", false, "wait for every agent's result and print them (as patchbay jobs show does)")
	f.BoolVar(&summary, "summary", false, "with --wait: print only the results table, no output or details")
	addOutputFlag(cmd, &output)
	return cmd
}

// resolveRunnable turns a script's name given as PLUGIN into a run of the
// script plugin: the catalog is asked (by name, a small answer) only when
// no plugin has that name. Unknown names say where the names are listed.
func (a *app) resolveRunnable(ctx context.Context, c *client.Client, req *apiv1.JobCreate) error {
	if req.Plugin == "script" {
		return nil
	}
	plugins, err := c.Plugins(ctx, req.Plugin)
	if err != nil || len(plugins) > 0 {
		return err // the relay checks the version
	}
	scripts, err := c.Scripts(ctx, req.Plugin)
	if err != nil {
		return err
	}
	if len(scripts) == 0 {
		return fmt.Errorf("run %s: no plugin or script named %q in the catalog: patchbay plugins list and patchbay scripts list show them", req.Plugin, req.Plugin)
	}
	if req.Version != "" {
		return fmt.Errorf("run %s@%s: %s is a script, and the newest version of a script runs (%s): leave out the version", req.Plugin, req.Version, req.Plugin, scripts[0].Version)
	}
	if _, set := req.Params["name"]; set {
		return fmt.Errorf("run %s: %s is a script, named by the script plugin's name parameter: leave out --param name=", req.Plugin, req.Plugin)
	}
	if req.Params == nil {
		req.Params = map[string]string{}
	}
	req.Params["name"] = req.Plugin
	req.Plugin = "script"
	fmt.Fprintf(a.stderr, "%s is a script: running version %s through the script plugin.\n", req.Params["name"], scripts[0].Version)
	return nil
}

// parseParams parses repeated k=v flags. A value may contain '=' and ','.
func parseParams(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range list {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want name=value", p)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%q given twice", k)
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// waitJob polls until the job has ended, showing progress on stderr.
func (a *app) waitJob(ctx context.Context, c *client.Client, id string) (apiv1.Job, error) {
	tty := false
	if f, ok := a.stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	start := a.now()
	last := ""
	for {
		job, err := c.JobProgress(ctx, id)
		if err != nil {
			return apiv1.Job{}, err
		}
		id = job.ID // a prefix is resolved once
		line := progressLine(job)
		elapsed := a.now().Sub(start)
		switch {
		case tty:
			fmt.Fprintf(a.stderr, "\r\033[K%s  %s", line, rateETA(job, elapsed))
		case line != last: // plain lines only when something changed
			fmt.Fprintf(a.stderr, "%s  %s\n", line, rateETA(job, elapsed))
		}
		last = line
		if job.Final() {
			if tty {
				fmt.Fprintln(a.stderr)
			}
			return c.Job(ctx, id) // now with every result
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(a.stderr)
			}
			return apiv1.Job{}, fmt.Errorf("stopped waiting (the job goes on; patchbay jobs show %s): %w", id, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// progressLine is one line of progress: a bar and the counts.
func progressLine(j apiv1.Job) string {
	done := finished(j)
	const width = 20
	filled := 0
	if j.Total > 0 {
		filled = done * width / j.Total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	s := fmt.Sprintf("[%s] %d/%d  succeeded %d  failed %d  skipped %d  running %d  pending %d  offline %d",
		bar, done, j.Total, j.Counts["succeeded"], j.Counts["failed"], j.Counts["skipped"], j.Counts["running"], j.Counts["pending"]-j.Offline, j.Offline)
	for _, extra := range []string{"cancelled", "halted", "expired"} {
		if n := j.Counts[extra]; n > 0 {
			s += fmt.Sprintf("  %s %d", extra, n)
		}
	}
	return s + fmt.Sprintf("  [%s]", j.State)
}

// rateETA is the elapsed time, the finish rate and the time left at that
// rate ("12s, 41.5/s, ETA 3s").
func rateETA(j apiv1.Job, elapsed time.Duration) string {
	done := finished(j)
	s := humanDuration(elapsed)
	if done == 0 || elapsed <= 0 {
		return s
	}
	rate := float64(done) / elapsed.Seconds()
	s += fmt.Sprintf(", %.1f/s", rate)
	if left := j.Total - done; left > 0 && !j.Final() {
		s += ", ETA " + humanDuration(time.Duration(float64(left)/rate*float64(time.Second)))
	}
	return s
}

func finished(j apiv1.Job) int {
	n := 0
	for _, s := range []string{"succeeded", "failed", "skipped", "cancelled", "halted", "expired"} {
		n += j.Counts[s]
	}
	return n
}

// jobFailed reports whether the job should exit non-zero.
func jobFailed(j apiv1.Job) bool {
	return j.State == "halted" || j.State == "cancelled" || j.Counts["failed"] > 0 || j.Counts["expired"] > 0
}
