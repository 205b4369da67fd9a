package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/patchbay/patchbay/internal/wire"
)

func (a *app) agentsUpgradeCmd() *cobra.Command {
	var req apiv1.JobCreate
	var rollbackAfter time.Duration
	var wait, summary bool
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "upgrade --version V --target SELECTOR [--canary N|P%] [--max-failures N|P%] [--rollback-after DURATION] [--wait]",
		Short: "Roll a signed release of the agent out to the agents matching a selector",
		Long: `Upgrade agents to release V (technician role): a job like "patchbay run" makes, with the
same gates (--canary, --max-failures, --concurrency, --expires, cancel with patchbay jobs
cancel), whose every run installs the agent binary of release V.

The release is a directory V of the relay's --releases directory (as make release writes
dist/V): SHA256SUMS, SHA256SUMS.sig (the organisation's SSHSIG over it, namespace
patchbay-release) and patchbay-agent_V_OS_ARCH[.exe]. The relay only serves it. Each agent
downloads SHA256SUMS and its signature, verifies the signature against its OWN
allowed_signers (DATA/allowed_signers: a line whose namespaces include patchbay-release,
or that names none), downloads its platform's binary, checks its SHA-256 against the
manifest and that "NEW version" prints V. Any failure ends that agent's run failed with
the reason, and nothing on the machine changes.

Then the agent keeps its binary as EXE.prev, renames the new one over it and restarts
(through its service manager, or by re-executing itself in the foreground). The new
version reports the run succeeded, with the versions before and after, once it is
connected to a relay again. If it has not connected within --rollback-after, it puts
EXE.prev back and restarts, and the old version reports the run failed ("rolled back:
V did not reconnect within 5m0s"). Agents already on V end skipped.

--dry-run makes every agent fetch and verify the release and check the binary runs,
without installing it. Without --wait the job ID alone is printed on standard output;
with --wait progress goes to standard error and the results to standard output (exit
status 1 when any agent failed or the job halted), as patchbay run --wait does.

` + selector.Help,
		Example: `  patchbay agents upgrade --version v1.5.0 --target all --canary 1% --max-failures 2 --wait
  patchbay agents upgrade --version v1.5.0 --target site=paris --canary 5 --rollback-after 10m
  patchbay agents upgrade --version v1.5.0 --target os=windows --dry-run --wait`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Version == "" {
				return usageErrorf(cmd, "--version is required (a release in the relay's --releases directory)")
			}
			if req.Target == "" {
				return usageErrorf(cmd, `--target is required ("all" selects every agent)`)
			}
			if _, err := selector.Parse(req.Target); err != nil {
				return usageErrorf(cmd, "--target: %v", err)
			}
			if cmd.Flags().Changed("rollback-after") {
				if rollbackAfter < time.Second || rollbackAfter > 24*time.Hour {
					return usageErrorf(cmd, "--rollback-after %v: want 1s to 24h", rollbackAfter)
				}
				req.Params = map[string]string{wire.UpgradeRollbackAfter: rollbackAfter.String()}
			}
			req.Plugin = wire.UpgradePlugin
			return a.withClient(func(c *client.Client) error {
				job, err := c.CreateJob(cmd.Context(), req)
				if err != nil {
					return err
				}
				if n := job.RevokedNotTargeted; n > 0 {
					fmt.Fprintf(a.stderr, "%d matching agent(s) revoked and not targeted.\n", n)
				}
				if !wait {
					fmt.Fprintf(a.stderr, "Job %s: upgrade to %s on %d agent(s). Follow it with: patchbay jobs watch %s\n",
						job.ID, job.Version, job.Total, job.ID)
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
	f.StringVar(&req.Version, "version", "", "the release to install: a directory of the relay's --releases (required)")
	f.StringVar(&req.Target, "target", "", "selector of the agents to upgrade (required)")
	f.StringVar(&req.Canary, "canary", "", "upgrade N agents (or P%) first; the rest start only if they stay within --max-failures")
	f.StringVar(&req.MaxFailures, "max-failures", "", "halt the rollout once more than N agents, or more than P% of those finished so far, have failed (default: never)")
	f.DurationVar(&rollbackAfter, "rollback-after", 5*time.Minute, "an agent whose new version has not reconnected within this restores its previous binary")
	f.IntVar(&req.Concurrency, "concurrency", 0, "at most this many agents at once (0: no limit)")
	f.StringVar(&req.Timeout, "timeout", "", "limit for each agent's download and checks (default 30m)")
	f.StringVar(&req.Expires, "expires", "", "offline agents that have not upgraded by then end expired (default 24h)")
	f.StringVar(&req.Reason, "reason", "", "why (a change ticket): recorded in the audit log")
	f.BoolVar(&req.DryRun, "dry-run", false, "fetch and verify the release and check the binary runs, install nothing")
	f.BoolVar(&wait, "wait", false, "wait for every agent's result and print them (as patchbay jobs show does)")
	f.BoolVar(&summary, "summary", false, "with --wait: print only the results table")
	addOutputFlag(cmd, &output)
	return cmd
}
