package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
)

func (a *app) reportsScheduleCmd() *cobra.Command {
	return group("schedule", "Mail a report on a schedule",
		`A report schedule mails the report of the period before each fire time
(--period, default 7d) of a cron spec read in a time zone, for one site or
every site its owner reaches: a plain-text summary in the body and the
report attached as CSV (default), JSON or HTML. The mail goes out through
the SMTP server of an alert route (--route; without it the one SMTP route
that takes the site's alerts): its server, sender, login and TLS settings,
to --to (repeatable) or else the route's recipients. One relay of a tier
sends each firing; a mail the SMTP server refused is retried with backoff
for a day like an alert. Admins create and delete them (audited as
schedule.create, report.mail and schedule.delete); pause and resume with
patchbay schedules pause|resume.`,
		`  patchbay reports schedule create weekly --cron '0 7 * * 1' --tz Europe/Berlin \
      --site acme/paris --period 7d --to ops@example.com --format csv
  patchbay reports schedule list
  patchbay reports schedule delete weekly`,
		a.reportsScheduleCreateCmd(), a.reportsScheduleListCmd(), a.reportsScheduleDeleteCmd())
}

func (a *app) reportsScheduleCreateCmd() *cobra.Command {
	var (
		req    apiv1.ReportScheduleCreate
		output outputFlag
	)
	cmd := &cobra.Command{
		Use:   "create [NAME] --cron SPEC [--tz TZ] [--site SITE] [--period P] [--to ADDR]... [--route ROUTE] [--format csv|json|html]",
		Short: "Mail a report at each fire time of a cron spec (admin)",
		Long: `Mail the report of the period before each fire time of --cron (read in
--tz) for --site (default every site you reach). --period is 7d (days),
1w (weeks), 1mo (calendar months) or 24h (hours), at most a year; a
firing at 07:00 on Monday with --period 7d reports [previous Monday 07:00,
this Monday 07:00). --route is an SMTP alert route's ID or ID prefix
(patchbay alert-routes list). The name is given as NAME or --name.
Audited as schedule.create. ` + siteRefHelp,
		Example: `  patchbay reports schedule create --name weekly --cron '0 7 * * 1' --tz Europe/Berlin \
      --site acme/paris --to ops@example.com --to lead@example.com
  patchbay reports schedule create monthly --cron '0 6 1 * *' --period 1mo --format html -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if req.Name != "" && req.Name != args[0] {
					return usageErrorf(cmd, "give the name once: NAME or --name")
				}
				req.Name = args[0]
			}
			if req.Name == "" || req.Cron == "" {
				return usageErrorf(cmd, "a name (NAME or --name) and --cron are required")
			}
			return a.withClient(func(c *client.Client) error {
				s, err := c.CreateReportSchedule(cmd.Context(), req)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, s)
				}
				fmt.Fprintf(a.stdout, "Created report schedule %s, ID %s; next mail %s.\n", clean(s.Name), s.ID, reportNext(s))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "the schedule's name")
	f.StringVar(&req.Cron, "cron", "", "cron spec of the fire times (required), e.g. '0 7 * * 1'")
	f.StringVar(&req.TZ, "tz", "UTC", "time zone the spec is read in (IANA name)")
	f.StringVar(&req.Site, "site", "", "only this site (ORG/SITE); default every site you reach")
	f.StringVar(&req.Period, "period", "7d", "period before each fire time: 7d, 1w, 1mo, 24h")
	f.StringArrayVar(&req.To, "to", nil, "recipient address; repeatable (default: the route's recipients)")
	f.StringVar(&req.Route, "route", "", "SMTP alert route (ID or prefix) the mail goes through")
	f.StringVar(&req.Format, "format", "csv", "attachment format: csv, json or html")
	addOutputFlag(cmd, &output)
	return cmd
}

func reportNext(s apiv1.ReportSchedule) string {
	if s.Paused || s.NextFire == nil {
		return "paused"
	}
	return fmtTime(*s.NextFire)
}

// lastSendText is the LAST SEND column: the last mail's state, or why the
// last firing sent none.
func lastSendText(s apiv1.ReportSchedule) string {
	switch {
	case s.LastSend != nil && s.LastSend.Error != "":
		return fmt.Sprintf("%s after %d attempt(s): %s", s.LastSend.State, s.LastSend.Attempts, s.LastSend.Error)
	case s.LastSend != nil:
		return fmt.Sprintf("%s (%d attempt(s))", s.LastSend.State, s.LastSend.Attempts)
	case s.LastError != "":
		return "not sent: " + s.LastError
	}
	return "-"
}

func (a *app) reportsScheduleListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "list [-o table|json]",
		Short: "List report schedules with their next fire time and last send",
		Long: `List the report schedules you see (viewer role). LAST SEND is the last
mail's state: queued (waiting for its first attempt, or retried after a
failure it names), sent, or failed (given up); or why the last firing sent
nothing (the owner left, the route was deleted).`,
		Example: "  patchbay reports schedule list\n  patchbay reports schedule list -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				l, err := c.ReportSchedules(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, l)
				}
				t := newTable(a.stdout, "ID", "NAME", "CRON", "TZ", "SITE", "PERIOD", "FORMAT", "TO", "NEXT", "LAST", "LAST SEND")
				for _, s := range l {
					site, to, last := s.Site, strings.Join(s.To, ","), "-"
					if site == "" {
						site = "all"
					}
					if to == "" {
						to = "(route's)"
					}
					if s.LastFire != nil {
						last = fmtTime(*s.LastFire)
					}
					t.row(s.ID, s.Name, s.Cron, s.TZ, site, s.Period, s.Format, to, reportNext(s), last, lastSendText(s))
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) reportsScheduleDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete SCHEDULE",
		Short: "Delete a report schedule (admin)",
		Long: `Delete a report schedule, named by ID, unique ID prefix or name (a mail
already queued is still sent). Audited as schedule.delete.`,
		Example: "  patchbay reports schedule delete weekly",
		Args:    oneArg("SCHEDULE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteReportSchedule(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Report schedule %s deleted.\n", clean(args[0]))
				return nil
			})
		},
	}
}
