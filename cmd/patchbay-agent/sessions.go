package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/session"
)

// sessionFlags are run's flags for interactive sessions. The consent flags
// are saved in DATA/consent.json when given, so the policy survives restarts
// and service managers that start the agent without them.
type sessionFlags struct {
	mode, backend string
	timeout       time.Duration
	remember      time.Duration
	webAddr       string
	whenNoUser    string
	ask           string
	helperSocket  string
	reboot        string
	rebootTonight string
	rebootCommand string
	runAs         string
	idle, maxDur  time.Duration
	shell         string
	desktop       desktopFlags
}

func (s *sessionFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.mode, "consent-mode", "", "consent policy for interactive sessions: prompt (the user must approve; default), notify (the user is told and can end it) or unattended (servers); saved in DATA/consent.json")
	f.StringVar(&s.backend, "consent-backend", "", "how the user is asked: auto (default: a desktop dialog where the agent has a display; as root without one, the helpers in users' sessions; else the web page), helper, desktop, web, tty or exec:/path/to/program; saved")
	f.StringVar(&s.whenNoUser, "consent-when-no-user", "", "helper backend, nobody logged in to ask: deny (default), allow, or notify (allow, and show the session to whoever logs in); saved")
	f.StringVar(&s.ask, "consent-ask", "", "helper backend, several users logged in: console (default: the console's user) or all (every user with a helper; first answer wins); saved")
	f.StringVar(&s.helperSocket, "consent-helper-socket", "", "helper backend: the unix socket helpers connect to (default "+consent.DefaultHelperSocket+"); saved")
	f.DurationVar(&s.timeout, "consent-timeout", 0, "no answer within this long denies the request (default 60s); saved")
	f.StringVar(&s.webAddr, "consent-web-addr", "", "loopback address of the consent web page (default 127.0.0.1:0, a free port); saved")
	f.DurationVar(&s.remember, "consent-remember", 0, "prompt mode: an approval also covers the same technician's requests for the same or fewer capabilities for this long (e.g. 15m; default 0: always ask; at most 8h; forgotten when the user ends a session or the agent restarts); saved")
	f.StringVar(&s.reboot, "consent-reboot", "", "a fix that may reboot requires a restart: ask (default: a logged-in user chooses restart now / in 1 hour / tonight, no answer means tonight; nobody logged in: now), never (the result says a restart is pending) or force (now, even with users logged in, after telling them); saved")
	f.StringVar(&s.rebootTonight, "consent-reboot-tonight", "", "the local clock time of a \"tonight\" restart, HH:MM (default "+consent.DefaultRebootTonight+"); saved")
	f.StringVar(&s.rebootCommand, "consent-reboot-command", "", "absolute path of the program that schedules a restart, run as PROGRAM now|1h|tonight SECONDS RFC3339-TIME (default: shutdown -r now|+60|HH:MM, on Windows shutdown /r /t SECONDS); \"\" restores the default; saved")
	f.StringVar(&s.runAs, "session-user", "", "local account that sessions run as (needs the agent to run as root; on Windows only \"console\", the user logged in at the console, with the agent running as LocalSystem); default: the agent's own account")
	f.DurationVar(&s.idle, "session-idle-timeout", session.DefaultIdleTimeout, "end a session after this long without a byte either way (0: never)")
	f.DurationVar(&s.maxDur, "session-max-duration", session.DefaultMaxDuration, "end a session after this long whatever happens (0: no limit)")
	f.StringVar(&s.shell, "session-shell", "", "shell for sessions (default: the account's login shell, else /bin/sh)")
	s.desktop.register(f)
}

// policy loads DATA/consent.json, applies the flags given on this command
// line and saves the result when anything changed.
func (s *sessionFlags) policy(cmd *cobra.Command, dir string) (consent.Policy, error) {
	p, err := consent.LoadPolicy(dir)
	if err != nil {
		return p, err
	}
	changed := false
	f := cmd.Flags()
	if f.Changed("consent-mode") {
		m, err := consent.ParseMode(s.mode)
		if err != nil {
			return p, fmt.Errorf("--consent-mode: %w", err)
		}
		p.Mode, changed = m, true
	}
	if f.Changed("consent-backend") {
		b, err := consent.ParseBackend(s.backend)
		if err != nil {
			return p, fmt.Errorf("--consent-backend: %w", err)
		}
		p.Backend, changed = b, true
	}
	if f.Changed("consent-timeout") {
		p.Timeout, changed = s.timeout, true
	}
	if f.Changed("consent-web-addr") {
		p.WebAddr, changed = s.webAddr, true
	}
	if f.Changed("consent-remember") {
		p.Remember, changed = s.remember, true
	}
	if f.Changed("consent-when-no-user") {
		p.WhenNoUser, changed = s.whenNoUser, true
	}
	if f.Changed("consent-ask") {
		p.Ask, changed = s.ask, true
	}
	if f.Changed("consent-helper-socket") {
		p.HelperSocket, changed = s.helperSocket, true
	}
	if f.Changed("consent-reboot") {
		r, err := consent.ParseReboot(s.reboot)
		if err != nil {
			return p, fmt.Errorf("--consent-reboot: %w", err)
		}
		p.Reboot, changed = r, true
	}
	if f.Changed("consent-reboot-tonight") {
		p.RebootTonight, changed = s.rebootTonight, true
	}
	if f.Changed("consent-reboot-command") {
		p.RebootCommand, changed = s.rebootCommand, true
	}
	if err := p.Validate(); err != nil {
		return p, err
	}
	if changed {
		if err := consent.SavePolicy(dir, p); err != nil {
			return p, err
		}
	}
	return p, nil
}

// orNone turns the flags' "0 means never" into the manager's "negative
// means none".
func orNone(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// liveSessions hands the consent web page the session manager, which is
// created after it.
type liveSessions struct{ m **session.Manager }

func (l liveSessions) Live() []consent.Live {
	if *l.m == nil {
		return nil
	}
	return (*l.m).Live()
}

func (l liveSessions) End(id, by string) error {
	if *l.m == nil {
		return session.ErrNoSession
	}
	return (*l.m).End(id, by)
}

func newSessionsCmd() *cobra.Command {
	var dir string
	socket := func() string { return filepath.Join(dir, session.SocketFile) }
	list := &cobra.Command{
		Use:   "list",
		Short: "List the live interactive sessions and the requests waiting for an answer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			live, pending, err := session.LocalList(ctx, socket())
			if err != nil {
				return err
			}
			if o, _ := cmd.Flags().GetString("output"); o == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				type item struct {
					ID           string    `json:"id"`
					State        string    `json:"state"`
					Kind         string    `json:"kind"`
					Technician   string    `json:"technician"`
					Reason       string    `json:"reason"`
					Capabilities []string  `json:"capabilities,omitempty"`
					Fix          string    `json:"fix,omitempty"`
					Started      time.Time `json:"started,omitzero"`
					Deadline     time.Time `json:"deadline,omitzero"`
				}
				out := []item{}
				for _, p := range pending {
					out = append(out, item{ID: p.ID, State: "waiting", Kind: orSession(p.Kind), Technician: p.Technician, Reason: p.Reason,
						Capabilities: p.Capabilities, Fix: p.Fix, Deadline: p.Deadline})
				}
				for _, l := range live {
					out = append(out, item{ID: l.ID, State: "live", Kind: "session", Technician: l.Technician, Reason: l.Reason, Capabilities: l.Capabilities, Started: l.Started})
				}
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tTECHNICIAN\tREASON\tASKS FOR\tSINCE / UNTIL")
			for _, p := range pending {
				what := strings.Join(p.Capabilities, ",")
				if p.Fix != "" {
					what = "fix: " + p.Fix
				}
				fmt.Fprintf(tw, "%s\twaiting\t%s\t%s\t%s\tanswer by %s (%s left)\n", p.ID, p.Technician, p.Reason, what,
					p.Deadline.Local().Format(time.TimeOnly), time.Until(p.Deadline).Round(time.Second))
			}
			for _, l := range live {
				fmt.Fprintf(tw, "%s\tlive\t%s\t%s\t%s\t%s\n", l.ID, l.Technician, l.Reason, strings.Join(l.Capabilities, ","), l.Started.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	answer := func(approve bool) *cobra.Command {
		verb, use := "deny", "Deny a request waiting for the person at this machine"
		if approve {
			verb, use = "approve", "Approve a request waiting for the person at this machine (headless boxes)"
		}
		return &cobra.Command{
			Use:   verb + " ID",
			Short: use,
			Long: use + `.

For machines where nobody sits at the screen: a local administrator answers a request
from a terminal, as the person at the machine would. The answer is recorded as theirs
(the account running this command, and the sudo user if any) in the agent's signed
decision and the relay's audit log. The first answer wins, wherever it comes from.
ID is the request's ID (or a unique prefix) from "patchbay-agent sessions list".`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
				defer cancel()
				_, pending, err := session.LocalList(ctx, socket())
				if err != nil {
					return err
				}
				id, err := matchPending(pending, args[0])
				if err != nil {
					return err
				}
				if err := session.LocalAnswer(ctx, socket(), id, approve, localAdmin()); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sd %s\n", strings.TrimSuffix(verb, "e"), id)
				return nil
			},
		}
	}
	list.Flags().StringP("output", "o", "table", "table or json")
	end := &cobra.Command{
		Use:   "end ID|all",
		Short: "End a live session at once (the technician is told why)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			if err := session.LocalEnd(ctx, socket(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ended %s\n", args[0])
			return nil
		},
	}
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "See, answer and end the interactive sessions on this machine",
		Long: `See the technicians' interactive sessions on this machine and the requests (sessions,
and fixes that need consent) waiting for an answer; approve or deny a waiting request
as a local administrator (headless boxes); end a live session. They talk to the running
agent through its control socket (DATA/agent.sock, usable only by the agent's own
account). The person at the machine can also answer and end from the helper's windows,
the consent page or dialog.`,
		Example: `  patchbay-agent sessions list
  patchbay-agent sessions approve 0193a1b2
  patchbay-agent sessions deny 0193a1b2
  patchbay-agent sessions end 0193a1b2-...
  patchbay-agent sessions end all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&dir, "data", defaultDataDir(), dataHelp)
	cmd.AddCommand(list, end, answer(true), answer(false))
	return cmd
}

// orSession names a request's kind, "session" when empty.
func orSession(kind string) string {
	if kind == "" {
		return consent.KindSession
	}
	return kind
}

// matchPending resolves an ID or unique ID prefix among the pending requests.
func matchPending(pending []session.Pending, arg string) (string, error) {
	var found []string
	for _, p := range pending {
		if p.ID == arg {
			return p.ID, nil
		}
		if strings.HasPrefix(p.ID, arg) {
			found = append(found, p.ID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("no request %q is waiting for an answer (see patchbay-agent sessions list)", arg)
	}
	return "", fmt.Errorf("%q matches %d waiting requests (%s): give more of the ID", arg, len(found), strings.Join(found, ", "))
}

// localAdmin names who answers from this terminal: the account, and the
// user who ran sudo.
func localAdmin() string {
	name := "local administrator"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if s := os.Getenv("SUDO_USER"); s != "" && s != name && len(s) < 32 {
		name += " (sudo by " + s + ")"
	}
	return name
}
