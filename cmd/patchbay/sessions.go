package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
)

// Environment variables patchbay proxy reads, so that an OpenSSH config can
// stay generic: PATCHBAY_REASON="INC-1 printer" ssh kiosk.patchbay.
const (
	envReason       = "PATCHBAY_REASON"
	envCapabilities = "PATCHBAY_CAPABILITIES"
)

// defaultProxyCaps is what an OpenSSH client may do on a session through
// patchbay proxy: shell, commands and file copies. Forwarding is asked for
// explicitly.
const defaultProxyCaps = "shell,exec,sftp"

func (a *app) proxyCmd() *cobra.Command {
	var reason, caps string
	cmd := &cobra.Command{
		Use:   "proxy AGENT",
		Short: "Connect standard input and output to an agent's SSH server (OpenSSH ProxyCommand)",
		Long: `Ask for a session on AGENT (an agent ID, unique ID prefix or hostname, optionally ending in .patchbay)
and connect this command's standard input and output to the agent's SSH server, for
OpenSSH's ProxyCommand. See patchbay ssh-config for a ready-made configuration.

The reason shown to the user comes from --reason or $` + envReason + ` and is required
(set to "" it sends none, which only a relay started with --allow-empty-reason
accepts); the capabilities asked for from --capabilities or $` + envCapabilities + `
(default ` + defaultProxyCaps + `; add "forward" for ssh -L). Progress ("waiting for the user
at pc-042 (45 s left)") and refusals with their reason are printed on standard error,
which OpenSSH shows.`,
		Example: `  ssh -o ProxyCommand='patchbay proxy %h' kiosk-7.patchbay
  PATCHBAY_REASON="INC-4711" scp report.pdf kiosk-7.patchbay:/tmp/`,
		Args: oneArg("AGENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("reason") {
				r, ok := os.LookupEnv(envReason)
				if !ok {
					return usageErrorf(cmd, "--reason (or $%s, e.g. %s=\"INC-4711\" ssh %s) is required: the user at the machine is shown it", envReason, envReason, args[0])
				}
				reason = r
			}
			if !cmd.Flags().Changed("capabilities") {
				if v := os.Getenv(envCapabilities); v != "" {
					caps = v
				}
			}
			capList, err := parseCaps(caps)
			if err != nil {
				return usageErrorf(cmd, "--capabilities: %v", err)
			}
			agent := strings.TrimSuffix(args[0], sshSuffix)
			return a.withClient(func(c *client.Client) error {
				if dir, err := client.SSHDir(); err == nil {
					// Renew the certificate for the next connection; this one
					// already has what ssh loaded.
					_, _ = c.EnsureSSHIdentity(cmd.Context(), dir, time.Hour)
				}
				wd := a.waitDisplay(agent)
				conn, _, err := c.OpenSession(cmd.Context(), client.SessionRequest{
					Agent: agent, Reason: reason, Capabilities: capList, OnStatus: wd.status,
				})
				wd.stop()
				if err != nil {
					return err
				}
				defer conn.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(conn, a.stdin); done <- struct{}{} }()
				go func() { _, _ = io.Copy(a.stdout, conn); done <- struct{}{} }()
				select {
				case <-done:
				case <-cmd.Context().Done():
				}
				if r := conn.CloseReason(); r != "" && !strings.HasSuffix(r, "the technician disconnected") {
					fmt.Fprintf(a.stderr, "patchbay: %s\n", clean(r))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why: shown to the user at the machine verbatim and kept in the audit log (default $"+envReason+"; one of them is required)")
	cmd.Flags().StringVar(&caps, "capabilities", defaultProxyCaps, "what to ask for: shell, exec, sftp, forward (comma-separated)")
	return cmd
}

func (a *app) sshConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh-config",
		Short: "Print an OpenSSH config block for AGENT.patchbay hosts",
		Long: `Print an OpenSSH configuration block so that stock ssh, scp and sftp reach agents as
AGENT.patchbay (an agent ID or hostname), through patchbay proxy, with your key and
short-lived certificate and strict host key checking against the relay's SSH host CA.
It renews the certificate when it has less than an hour left: run it again (or
patchbay login) when ssh says the certificate expired.

Append it to ~/.ssh/config, or use it for one command with ssh -F.`,
		Example: `  patchbay ssh-config >> ~/.ssh/config
  ssh -F <(patchbay ssh-config) web-01.patchbay uptime
  PATCHBAY_REASON="INC-4711" scp -F <(patchbay ssh-config) web-01.patchbay:/var/log/syslog .`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				dir, err := client.SSHDir()
				if err != nil {
					return err
				}
				id, err := c.EnsureSSHIdentity(cmd.Context(), dir, time.Hour)
				if err != nil {
					return err
				}
				self, err := os.Executable()
				if err != nil {
					self = "patchbay"
				}
				if abs, err := filepath.Abs(self); err == nil {
					self = abs
				}
				proxy := shellQuote(self) + " proxy %h"
				if cfg := os.Getenv(client.ConfigEnv); cfg != "" {
					abs, _ := filepath.Abs(cfg)
					proxy = "env " + client.ConfigEnv + "=" + shellQuote(abs) + " " + proxy
				}
				fmt.Fprintf(a.stdout, `# Patchbay: agents as AGENT.patchbay (generated by patchbay ssh-config; certificate valid until %s)
Host *.patchbay
    User %s
    ProxyCommand %s
    IdentityFile %s
    CertificateFile %s
    IdentitiesOnly yes
    UserKnownHostsFile %s
    StrictHostKeyChecking yes
    ServerAliveInterval 30
    Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
`, id.ValidBefore.Local().Format(time.RFC3339), id.Cert.KeyId, proxy, quoteSSH(id.KeyPath()), quoteSSH(id.CertPath()), quoteSSH(id.KnownHostsPath()))
				return nil
			})
		},
	}
	return cmd
}

// quoteSSH quotes a path for ssh_config when it has spaces.
func quoteSSH(p string) string {
	if strings.ContainsAny(p, " \t") {
		return `"` + p + `"`
	}
	return p
}

// sessionRefHelp says how commands that take a session name it.
const sessionRefHelp = `SESSION is a session ID as patchbay sessions list shows it, or any prefix of one that
names a single session (the relay lists the candidates when it names several).`

func (a *app) sessionsCmd() *cobra.Command {
	return group("sessions", "List interactive sessions, read their recordings, end them",
		`Interactive sessions: who asked for which agent, why, what the endpoint's consent policy
decided and by whom, when they started and ended, and the terminal recordings the agents
made (asciicast v2: play them with asciinema play FILE).`,
		`  patchbay sessions list
  patchbay sessions recording 0193a1b2-7c4d > s.cast && asciinema play s.cast`,
		a.sessionsListCmd(), a.sessionsShowCmd(), a.sessionsRecordingCmd(), a.sessionsEndCmd())
}

func (a *app) sessionsListCmd() *cobra.Command {
	var output outputFlag
	var agent string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--agent AGENT] [-o table|json]",
		Short: "List sessions, newest first",
		Long: `List interactive sessions, newest first: the agent, the technician, the state
(requested, approved while live, ended, denied, failed), how the endpoint's consent
policy decided and by whom, when it started, how long it lasted, and the reason.

JSON fields: id, agent_id, hostname, technician, reason, state, capabilities, granted,
requested, started, ended (null until then), consent {decision, mode, backend, by},
message, end_by, end_reason, recording_size.`,
		Example: `  patchbay sessions list
  patchbay sessions list --agent pc-042 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				agentID := ""
				if agent != "" {
					ag, err := c.Agent(cmd.Context(), agent)
					if err != nil {
						return err
					}
					agentID = ag.ID
				}
				list, err := c.Sessions(cmd.Context(), agentID, limit)
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, list)
				}
				return writeSessionsTable(a.stdout, a.now(), list)
			})
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "only this agent's sessions (ID, unique ID prefix or hostname)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many (1-1000)")
	addOutputFlag(cmd, &output)
	return cmd
}

func consentText(c apiv1.Consent) string {
	s := c.Decision
	if c.By != "" {
		s += " by " + c.By
	}
	if c.Mode != "" && c.Mode != "prompt" {
		s += " (" + c.Mode + ")"
	}
	return s
}

func writeSessionsTable(w io.Writer, now time.Time, list []apiv1.Session) error {
	t := newTable(w, "ID", "AGENT", "TECHNICIAN", "STATE", "CONSENT", "STARTED", "DURATION", "REASON")
	for _, s := range list {
		started, dur := "-", "-"
		if s.Started != nil {
			started = fmtTime(*s.Started)
			end := now
			if s.Ended != nil {
				end = *s.Ended
			}
			dur = humanDuration(end.Sub(*s.Started))
		}
		t.row(s.ID, s.Hostname, s.Technician, s.State, consentText(s.Consent), started, dur, firstLine(s.Reason, 40))
	}
	return t.flush()
}

func (a *app) sessionsShowCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "show SESSION [-o table|json]",
		Short: "Show one session",
		Long: `Show one session: who asked, why, what was requested and granted, the endpoint's
consent decision, when it started and ended, who ended it and why, and the size of
its recording.

` + sessionRefHelp,
		Example: `  patchbay sessions show 0193a1b2-7c4d
  patchbay sessions show 0193a1b2-7c4d -o json`,
		Args: oneArg("SESSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				s, err := c.Session(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, s)
				}
				t := newTable(a.stdout)
				t.row("ID:", s.ID)
				t.row("Agent:", s.Hostname+" ("+s.AgentID+")")
				t.row("Technician:", s.Technician)
				t.row("Reason:", s.Reason)
				t.row("Requested:", strings.Join(s.Capabilities, ", "))
				t.row("Granted:", strings.Join(s.Granted, ", "))
				t.row("State:", s.State)
				consent := consentText(s.Consent)
				if s.Consent.Backend != "" {
					consent += ", asked through " + s.Consent.Backend
				}
				t.row("Consent:", consent)
				if s.Message != "" {
					t.row("Message:", s.Message)
				}
				t.row("Requested at:", fmtTime(s.Requested))
				t.row("Started:", withRel(a.now(), s.Started))
				t.row("Ended:", withRel(a.now(), s.Ended))
				if s.EndReason != "" {
					t.row("Ended by:", s.EndBy+": "+s.EndReason)
				}
				t.row("Recording:", fmt.Sprintf("%d bytes", s.RecordingSize))
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) sessionsRecordingCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "recording SESSION",
		Short: "Write a session's terminal recording (asciicast v2) to standard output",
		Long: `Write the recording of a terminal session to standard output, in asciicast v2
format: play it with "asciinema play FILE" or upload it to an asciinema server you
run. The recording holds what the session displayed and what the technician typed.
Reading a recording is recorded in the audit log.

` + sessionRefHelp,
		Example: `  patchbay sessions recording 0193a1b2-7c4d > session.cast
  asciinema play session.cast`,
		Args: oneArg("SESSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				_, err := c.Recording(cmd.Context(), args[0], a.stdout)
				return err
			})
		},
	}
}

func (a *app) sessionsEndCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "end SESSION [--reason TEXT]",
		Short: "End a live session (your own, or any as an admin)",
		Long: `End a live session. The relay asks the agent to end it; the technician's SSH client
is told why on its standard error and disconnected, and the byte stream is cut two
seconds later whatever the agent does. Technicians can end their own sessions; admins
can end anyone's. The request is audited.

` + sessionRefHelp,
		Example: `  patchbay sessions end 0193a1b2-7c4d --reason "wrong machine"`,
		Args:    oneArg("SESSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *client.Client) error {
				s, err := c.EndSession(cmd.Context(), args[0], reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "ending session %s on %s\n", s.ID, s.Hostname)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why: the technician and the endpoint are told")
	return cmd
}
