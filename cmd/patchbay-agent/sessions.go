package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	runAs         string
	idle, maxDur  time.Duration
	shell         string
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
	f.StringVar(&s.runAs, "session-user", "", "local account that sessions run as (needs the agent to run as root); default: the agent's own account")
	f.DurationVar(&s.idle, "session-idle-timeout", session.DefaultIdleTimeout, "end a session after this long without a byte either way (0: never)")
	f.DurationVar(&s.maxDur, "session-max-duration", session.DefaultMaxDuration, "end a session after this long whatever happens (0: no limit)")
	f.StringVar(&s.shell, "session-shell", "", "shell for sessions (default: the account's login shell, else /bin/sh)")
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
		Short: "List the live interactive sessions on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
			defer cancel()
			live, err := session.LocalList(ctx, socket())
			if err != nil {
				return err
			}
			if o, _ := cmd.Flags().GetString("output"); o == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				type item struct {
					ID           string    `json:"id"`
					Technician   string    `json:"technician"`
					Reason       string    `json:"reason"`
					Capabilities []string  `json:"capabilities"`
					Started      time.Time `json:"started"`
				}
				out := []item{}
				for _, l := range live {
					out = append(out, item{l.ID, l.Technician, l.Reason, l.Capabilities, l.Started})
				}
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTECHNICIAN\tREASON\tCAPABILITIES\tSTARTED")
			for _, l := range live {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.ID, l.Technician, l.Reason, strings.Join(l.Capabilities, ","), l.Started.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
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
		Short: "See and end the interactive sessions on this machine",
		Long: `See and end the technicians' interactive sessions on this machine. They talk to the
running agent through its control socket (DATA/agent.sock, usable only by the agent's
own account). The person at the machine can also end a session from the consent page
or dialog.`,
		Example: `  patchbay-agent sessions list
  patchbay-agent sessions end 0193a1b2-...
  patchbay-agent sessions end all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&dir, "data", defaultDataDir(), dataHelp)
	cmd.AddCommand(list, end)
	return cmd
}
