package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// printJob prints a job and its results: as the relay's JSON, or as a table
// with one row per agent followed (unless summary) by each agent's full
// output and details as indented text.
func (a *app) printJob(j apiv1.Job, output outputFlag, summary bool) error {
	if output == formatJSON {
		return writeJSON(a.stdout, j)
	}
	if err := writeJobTable(a.stdout, j); err != nil {
		return err
	}
	if summary {
		return nil
	}
	return writeRunBlocks(a.stdout, j)
}

// sortedResults returns the results by hostname, then agent ID.
func sortedResults(j apiv1.Job) []apiv1.RunResult {
	res := append([]apiv1.RunResult(nil), j.Results...)
	sort.SliceStable(res, func(a, b int) bool {
		if res[a].Hostname != res[b].Hostname {
			return res[a].Hostname < res[b].Hostname
		}
		return res[a].AgentID < res[b].AgentID
	})
	return res
}

// writeJobTable writes the job's heading and one row per agent. AGENT is the
// full agent ID, which every command that takes an agent accepts.
func writeJobTable(w io.Writer, j apiv1.Job) error {
	fmt.Fprintf(w, "Job %s: %s %s on %q, %s", clean(j.ID), clean(j.Plugin), clean(j.Version), clean(j.Target), j.State)
	if j.DryRun {
		fmt.Fprint(w, " (dry run)")
	}
	if j.Window != "" {
		fmt.Fprintf(w, "; runs start only in window %s", clean(j.Window))
	}
	fmt.Fprintln(w)
	t := newTable(w, "HOSTNAME", "AGENT", "STATE", "DURATION", "SUMMARY / ERROR")
	for _, r := range sortedResults(j) {
		msg := r.Summary
		if r.Error != "" {
			msg = r.Error
		}
		if j.DryRun && r.State == "succeeded" && r.Needed {
			msg = "needs fix: " + msg
		}
		if r.RebootRequired {
			if r.Details != nil && r.Details.Restart != "" {
				msg += " (" + clean(r.Details.Restart) + ")"
			} else {
				msg += " (reboot required)"
			}
		}
		msg += consentNote(r.Consent)
		t.row(r.Hostname, r.AgentID, r.State, runDuration(r), firstLine(msg, 100))
	}
	return t.flush()
}

func runDuration(r apiv1.RunResult) string {
	if r.DurationMS <= 0 {
		return ""
	}
	return (time.Duration(r.DurationMS) * time.Millisecond).Round(time.Millisecond).String()
}

// writeRunBlocks writes, for each agent that reported more than its
// summary line, a block headed by the agent with its error, summary,
// consent message, details and output, indented; JSON details are
// pretty-printed. Untrusted text is cleaned line by line (no terminal
// escapes), tabs and line breaks kept as such.
func writeRunBlocks(w io.Writer, j apiv1.Job) error {
	for _, r := range sortedResults(j) {
		if !hasMore(r) {
			continue
		}
		head := fmt.Sprintf("%s (%s): %s", clean(r.Hostname), clean(r.AgentID), clean(r.State))
		if d := runDuration(r); d != "" {
			head += " in " + d
		}
		fmt.Fprintf(w, "\n%s\n", head)
		field(w, "error", r.Error)
		field(w, "summary", r.Summary)
		if r.Consent != nil && r.Consent.Message != "" {
			field(w, "consent message", r.Consent.Message)
		}
		if d := r.Details; d != nil {
			if len(d.Data) > 0 {
				var buf bytes.Buffer
				if json.Indent(&buf, d.Data, "", "  ") == nil {
					field(w, "details", buf.String())
				} else {
					field(w, "details", string(d.Data))
				}
			}
			field(w, "details", d.Text)
			field(w, "restart", d.Restart)
		}
		field(w, "output", r.Output)
	}
	return nil
}

// hasMore reports whether a run has anything the table row does not show.
func hasMore(r apiv1.RunResult) bool {
	return strings.TrimSpace(r.Output) != "" || !r.Details.IsZero() || strings.Contains(r.Summary, "\n") ||
		strings.Contains(r.Error, "\n") || len(r.Summary) > 100 || len(r.Error) > 100 ||
		(r.Consent != nil && r.Consent.Message != "")
}

// field writes "  name: value" for a one-line value, or the name and the
// value's lines indented under it; nothing for an empty value.
func field(w io.Writer, name, value string) {
	value = strings.TrimRight(value, "\r\n \t")
	if strings.TrimSpace(value) == "" {
		return
	}
	if !strings.Contains(value, "\n") {
		fmt.Fprintf(w, "  %s: %s\n", name, cleanLine(value))
		return
	}
	fmt.Fprintf(w, "  %s:\n", name)
	for _, line := range strings.Split(value, "\n") {
		fmt.Fprintf(w, "    %s\n", cleanLine(line))
	}
}

// cleanLine cleans one line of untrusted text for the terminal: tabs become
// spaces, a trailing carriage return (Windows output) is dropped, and other
// control characters are escaped.
func cleanLine(s string) string {
	s = strings.TrimSuffix(s, "\r")
	return clean(strings.ReplaceAll(s, "\t", "    "))
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

func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > max {
		s = s[:max-1] + "…"
	}
	return s
}
