package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
)

func (a *app) alertsCmd() *cobra.Command {
	return group("alerts", "List, acknowledge and resolve alerts",
		`The relay opens an alert when a check fails (check), an agent stays offline
longer than patchbay-server serve --alert-offline-after (agent_offline), a
job's failure gate halts it (job_halted) or a self-heal does not fix its
check (selfheal_failed). An alert is open, then acknowledged by a person,
then resolved: by a person, or by itself when its condition clears (the
check passes, the agent comes back). One alert per agent, kind and check:
raising it again while it is open or acknowledged counts it (COUNT) instead
of opening another. Every change is in the audit log (actor "system" for
the relay's own) and is sent to the matching alert routes (patchbay
alert-routes). You see the alerts of your sites; alerts about no single
site (a job over several sites) only admins and people granted every site.

ID is an alert ID or a unique prefix of one, as the list prints it.`,
		`  patchbay alerts list
  patchbay alerts list --state open --site acme/paris -o json
  patchbay alerts ack 01a2b3 --note "on it, ticket 4411"
  patchbay alerts resolve 01a2b3 --note "replaced the disk"`,
		a.alertsListCmd(), a.alertsShowCmd(), a.alertsChangeCmd("ack", "Acknowledge an alert (you are on it)"),
		a.alertsChangeCmd("resolve", "Resolve an alert by hand"))
}

func (a *app) alertsListCmd() *cobra.Command {
	var (
		output outputFlag
		f      client.AlertFilter
	)
	cmd := &cobra.Command{
		Use:     "list [--state open|acknowledged|resolved] [--site SITE] [--kind KIND] [--agent AGENT] [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List alerts, newest first",
		Long: `List the alerts of your sites, newest first (at most 1000). Without --state
every state is listed. ` + siteRefHelp,
		Example: `  patchbay alerts list --state open
  patchbay alerts list --kind agent_offline --site acme/paris`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				list, err := c.Alerts(cmd.Context(), f)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, list)
				}
				t := newTable(a.stdout, "ID", "STATE", "SEVERITY", "KIND", "AGENT", "CHECK", "COUNT", "LAST SEEN", "SUMMARY")
				for _, x := range list {
					who := x.Hostname
					if who == "" {
						who = x.AgentID
					}
					t.row(x.ID, x.State, x.Severity, x.Kind, who, x.Check, strconv.Itoa(x.Count), fmtTime(x.LastSeen), x.Summary)
				}
				if err := t.flush(); err != nil {
					return err
				}
				for _, x := range list {
					for _, k := range x.KnownFixes {
						fmt.Fprintf(a.stdout, "Known fix: %s — %s (alert %s)\n", clean(k.Name), clean(k.Command), clean(x.ID))
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&f.State, "state", "", "only alerts in this state: open, acknowledged or resolved")
	cmd.Flags().StringVar(&f.Site, "site", "", "only alerts of this site")
	cmd.Flags().StringVar(&f.Kind, "kind", "", "only alerts of this kind: check, agent_offline, job_halted, selfheal_failed")
	cmd.Flags().StringVar(&f.Agent, "agent", "", "only alerts about this agent (ID, prefix or hostname)")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) alertsShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "show ID [-o table|json]",
		Short: "Show an alert and the known fixes that match it",
		Long: `Show an alert, and the known fixes (patchbay known-fixes) whose symptom
it shows, each as the command that would run it on the alert's agent
(offered, never run by itself).`,
		Example: `  patchbay alerts show 01a2b3`,
		Args:    oneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				x, err := c.Alert(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, x)
				}
				w := a.stdout
				fmt.Fprintf(w, "Alert %s: %s\n", clean(x.ID), clean(x.Summary))
				fmt.Fprintf(w, "  State:    %s\n  Severity: %s\n  Kind:     %s\n", clean(x.State), clean(x.Severity), clean(x.Kind))
				if x.AgentID != "" {
					fmt.Fprintf(w, "  Agent:    %s (%s)\n", clean(x.AgentID), clean(x.Hostname))
				}
				if x.Check != "" {
					fmt.Fprintf(w, "  Check:    %s\n", clean(x.Check))
				}
				if x.Site != "" {
					fmt.Fprintf(w, "  Site:     %s\n", clean(x.Site))
				}
				fmt.Fprintf(w, "  Opened:   %s, last seen %s, %d times\n", fmtTime(x.OpenedAt), fmtTime(x.LastSeen), x.Count)
				if x.Note != "" {
					fmt.Fprintf(w, "  Note:     %s\n", clean(x.Note))
				}
				a.printKnownFixes(x.KnownFixes)
				return nil
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) alertsChangeCmd(verb, short string) *cobra.Command {
	var (
		output outputFlag
		note   string
	)
	long := `Acknowledge the alert (technician): you are on it. It stays acknowledged
until it resolves, by itself when its condition clears or by patchbay alerts
resolve. Audited as alert.ack with your note.`
	if verb == "resolve" {
		long = `Resolve the alert by hand (technician), e.g. once you fixed what the relay
cannot see clear. If its condition is still there, the next check opens a
new alert. Audited as alert.resolve with your note.`
	}
	cmd := &cobra.Command{
		Use:     verb + " ID [--note TEXT] [-o table|json]",
		Short:   short,
		Long:    long,
		Example: fmt.Sprintf("  patchbay alerts %s 01a2b3 --note \"ticket 4411\"", verb),
		Args:    oneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				var (
					x   apiv1.Alert
					err error
				)
				if verb == "ack" {
					x, err = c.AckAlert(cmd.Context(), args[0], note)
				} else {
					x, err = c.ResolveAlert(cmd.Context(), args[0], note)
				}
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, x)
				}
				fmt.Fprintf(a.stdout, "Alert %s is %s: %s\n", clean(x.ID), clean(x.State), clean(x.Summary))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why (kept with the alert and in the audit log)")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) alertRoutesCmd() *cobra.Command {
	return group("alert-routes", "Send alerts to webhooks and e-mail",
		`An alert route sends the alerts of one site (or all) at or above a
severity to a webhook or to e-mail, whenever an alert opens, is
acknowledged or resolves. Managing routes needs the admin role.

Webhooks get a JSON POST signed with the route's secret:
  X-Patchbay-Timestamp: UNIX-SECONDS
  X-Patchbay-Signature: sha256=HEX(HMAC-SHA256(secret, TIMESTAMP + "." + BODY))
  X-Patchbay-Delivery:  notification ID (the same on a retry)
  X-Patchbay-Event:     open | ack | resolve
Check the signature over the raw body before parsing it, and refuse old
timestamps. Any 2xx answer is success.

E-mail goes over SMTP with STARTTLS (required, except to a loopback server)
and PLAIN authentication when --smtp-user is given.

Notifications are stored before they are sent: one that fails is retried
with growing, jittered delays for 24 hours, also across relay restarts, so
a receiver that was down gets what it missed once it is back. Delivery is
at least once: use X-Patchbay-Delivery to drop a duplicate.`,
		`  patchbay alert-routes create --site all --min-severity warning \
      --webhook https://hooks.example.com/patchbay --secret-file hook.key
  patchbay alert-routes create --site acme/paris --min-severity critical \
      --smtp smtp://mail.example.com:587 --from patchbay@example.com --to oncall@example.com \
      --smtp-user patchbay --smtp-password-file smtp.pass
  patchbay alert-routes list
  patchbay alert-routes delete 01a2b3`,
		a.alertRoutesCreateCmd(), a.alertRoutesListCmd(), a.alertRoutesDeleteCmd())
}

// readSecret reads a secret file: its first line, trimmed.
func readSecret(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	s := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if s == "" {
		return "", fmt.Errorf("%s %s: the file is empty: put the secret on its first line", flag, path)
	}
	return s, nil
}

func (a *app) alertRoutesCreateCmd() *cobra.Command {
	var (
		output                       outputFlag
		r                            apiv1.AlertRoute
		webhook, secretFile, smtpURL string
		passFile, caFile             string
	)
	cmd := &cobra.Command{
		Use:   "create --site SITE|all --min-severity info|warning|critical (--webhook URL --secret-file F | --smtp smtp://HOST:PORT --from ADDR --to ADDR [--smtp-user U --smtp-password-file F]) [--ca-file PEM]",
		Short: "Create an alert route",
		Long: `Create an alert route (admin): the alerts of --site (or all sites) at or
above --min-severity go to --webhook or --smtp. The webhook's secret and
the SMTP password are read from files so that they stay out of the shell
history; they are kept in the relay's database. --ca-file trusts a private
CA for the receiver's certificate. ` + siteRefHelp,
		Example: `  patchbay alert-routes create --site all --min-severity warning \
      --webhook https://hooks.example.com/patchbay --secret-file hook.key
  patchbay alert-routes create --site acme/paris --min-severity critical \
      --smtp smtp://mail.example.com:587 --from patchbay@example.com --to oncall@example.com \
      --smtp-user patchbay --smtp-password-file smtp.pass`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case webhook != "" && smtpURL != "":
				return fmt.Errorf("give --webhook or --smtp, not both: create two routes")
			case webhook != "":
				r.Kind, r.Target = "webhook", webhook
				if secretFile == "" {
					return fmt.Errorf("--webhook needs --secret-file: a file holding the HMAC key receivers verify with")
				}
				s, err := readSecret("--secret-file", secretFile)
				if err != nil {
					return err
				}
				r.Secret = s
			case smtpURL != "":
				r.Kind, r.Target = "smtp", smtpURL
				if passFile != "" {
					s, err := readSecret("--smtp-password-file", passFile)
					if err != nil {
						return err
					}
					r.Secret = s
				}
			default:
				return fmt.Errorf("give --webhook URL or --smtp smtp://HOST:PORT")
			}
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				r.CAPEM = string(b)
			}
			return a.withClient(func(c *client.Client) error {
				got, err := c.CreateAlertRoute(cmd.Context(), r)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, got)
				}
				fmt.Fprintf(a.stdout, "Created alert route %s: %s alerts of %s at or above %s to %s.\n",
					clean(got.ID), clean(got.Kind), clean(got.Site), clean(got.MinSeverity), clean(got.Target))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&r.Site, "site", "all", `the site whose alerts go this way, or "all"`)
	cmd.Flags().StringVar(&r.MinSeverity, "min-severity", "warning", "the least severity sent: info, warning or critical")
	cmd.Flags().StringVar(&webhook, "webhook", "", "the webhook's URL (https://...)")
	cmd.Flags().StringVar(&secretFile, "secret-file", "", "file holding the webhook's HMAC secret")
	cmd.Flags().StringVar(&smtpURL, "smtp", "", "the SMTP server: smtp://HOST:PORT (STARTTLS)")
	cmd.Flags().StringVar(&r.From, "from", "", "the sender address of alert mails")
	cmd.Flags().StringSliceVar(&r.To, "to", nil, "recipient address (repeatable, or comma-separated)")
	cmd.Flags().StringVar(&r.User, "smtp-user", "", "SMTP user name (PLAIN auth, only over TLS)")
	cmd.Flags().StringVar(&passFile, "smtp-password-file", "", "file holding the SMTP password")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM CA certificate of the receiver (default: the system's)")
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) alertRoutesListCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:     "list [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "List alert routes",
		Long:    `List the alert routes (admin). Secrets are not shown.`,
		Example: `  patchbay alert-routes list
  patchbay alert-routes list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				list, err := c.AlertRoutes(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, list)
				}
				t := newTable(a.stdout, "ID", "SITE", "MIN SEVERITY", "KIND", "TARGET", "TO", "CREATED")
				for _, r := range list {
					t.row(r.ID, r.Site, r.MinSeverity, r.Kind, r.Target, strings.Join(r.To, ","), fmtTime(r.CreatedAt))
				}
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) alertRoutesDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an alert route",
		Long: `Delete an alert route (admin) and what is still queued for it. ID is the
route's ID or a unique prefix of it (at least 4 characters). Audited.`,
		Example: `  patchbay alert-routes delete 01a2b3`,
		Args:    oneArg("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				if err := c.DeleteAlertRoute(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Deleted alert route %s.\n", clean(args[0]))
				return nil
			})
		},
	}
}
