package main

import (
	"bufio"
	"fmt"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/spf13/cobra"
)

// auditFilterFlags are the filters audit list and audit export share. The
// relay applies them; the CLI only parses the times.
type auditFilterFlags struct {
	actor, action, agent, site, since, until string
}

// auditFilterHelp explains the filter flags in both commands' help.
const auditFilterHelp = `Filters (combined with AND; the relay applies them):
  --actor TEXT    the actor contains TEXT, ignoring case (a token or user name)
  --action NAME   exactly that action (session.approved), or every action
                  starting with a prefix ending in * (session.*)
  --agent AGENT   records about one agent, named as the tables show it: an ID,
                  a unique ID prefix or a hostname. Matches records whose
                  target is the agent, whose actor is the agent (its consent
                  decisions), that name it in their details, or whose target
                  is one of its sessions. A full ID also finds agents no
                  longer enrolled.
  --site SITE     records about one site (those the relay filed under it:
                  about its agents, sessions, jobs of that site alone,
                  enrollment tokens, the site itself): ORG/SITE, a name
                  only one site has, or an ID or unique ID prefix.
  --since TIME    recorded at or after TIME
  --until TIME    recorded before TIME
TIME is RFC 3339 (2026-05-01T09:00:00Z, 2026-05-01T11:00:00+02:00) or a
duration before now (90m, 24h, 7d).

Who reaches only some sites sees only the records about those sites, never
the relay-wide ones (people, tokens, settings).`

func (f *auditFilterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.actor, "actor", "", "only records whose actor contains this text (ignoring case)")
	fl.StringVar(&f.action, "action", "", "only this action, or a prefix ending in * (session.*)")
	fl.StringVar(&f.agent, "agent", "", "only records about this agent (ID, unique ID prefix or hostname)")
	fl.StringVar(&f.site, "site", "", "only records about this site (ORG/SITE, name, ID or ID prefix)")
	fl.StringVar(&f.since, "since", "", "only records at or after this time (RFC 3339, or a duration ago: 24h, 7d)")
	fl.StringVar(&f.until, "until", "", "only records before this time (RFC 3339, or a duration ago)")
}

// maxAuditAge bounds a "duration ago" filter time.
const maxAuditAge = 100 * 366 * 24 * time.Hour

// filter parses the flags; now is the reference for durations ago.
func (f *auditFilterFlags) filter(cmd *cobra.Command, now time.Time) (client.AuditFilter, error) {
	af := client.AuditFilter{Actor: f.actor, Action: f.action, Agent: f.agent, Site: f.site}
	for _, p := range []struct {
		flag, val string
		dst       *time.Time
	}{{"since", f.since, &af.Since}, {"until", f.until, &af.Until}} {
		if p.val == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, p.val); err == nil {
			*p.dst = t
			continue
		}
		d, err := apiv1.ParseTTL(p.val, maxAuditAge)
		if err != nil {
			return af, usageErrorf(cmd, "--%s %q: want an RFC 3339 time (2026-05-01T09:00:00Z) or a duration ago (24h, 7d)", p.flag, p.val)
		}
		*p.dst = now.Add(-d)
	}
	if !af.Since.IsZero() && !af.Until.IsZero() && !af.Until.After(af.Since) {
		return af, usageErrorf(cmd, "--until %s is not after --since %s: nothing can match", f.until, f.since)
	}
	return af, nil
}

func (a *app) auditExportCmd() *cobra.Command {
	var (
		filters auditFilterFlags
		format  string
		after   int64
	)
	cmd := &cobra.Command{
		Use:   "export [filters] [--after SEQ] -o csv|jsonl",
		Short: "Write every matching audit record to standard output",
		Long: `Write every audit record that the filters select, oldest first, to standard
output (viewer role). The relay is read 1000 records at a time, up to the
head it had when the export began, so an export of any size streams and is a
consistent snapshot. --after SEQ starts after record SEQ, for incremental
exports. A summary goes to standard error. (Who reaches only some sites
cannot read the relay's head: their export ends at the newest record they
see when it begins.)

-o jsonl (the default) writes one JSON object per line, exactly as the relay
serves the records, hashes included: an unfiltered export can be checked
offline against the chain. -o csv writes a header and one row per record:
seq, time (RFC 3339, UTC), actor, action, target, detail (a JSON object),
prev_hash, hash. CSV is meant for spreadsheets: a text cell that a
spreadsheet would run as a formula (starting with =, +, -, @) is prefixed
with ' (use JSON lines for the exact text).

` + auditFilterHelp,
		Example: `  patchbay audit export -o jsonl > audit.jsonl
  patchbay audit export --since 30d --action 'session.*' -o csv > sessions.csv
  patchbay audit export --agent pc-042 --since 2026-05-01T00:00:00Z -o jsonl
  patchbay audit export --site acme/paris --since 30d -o csv > acme-paris.csv`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "jsonl" {
				return usageErrorf(cmd, "-o %q: want csv or jsonl", format)
			}
			if after < 0 {
				return usageErrorf(cmd, "--after %d: want 0 or more", after)
			}
			f, err := filters.filter(cmd, a.now())
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				bw := bufio.NewWriterSize(a.stdout, 64<<10)
				w, err := audit.NewExporter(bw, format)
				if err != nil {
					return err
				}
				var first, last int64
				n, err := c.EachAudit(cmd.Context(), f, after, func(r audit.Record) error {
					if first == 0 {
						first = r.Seq
					}
					last = r.Seq
					return w.Write(r)
				})
				if ferr := w.Flush(); err == nil {
					err = ferr
				}
				if ferr := bw.Flush(); err == nil && ferr != nil {
					err = fmt.Errorf("write the export: %w", ferr)
				}
				if err != nil {
					return err
				}
				if n == 0 {
					fmt.Fprintln(a.stderr, "Exported 0 audit records: none matched.")
				} else {
					fmt.Fprintf(a.stderr, "Exported %d audit records (seq %d to %d).\n", n, first, last)
				}
				return nil
			})
		},
	}
	filters.add(cmd)
	cmd.Flags().Int64Var(&after, "after", 0, "start after this sequence number")
	cmd.Flags().StringVarP(&format, "output", "o", "jsonl", "csv or jsonl")
	return cmd
}
