package reportfmt

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// where names a report's scope.
func where(rep apiv1.ReportSummary) string {
	if rep.Site == "" {
		return "all sites"
	}
	return rep.Site
}

// Subject is a mailed report's subject line.
func Subject(name string, rep apiv1.ReportSummary) string {
	return fmt.Sprintf("[patchbay] report %s: %s, %s to %s", name, where(rep),
		rep.From.UTC().Format(time.DateOnly), rep.To.UTC().Format(time.DateOnly))
}

// Text is the plain-text summary a mailed report starts with: the
// headline figures, then every section as NAME: value lines.
func Text(rep apiv1.ReportSummary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Report for %s, %s to %s (UTC)\n\n", where(rep), rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339))
	i := rep.Incidents
	fmt.Fprintf(&b, "Incidents: %d opened, %d resolved (median %s to resolve)\n", i.Opened, i.Resolved,
		(time.Duration(i.MedianResolveSeconds) * time.Second).String())
	fmt.Fprintf(&b, "Fixes: %d ended, %d succeeded (%.0f%%)\n", rep.Fixes.Ended, rep.Fixes.Succeeded, 100*rep.Fixes.SuccessRate)
	fmt.Fprintf(&b, "Self-heals: %d ended, %d succeeded (%.0f%%)\n", rep.SelfHeals.Ended, rep.SelfHeals.Succeeded, 100*rep.SelfHeals.SuccessRate)
	alerts := 0
	for _, c := range rep.AlertsByKind {
		alerts += c.Count
	}
	agents := 0
	for _, c := range rep.AgentsByOS {
		agents += c.Count
	}
	fmt.Fprintf(&b, "Alerts: %d opened\nAgents: %d\n", alerts, agents)
	for _, s := range Sections[2:] {
		if s == "patch-agents" {
			continue // one line per agent: in the attachment, not the text
		}
		head, rows := Rows(rep, s)
		fmt.Fprintf(&b, "\n%s\n", Titles[s])
		if len(rows) == 0 {
			b.WriteString("  none\n")
			continue
		}
		for _, r := range rows {
			cells := make([]string, len(r))
			for k := range r {
				cells[k] = head[k] + "=" + r[k]
			}
			fmt.Fprintf(&b, "  %s\n", strings.Join(cells, ", "))
		}
	}
	return b.String()
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #bbb;padding:2px 8px;text-align:left}</style>
</head><body><h1>{{.Title}}</h1>
{{range .Sections}}<h2>{{.Title}}</h2>{{if .Rows}}<table><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{else}}<p>none</p>{{end}}
{{end}}</body></html>
`))

// WriteHTML writes the report as one HTML page with a table per section.
func WriteHTML(w io.Writer, rep apiv1.ReportSummary) error {
	type section struct {
		Title string
		Head  []string
		Rows  [][]string
	}
	data := struct {
		Title    string
		Sections []section
	}{Title: fmt.Sprintf("Report for %s, %s to %s", where(rep), rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339))}
	for _, s := range Sections {
		head, rows := Rows(rep, s)
		data.Sections = append(data.Sections, section{Title: Titles[s], Head: head, Rows: rows})
	}
	return page.Execute(w, data)
}
