// Package reportfmt renders a report summary (apiv1.ReportSummary) as the
// CLI prints and the relay mails it: CSV (one long table, or one section),
// a short plain-text summary and an HTML page. It holds no state and
// reaches no server.
package reportfmt

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// Sections are the sections of a report summary, in order.
var Sections = []string{"incidents", "runs", "alerts", "problems", "os", "versions", "patch", "patch-agents"}

// Titles are the sections' headings.
var Titles = map[string]string{"incidents": "Incidents", "runs": "Fixes and self-heals", "alerts": "Alerts by kind",
	"problems": "Top recurring problems", "os": "Agents by OS", "versions": "Agents by version", "patch": "Patch compliance (now, per site)",
	"patch-agents": "Patch compliance per agent"}

// csvCell keeps a spreadsheet from running a cell as a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Rows returns a section's header and rows.
func Rows(rep apiv1.ReportSummary, section string) ([]string, [][]string) {
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

// WriteCSV writes one section (its own columns), or every section as
// section,item,value rows: the item is the row's first cells joined by
// "/" and, when the section has more than one value column, the column's
// name ("fixes.success_rate"), so one long table holds them all.
func WriteCSV(w io.Writer, rep apiv1.ReportSummary, section string) error {
	cw := csv.NewWriter(w)
	write := func(cells ...string) {
		for i, c := range cells {
			cells[i] = csvCell(c)
		}
		cw.Write(cells)
	}
	if section != "" {
		head, rows := Rows(rep, section)
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
	for _, s := range Sections {
		head, rows := Rows(rep, s)
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
