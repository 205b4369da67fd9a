package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/reportfmt"
)

// reportSections are the sections of a report summary, in order.
var reportSections = reportfmt.Sections

func (a *app) reportsCmd() *cobra.Command {
	return group("reports", "Report on a period: incidents, fixes, self-heals, alerts, agents",
		`Reports sum up a period in one site or every site you reach (viewer
role): incidents opened and resolved with the time they took, fixes and
self-heals run with their success rates, alerts by kind and the top
recurring problems, agents by OS and by agent version, and patch
compliance per site and per agent (from the pending updates the agents'
last patchinstall runs listed; see the README).`,
		`  patchbay reports summary
  patchbay reports summary --site acme/paris --from 2026-11-01 --to 2026-12-01 -o csv > nov.csv`,
		a.reportsSummaryCmd(), a.reportsScheduleCmd())
}

func (a *app) reportsSummaryCmd() *cobra.Command {
	var site, from, to, section string
	output := softwareFormat(formatTable)
	cmd := &cobra.Command{
		Use:   "summary [--site SITE] [--from DATE] [--to DATE] [-o table|json|csv] [--section S]",
		Short: "Show the figures of a period",
		Long: `Show the figures of the period [--from, --to) (dates, 2026-11-01, in UTC,
or RFC 3339 times; --to is not included) in one site (--site) or every
site you reach. Without --from and --to: the current month; with one of
them: a month from or to it.

What counts: incidents opened, and resolved (with median and mean time to
resolve), in the period; runs that ended in the period, a self-heal being
a run of a job a policy created for its fix and a fix any other run,
success rate = succeeded / ended; alerts opened in the period, by kind,
and the 10 problems (kind and check) raised most often; agents enrolled
now, by OS and by agent version. Patch compliance is now, not over the
period: each agent's last patchinstall run (a patch policy, a job or a
--dry-run) lists its pending updates; an agent is patched when that list
is empty, security-pending when it holds a security update,
updates-pending when it holds others only, never-checked without a run.
The patch section counts them per site; patch-agents lists every agent.

-o csv writes one table a spreadsheet opens as it is: columns section,
item, value (e.g. "runs,fixes.success_rate,0.5"); with --section S only
that section, with its own columns. Sections: ` + strings.Join(reportSections, ", ") + `.
Cells that a spreadsheet would run as a formula get a leading '. ` + siteRefHelp,
		Example: `  patchbay reports summary
  patchbay reports summary --site acme/paris --from 2026-11-01 --to 2026-12-01
  patchbay reports summary -o csv > report.csv
  patchbay reports summary -o csv --section problems > problems.csv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if section != "" && !slices.Contains(reportSections, section) {
				return usageErrorf(cmd, "--section %q: use one of %s", section, strings.Join(reportSections, ", "))
			}
			if section != "" && output != "csv" {
				return usageErrorf(cmd, "--section goes with -o csv")
			}
			return a.withClient(func(c *client.Client) error {
				rep, err := c.ReportSummary(cmd.Context(), site, from, to)
				if err != nil {
					return err
				}
				switch output {
				case formatJSON:
					return writeJSON(a.stdout, rep)
				case "csv":
					return reportfmt.WriteCSV(a.stdout, rep, section)
				}
				return a.writeReportTable(rep)
			})
		},
	}
	cmd.Flags().StringVar(&site, "site", "", "only this site (ORG/SITE)")
	cmd.Flags().StringVar(&from, "from", "", "start of the period, included (2026-11-01)")
	cmd.Flags().StringVar(&to, "to", "", "end of the period, not included (2026-12-01)")
	cmd.Flags().StringVar(&section, "section", "", "with -o csv, only this section: "+strings.Join(reportSections, ", "))
	cmd.Flags().VarP(&output, "output", "o", "output format: table, json or csv")
	return cmd
}

func (a *app) writeReportTable(rep apiv1.ReportSummary) error {
	where := rep.Site
	if where == "" {
		where = "all your sites"
	}
	fmt.Fprintf(a.stdout, "Report for %s, %s to %s\n", clean(where), rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
	for _, s := range reportSections {
		fmt.Fprintf(a.stdout, "\n%s\n", reportfmt.Titles[s])
		head, rows := reportfmt.Rows(rep, s)
		if len(rows) == 0 {
			fmt.Fprintln(a.stdout, "  none")
			continue
		}
		for i := range head {
			head[i] = strings.ToUpper(head[i])
		}
		t := newTable(a.stdout, head...)
		for _, r := range rows {
			t.row(r...)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}
