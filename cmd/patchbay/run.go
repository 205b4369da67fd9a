package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
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
	var wait bool
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "run PLUGIN --target SELECTOR [--param k=v]... [--dry-run] [--wait]",
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
by the relay and again by each agent. To run a published script, use the script plugin:
  patchbay run script --param name=SCRIPT [--param k=v]...
the script's own parameters reach it as environment variables PATCHBAY_PARAM_<NAME>.

Without --wait the job ID alone is printed on the last line of standard output. With
--wait, progress goes to standard error (a live line on a terminal, plain lines
otherwise) and the results to standard output (-o table or json); the exit status is 1
when any agent failed or the job halted or was cancelled.

` + selector.Help,
		Example: `  patchbay run sysinfo --target all --wait
  patchbay run cacheclear --target os=linux,site=paris --param scopes=temp,user --dry-run --wait
  patchbay run script --target hostname=kiosk-* --param name=flush-dns --wait -o json
  JOB=$(patchbay run patchinstall --target role=server --param security_only=true --reason CHG-1234 | tail -1)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Plugin = args[0]
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
				job, err := c.CreateJob(cmd.Context(), req)
				if err != nil {
					return err
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
				if err := a.printJob(job, output); err != nil {
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
	f.BoolVar(&wait, "wait", false, "wait for every agent's result and print them")
	addOutputFlag(cmd, &output)
	return cmd
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

// printJob prints a job and its results.
func (a *app) printJob(j apiv1.Job, output outputFlag) error {
	if output == formatJSON {
		return writeJSON(a.stdout, j)
	}
	return writeJobTable(a.stdout, j)
}

func writeJobTable(w io.Writer, j apiv1.Job) error {
	fmt.Fprintf(w, "Job %s: %s %s on %q, %s", clean(j.ID), clean(j.Plugin), clean(j.Version), clean(j.Target), j.State)
	if j.DryRun {
		fmt.Fprint(w, " (dry run)")
	}
	fmt.Fprintln(w)
	t := newTable(w, "HOSTNAME", "AGENT", "STATE", "DURATION", "SUMMARY / ERROR")
	res := append([]apiv1.RunResult(nil), j.Results...)
	sort.SliceStable(res, func(a, b int) bool { return res[a].Hostname < res[b].Hostname })
	for _, r := range res {
		msg := r.Summary
		if r.Error != "" {
			msg = r.Error
		}
		if j.DryRun && r.State == "succeeded" && r.Needed {
			msg = "needs fix: " + msg
		}
		if r.RebootRequired {
			if line := restartLine(r.Details); line != "" {
				msg += " (" + line + ")"
			} else {
				msg += " (reboot required)"
			}
		}
		msg += consentNote(r.Consent)
		dur := ""
		if r.DurationMS > 0 {
			dur = (time.Duration(r.DurationMS) * time.Millisecond).Round(time.Millisecond).String()
		}
		t.row(r.Hostname, shortAgent(r.AgentID), r.State, dur, firstLine(msg, 100))
	}
	return t.flush()
}

// consentNote says who decided on a fix that needs consent: approved, or
// denied by a person (a denial by the policy, a timeout or nobody there is
// already in the summary, "fix not run: ...").
func consentNote(c *apiv1.RunConsent) string {
	switch {
	case c == nil:
		return ""
	case c.Approved && c.By == "policy":
		return " (consent: approved by the endpoint's policy, " + clean(c.Mode) + " mode)"
	case c.Approved:
		return " (consent: approved by " + clean(c.By) + ")"
	case c.By == "policy" || c.By == "timeout" || c.By == "agent" || c.By == "no-user":
		return ""
	}
	return " (consent: denied by " + clean(c.By) + ")"
}

func shortAgent(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}

func (a *app) jobsCmd() *cobra.Command {
	return group("jobs", "List, inspect and cancel jobs",
		`A job is one plugin run across agents, created by "patchbay run".`,
		`  patchbay jobs list
  patchbay jobs show 0193a1b2-... -o json
  patchbay jobs watch 0193a1b2-...
  patchbay jobs export 0193a1b2-... -o csv > results.csv
  patchbay jobs cancel 0193a1b2-...`,
		a.jobsListCmd(), a.jobsShowCmd(), a.jobsWatchCmd(), a.jobsExportCmd(), a.jobsCancelCmd())
}

func (a *app) jobsListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list [-o table|json]",
		Short: "List jobs, newest first",
		Long: `List the newest 100 jobs with their state and counts (viewer role). OK counts agents
that succeeded or were skipped because Check found nothing to fix.`,
		Example: "  patchbay jobs list\n  patchbay jobs list -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				jobs, err := c.Jobs(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, jobs)
				}
				t := newTable(a.stdout, "ID", "PLUGIN", "TARGET", "STATE", "AGENTS", "OK", "FAILED", "CREATED", "BY")
				for _, j := range jobs {
					ok := j.Counts["succeeded"] + j.Counts["skipped"]
					t.row(j.ID, j.Plugin+" "+j.Version, j.Target, j.State, fmt.Sprint(j.Total), fmt.Sprint(ok),
						fmt.Sprint(j.Counts["failed"]), fmtTime(j.CreatedAt), j.CreatedBy)
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) jobsShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "show ID [-o table|json]",
		Short: "Show a job and every agent's result",
		Long: `Show a job and one line per target agent: state, duration and summary or error
(viewer role), and for a fix that needed consent who approved or denied it. With -o json
every field is printed, including each agent's output tail, details, who signed what ran
and the consent decision (approved, by, message, mode, at). The job is over when
ended_at is set.`,
		Example: "  patchbay jobs show 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b\n  patchbay jobs show 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				j, err := c.Job(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printJob(j, output)
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) jobsCancelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Stop a job: nothing new starts and running agents are told to stop",
		Long: `Cancel a job (technician role): agents that have not started end "cancelled" at once;
agents running it are told to stop and report "cancelled" (or their result, if they
finished first). The cancellation is recorded in the audit log.`,
		Example: "  patchbay jobs cancel 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				r, err := c.CancelJob(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Job %s %s: %d run(s) that had not started were cancelled; running ones were told to stop.\n", r.ID, r.State, r.Cancelled)
				return nil
			})
		},
	}
	return cmd
}

func (a *app) jobsWatchCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "watch ID [-o table|json]",
		Short: "Follow a job's progress until it ends, then print its results",
		Long: `Follow a job like "patchbay run --wait" does: progress on standard error (a live line on
a terminal, a plain line whenever the counts change otherwise), then the results on
standard output. Exit status 1 when any agent failed or expired, or the job halted or was
cancelled. Ctrl-C stops watching; the job goes on.`,
		Example: "  patchbay jobs watch 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				j, err := a.waitJob(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if err := a.printJob(j, output); err != nil {
					return err
				}
				if jobFailed(j) {
					return errReported
				}
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) jobsExportCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "export ID -o json|csv",
		Short: "Write every agent's result with its full output, as JSON or CSV",
		Long: `Export a job's results for a report or a spreadsheet (viewer role): one record per target
agent with state, times, duration, summary, error, who signed what ran and the output
(the last 256 KiB each agent reported). The relay streams it, so exporting a job over
100,000 agents needs no more memory than a small one.

JSON is {"job": {...}, "results": [...]}; CSV has a header row:
  ` + strings.Join(apiv1.JobCSVHeader, ",") + ``,
		Example: "  patchbay jobs export 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b -o csv > results.csv\n  patchbay jobs export 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b -o json | jq '.results[] | select(.state==\"failed\")'",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "csv" {
				return usageErrorf(cmd, "-o %q: want json or csv", format)
			}
			return a.withClient(func(c *client.Client) error {
				return c.ExportJob(cmd.Context(), args[0], format, a.stdout)
			})
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "json", "json or csv")
	return cmd
}

// restartLine finds what the endpoint decided about a restart the fix
// required: the details' last line when it starts "restart" ("restart:
// tonight at 22:00, chosen by bob", "restart pending: policy never").
func restartLine(details string) string {
	details = strings.TrimRight(details, "\n")
	line := details[strings.LastIndexByte(details, '\n')+1:]
	if !strings.HasPrefix(line, "restart") {
		return ""
	}
	return clean(line)
}
