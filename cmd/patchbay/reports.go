package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// reportSections are the sections of a report summary, in order.
var reportSections = []string{"incidents", "runs", "alerts", "problems", "os", "versions", "patch", "patch-agents"}

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
		a.reportsSummaryCmd())
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
					return writeReportCSV(a.stdout, rep, section)
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

// reportRows returns a section's header and rows.
func reportRows(rep apiv1.ReportSummary, section string) ([]string, [][]string) {
	itoa, ftoa := strconv.Itoa, func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	hours := func(s float64) string { return strconv.FormatFloat(s/3600, 'f', 2, 64) }
	counts := func(l []apiv1.ReportCount) [][]string {
		var rows [][]string
		for _, c := range l {
			rows = append(rows, []string{c.Key, itoa(c.Count)})
		}
		return rows
	}
	switch section {
	case "incidents":
		i := rep.Incidents
		return []string{"metric", "value"}, [][]string{{"opened", itoa(i.Opened)}, {"resolved", itoa(i.Resolved)},
			{"median_resolve_hours", hours(i.MedianResolveSeconds)}, {"mean_resolve_hours", hours(i.MeanResolveSeconds)}}
	case "runs":
		row := func(k string, r apiv1.ReportRuns) []string {
			return []string{k, itoa(r.Ended), itoa(r.Succeeded), itoa(r.Failed), ftoa(r.SuccessRate)}
		}
		return []string{"kind", "ended", "succeeded", "failed", "success_rate"}, [][]string{row("fixes", rep.Fixes), row("self_heals", rep.SelfHeals)}
	case "alerts":
		return []string{"kind", "alerts"}, counts(rep.AlertsByKind)
	case "problems":
		var rows [][]string
		for _, p := range rep.TopProblems {
			rows = append(rows, []string{p.Kind, p.Check, itoa(p.Alerts), itoa(p.Raised)})
		}
		return []string{"kind", "check", "alerts", "raised"}, rows
	case "os":
		return []string{"os", "agents"}, counts(rep.AgentsByOS)
	case "versions":
		return []string{"version", "agents"}, counts(rep.AgentsByVersion)
	case "patch":
		p := rep.PatchCompliance
		if !p.Collected {
			return []string{"collected", "reason"}, [][]string{{"false", p.Reason}}
		}
		rows := [][]string{}
		for _, s := range p.Sites {
			rows = append(rows, []string{s.Site, itoa(s.Agents), itoa(s.Patched), itoa(s.SecurityPending), itoa(s.UpdatesPending), itoa(s.NeverChecked)})
		}
		return []string{"site", "agents", "patched", "security_pending", "updates_pending", "never_checked"}, rows
	case "patch-agents":
		rows := [][]string{}
		for _, g := range rep.PatchCompliance.PerAgent {
			checked, sec := "", ""
			if g.CheckedAt != nil {
				checked = g.CheckedAt.UTC().Format(time.RFC3339)
			}
			if g.Security != nil {
				sec = itoa(*g.Security)
			}
			rows = append(rows, []string{g.AgentID, g.Hostname, g.Site, g.State, checked, g.Manager, itoa(g.Pending), sec})
		}
		return []string{"agent", "hostname", "site", "state", "checked", "manager", "pending", "security"}, rows
	}
	return nil, nil
}

// writeReportCSV writes one section (its own columns), or every section as
// section,item,value rows: the item is the row's first cells joined by
// "/" and, when the section has more than one value column, the column's
// name ("fixes.success_rate"), so one long table holds them all.
func writeReportCSV(w io.Writer, rep apiv1.ReportSummary, section string) error {
	cw := csv.NewWriter(w)
	write := func(cells ...string) {
		for i, c := range cells {
			cells[i] = csvCell(c)
		}
		cw.Write(cells)
	}
	if section != "" {
		head, rows := reportRows(rep, section)
		write(head...)
		for _, r := range rows {
			write(r...)
		}
		cw.Flush()
		return cw.Error()
	}
	write("section", "item", "value")
	write("period", "from", rep.From.Format(time.RFC3339))
	write("period", "to", rep.To.Format(time.RFC3339))
	write("period", "site", map[bool]string{true: "all", false: rep.Site}[rep.Site == ""])
	for _, s := range reportSections {
		head, rows := reportRows(rep, s)
		keys := 1 // leading cells that name the row
		if s == "problems" {
			keys = 2
		}
		if s == "patch" && !rep.PatchCompliance.Collected {
			keys = 0
		}
		for _, r := range rows {
			name := strings.Join(r[:keys], "/")
			for i := keys; i < len(r); i++ {
				item := head[i]
				switch {
				case name != "" && len(head) == keys+1:
					item = name
				case name != "":
					item = name + "." + head[i]
				}
				write(s, item, r[i])
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func (a *app) writeReportTable(rep apiv1.ReportSummary) error {
	where := rep.Site
	if where == "" {
		where = "all your sites"
	}
	fmt.Fprintf(a.stdout, "Report for %s, %s to %s\n", clean(where), rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
	titles := map[string]string{"incidents": "Incidents", "runs": "Fixes and self-heals", "alerts": "Alerts by kind",
		"problems": "Top recurring problems", "os": "Agents by OS", "versions": "Agents by version", "patch": "Patch compliance (now, per site)",
		"patch-agents": "Patch compliance per agent"}
	for _, s := range reportSections {
		fmt.Fprintf(a.stdout, "\n%s\n", titles[s])
		head, rows := reportRows(rep, s)
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
