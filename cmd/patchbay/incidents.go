package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func (a *app) incidentsCmd() *cobra.Command {
	return group("incidents", "Document incidents: notes, linked sessions, jobs and alerts, and what fixed them",
		`An incident documents a problem from report to fix: a title, a ticket
reference (free text, e.g. INC-1234), the site and agents it is about, a
severity, notes in Markdown (only ever added, each with its author and
time), links to the sessions, jobs and alerts that belong to it, and when
it is resolved, what fixed it (--resolution, and the known fix if one did).

Open one by hand, from an alert (--from-alert: the alert's agent, site,
severity and summary, and a link to it) or from a session (--from-session:
the session's reason as title, its agent, and a link to it). When an
incident's title, notes or linked alerts match a known fix (patchbay
known-fixes), incidents show offers it as the command that would run it;
nothing runs by itself.

You see and change the incidents of your sites (technician role to
change them); every change is in the audit log (incident.create,
incident.note, incident.link, incident.resolve). ID is an incident ID or a
unique prefix of one, as the list prints it.`,
		`  patchbay incidents create --title "Printer offline" --site acme/paris --agent pc-042 --ticket INC-1234
  patchbay incidents create --from-alert 01a2b3
  patchbay incidents note 01a2b3 "Spooler hung; restarted it"
  patchbay incidents link 01a2b3 --job 01f0c4
  patchbay incidents resolve 01a2b3 --resolution "restarted the spooler" --known-fix spooler-restart`,
		a.incidentsCreateCmd(), a.incidentsListCmd(), a.incidentsShowCmd(), a.incidentsNoteCmd(), a.incidentsLinkCmd(), a.incidentsResolveCmd())
}

func (a *app) incidentsCreateCmd() *cobra.Command {
	var (
		output outputFlag
		req    apiv1.IncidentCreate
	)
	cmd := &cobra.Command{
		Use:   "create (--title TEXT --site SITE | --from-alert ALERT | --from-session SESSION) [--agent AGENT]... [--ticket REF] [--severity S] [--note TEXT]",
		Short: "Open an incident",
		Long: `Open an incident (technician). By hand it needs --title and a site (--site,
or an --agent of that site). --from-alert ALERT takes the alert's agent,
site, severity and summary (as the title) and links the alert;
--from-session SESSION takes the session's reason as title and its agent,
and links the session. Flags given override what they take. Agents are
IDs, unique prefixes or hostnames, all of the incident's site.
--severity is info, warning (default) or critical. ` + siteRefHelp,
		Example: `  patchbay incidents create --title "Printer offline" --site acme/paris --agent pc-042 --ticket INC-1234
  patchbay incidents create --from-alert 01a2b3 --ticket INC-1235
  patchbay incidents create --from-session 01c4d5`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Title == "" && req.FromAlert == "" && req.FromSession == "" {
				return usageErrorf(cmd, "give --title (with --site or --agent), --from-alert or --from-session")
			}
			return a.withClient(func(c *client.Client) error {
				x, err := c.CreateIncident(cmd.Context(), req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, x)
				}
				fmt.Fprintf(a.stdout, "Opened incident %s: %s (%s, %s).\n", clean(x.ID), clean(x.Title), clean(x.Site), clean(x.Severity))
				a.printKnownFixes(x.KnownFixes)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Title, "title", "", "what is wrong, in a line")
	f.StringVar(&req.Site, "site", "", "the site the incident is about")
	f.StringArrayVar(&req.Agents, "agent", nil, "an agent it is about (ID, prefix or hostname); repeatable")
	f.StringVar(&req.Ticket, "ticket", "", "ticket reference in your ticket system, e.g. INC-1234")
	f.StringVar(&req.Severity, "severity", "", "info, warning or critical (default warning, or the alert's)")
	f.StringVar(&req.Note, "note", "", "a first note (Markdown)")
	f.StringVar(&req.FromAlert, "from-alert", "", "open it from this alert (ID or prefix)")
	f.StringVar(&req.FromSession, "from-session", "", "open it from this session (ID or prefix)")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) incidentsListCmd() *cobra.Command {
	var (
		output outputFlag
		f      client.IncidentFilter
	)
	cmd := &cobra.Command{
		Use:     "list [--state open|resolved] [--site SITE] [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List incidents, newest first",
		Long:    `List the incidents of your sites, newest first (at most 1000). ` + siteRefHelp,
		Example: `  patchbay incidents list --state open
  patchbay incidents list --site acme/paris -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				list, err := c.Incidents(cmd.Context(), f)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, list)
				}
				t := newTable(a.stdout, "ID", "STATE", "SEVERITY", "SITE", "TICKET", "AGENTS", "OPENED", "TITLE")
				for _, x := range list {
					t.row(x.ID, x.State, x.Severity, x.Site, x.Ticket, strings.Join(x.Hostnames, ","), fmtTime(x.CreatedAt), x.Title)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&f.State, "state", "", "only incidents in this state: open or resolved")
	cmd.Flags().StringVar(&f.Site, "site", "", "only incidents of this site")
	addOutputFlag(cmd, &output)
	return cmd
}

// printKnownFixes offers the known fixes that match (never runs them).
func (a *app) printKnownFixes(fixes []apiv1.KnownFixHint) {
	for _, k := range fixes {
		fmt.Fprintf(a.stdout, "Known fix: %s — %s\n", clean(k.Name), clean(k.Command))
	}
}

func (a *app) printIncident(x apiv1.Incident) {
	w := a.stdout
	fmt.Fprintf(w, "Incident %s: %s\n", clean(x.ID), clean(x.Title))
	fmt.Fprintf(w, "  State:    %s\n  Severity: %s\n  Site:     %s\n", clean(x.State), clean(x.Severity), clean(x.Site))
	if x.Ticket != "" {
		fmt.Fprintf(w, "  Ticket:   %s\n", clean(x.Ticket))
	}
	for i, id := range x.Agents {
		host := ""
		if i < len(x.Hostnames) {
			host = " (" + clean(x.Hostnames[i]) + ")"
		}
		fmt.Fprintf(w, "  Agent:    %s%s\n", clean(id), host)
	}
	fmt.Fprintf(w, "  Opened:   %s by %s\n", fmtTime(x.CreatedAt), clean(x.CreatedBy))
	if x.State == "resolved" {
		fmt.Fprintf(w, "  Resolved: %s by %s\n", fmtTime(x.ResolvedAt), clean(x.ResolvedBy))
		fmt.Fprintln(w, "  Resolution:")
		for _, line := range strings.Split(x.Resolution, "\n") {
			fmt.Fprintf(w, "    %s\n", cleanLine(line))
		}
		if x.KnownFix != "" {
			fmt.Fprintf(w, "  Fixed by known fix: %s\n", clean(x.KnownFix))
		}
	}
	for _, l := range x.Links {
		fmt.Fprintf(w, "  Linked %s: %s\n", clean(l.Kind), clean(l.ID))
	}
	for _, n := range x.Notes {
		fmt.Fprintf(w, "\n  Note by %s at %s:\n", clean(n.Author), fmtTime(n.CreatedAt))
		for _, line := range strings.Split(n.Body, "\n") {
			fmt.Fprintf(w, "    %s\n", cleanLine(line))
		}
	}
	if len(x.KnownFixes) > 0 {
		fmt.Fprintln(w)
		a.printKnownFixes(x.KnownFixes)
	}
}

func (a *app) incidentsShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "show ID [-o table|json]",
		Short: "Show an incident: notes, links, resolution and matching known fixes",
		Long: `Show an incident with its notes (Markdown, as written), its linked
sessions, jobs and alerts, its resolution, and the known fixes whose
symptom it shows, each as the command that would run it (offered, never
run by itself).`,
		Example: `  patchbay incidents show 01a2b3`,
		Args:    oneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				x, err := c.Incident(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, x)
				}
				a.printIncident(x)
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) incidentsNoteCmd() *cobra.Command {
	var (
		output outputFlag
		file   string
	)
	cmd := &cobra.Command{
		Use:   "note ID (TEXT | --file F)",
		Short: "Add a note (Markdown) to an incident",
		Long: `Add a note in Markdown to an incident (technician). Notes are only ever
added, with your name and the time; at most 32 KiB each. --file reads
the note from a file ("-": standard input). Audited as incident.note.`,
		Example: `  patchbay incidents note 01a2b3 "Spooler hung; restarted it"
  patchbay incidents note 01a2b3 --file findings.md`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageErrorf(cmd, "%s needs ID and TEXT (or ID and --file F)", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var body string
			switch {
			case len(args) == 2 && file != "":
				return usageErrorf(cmd, "give TEXT or --file, not both")
			case len(args) == 2:
				body = args[1]
			case file == "-":
				b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<20))
				if err != nil {
					return fmt.Errorf("read note from standard input: %w", err)
				}
				body = string(b)
			case file != "":
				b, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("--file: %w", err)
				}
				body = string(b)
			default:
				return usageErrorf(cmd, "give the note as TEXT or --file F")
			}
			return a.withClient(func(c *client.Client) error {
				x, err := c.NoteIncident(cmd.Context(), args[0], body)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, x)
				}
				fmt.Fprintf(a.stdout, "Added a note to incident %s (%d notes).\n", clean(x.ID), len(x.Notes))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", `read the note from this file ("-": standard input)`)
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) incidentsLinkCmd() *cobra.Command {
	var (
		output outputFlag
		link   apiv1.IncidentLinkAdd
	)
	cmd := &cobra.Command{
		Use:   "link ID (--job JOB | --session SESSION | --alert ALERT)",
		Short: "Link a job, session or alert to an incident",
		Long: `Link a job, session or alert (ID or unique prefix, of your sites) to an
incident (technician). Linking one twice keeps one link. Audited as
incident.link.`,
		Example: `  patchbay incidents link 01a2b3 --job 01f0c4
  patchbay incidents link 01a2b3 --alert 01e9d2`,
		Args: oneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				x, err := c.LinkIncident(cmd.Context(), args[0], link)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, x)
				}
				fmt.Fprintf(a.stdout, "Incident %s has %d links.\n", clean(x.ID), len(x.Links))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&link.Job, "job", "", "a job ID or prefix")
	cmd.Flags().StringVar(&link.Session, "session", "", "a session ID or prefix")
	cmd.Flags().StringVar(&link.Alert, "alert", "", "an alert ID or prefix")
	cmd.MarkFlagsMutuallyExclusive("job", "session", "alert")
	cmd.MarkFlagsOneRequired("job", "session", "alert")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) incidentsResolveCmd() *cobra.Command {
	var (
		output outputFlag
		req    apiv1.IncidentResolve
	)
	cmd := &cobra.Command{
		Use:   "resolve ID --resolution TEXT [--known-fix NAME]",
		Short: "Resolve an incident, saying what fixed it",
		Long: `Resolve an incident (technician), saying what fixed it: --resolution is
required; on a terminal without it you are asked. --known-fix names the
known fix that did it (patchbay known-fixes list), so the next one finds
it. Audited as incident.resolve with the resolution.`,
		Example: `  patchbay incidents resolve 01a2b3 --resolution "restarted the spooler" --known-fix spooler-restart`,
		Args:    oneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(req.Resolution) == "" {
				if _, ok := a.terminal(); !ok {
					return usageErrorf(cmd, "--resolution is required: say what fixed it")
				}
				fmt.Fprint(a.stderr, "What fixed it? ")
				line, err := a.stdinLine("resolution")
				if err != nil {
					return err
				}
				req.Resolution = line
			}
			return a.withClient(func(c *client.Client) error {
				x, err := c.ResolveIncident(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, x)
				}
				fmt.Fprintf(a.stdout, "Incident %s is resolved: %s\n", clean(x.ID), clean(x.Resolution))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&req.Resolution, "resolution", "", "what fixed it")
	cmd.Flags().StringVar(&req.KnownFix, "known-fix", "", "the known fix that fixed it, by name")
	addOutputFlag(cmd, &output)
	return cmd
}
