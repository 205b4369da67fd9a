package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// jobRefHelp says how commands that take a job name it.
const jobRefHelp = `JOB is a job ID as patchbay jobs list shows it, or any prefix of one that names a
single job (the relay lists the candidates when it names several).`

func (a *app) jobsCmd() *cobra.Command {
	return group("jobs", "List, inspect and cancel jobs",
		`A job is one plugin run across agents, created by "patchbay run".`,
		`  patchbay jobs list
  patchbay jobs show 0193a1b2-7c4d -o json
  patchbay jobs watch 0193a1b2-7c4d
  patchbay jobs export 0193a1b2-7c4d -o csv > results.csv
  patchbay jobs cancel 0193a1b2-7c4d`,
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
	var summary bool
	cmd := &cobra.Command{
		Use:   "show JOB [--summary] [-o table|json]",
		Short: "Show a job and every agent's result, output and details",
		Long: `Show a job (viewer role): one line per target agent with its state, duration and
summary or error, and for a fix that needed consent who approved or denied it; then, for
each agent that reported more, its full output (the last 256 KiB it sent), details
(pretty-printed when the plugin reported JSON), the restart decision and the consent
message, as text indented under the agent's ID. --summary prints the table only.

With -o json every field is printed: each agent's output, details as an object
({"data": ...} when the plugin reported JSON, {"text": "..."} for text, "restart" with
the endpoint's restart decision), who signed what ran and the consent decision
(approved, by, message, mode, at). The job is over when ended_at is set.

` + jobRefHelp,
		Example: "  patchbay jobs show 0193a1b2-7c4d\n  patchbay jobs show 0193a1b2-7c4d --summary\n  patchbay jobs show 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b -o json | jq '.results[].details'",
		Args:    oneArg("JOB"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				j, err := c.Job(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printJob(j, output, summary)
			})
		},
	}
	cmd.Flags().BoolVar(&summary, "summary", false, "only the table: no output or details")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) jobsCancelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Stop a job: nothing new starts and running agents are told to stop",
		Long: `Cancel a job (technician role): agents that have not started end "cancelled" at once;
agents running it are told to stop and report "cancelled" (or their result, if they
finished first). The cancellation is recorded in the audit log.

` + jobRefHelp,
		Example: "  patchbay jobs cancel 0193a1b2-7c4d",
		Args:    oneArg("JOB"),
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
	var summary bool
	cmd := &cobra.Command{
		Use:   "watch JOB [--summary] [-o table|json]",
		Short: "Follow a job's progress until it ends, then print its results",
		Long: `Follow a job like "patchbay run --wait" does: progress on standard error (a live line on
a terminal, a plain line whenever the counts change otherwise), then the results on
standard output as patchbay jobs show prints them. Exit status 1 when any agent failed or
expired, or the job halted or was cancelled. Ctrl-C stops watching; the job goes on.

` + jobRefHelp,
		Example: "  patchbay jobs watch 0193a1b2-7c4d",
		Args:    oneArg("JOB"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				j, err := a.waitJob(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if err := a.printJob(j, output, summary); err != nil {
					return err
				}
				if jobFailed(j) {
					return errReported
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&summary, "summary", false, "only the table: no output or details")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) jobsExportCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "export JOB -o json|csv",
		Short: "Write every agent's result with its full output, as JSON or CSV",
		Long: `Export a job's results for a report or a spreadsheet (viewer role): one record per target
agent with state, times, duration, summary, error, who signed what ran and the output
(the last 256 KiB each agent reported). The relay streams it, so exporting a job over
100,000 agents needs no more memory than a small one.

JSON is {"job": {...}, "results": [...]} with each result as in patchbay jobs show -o json;
CSV has a header row:
  ` + strings.Join(apiv1.JobCSVHeader, ",") + "\n\n" + jobRefHelp,
		Example: "  patchbay jobs export 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b -o csv > results.csv\n  patchbay jobs export 0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b -o json | jq '.results[] | select(.state==\"failed\")'",
		Args:    oneArg("JOB"),
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
