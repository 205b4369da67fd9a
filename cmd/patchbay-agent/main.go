// Command patchbay-agent is the Patchbay endpoint agent: it enrolls with a
// relay once, then keeps a mutual-TLS link to it open so technicians can
// reach this machine.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/agent/enroll"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/service"
	"github.com/patchbay/patchbay/agent/trust"
	"github.com/patchbay/patchbay/agent/upgrade"
	"github.com/patchbay/patchbay/internal/logging"
	buildversion "github.com/patchbay/patchbay/internal/version"
	"github.com/patchbay/patchbay/plugins/signature"
	"github.com/spf13/cobra"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

// testRelay is for tests only, set at build time (-X main.testRelay=URL):
// "run" connects to URL instead of the enrolled relays (without saving it).
// The self-update tests build a release whose agent cannot reach the relay
// this way, to see it rolled back. Release builds never set it.
var testRelay string

// testCrashAfterStart is for tests only, set at build time
// (-X main.testCrashAfterStart=1): "run" exits with status 3 right after it
// has counted its start, before it connects. The self-update tests build a
// release that crash-loops this way, to see it rolled back. Release builds
// never set it.
var testCrashAfterStart string

// Environment variables the agent reads.
const (
	envData  = "PATCHBAY_AGENT_DATA"
	envToken = "PATCHBAY_ENROLL_TOKEN"
)

func main() {
	if err := newRoot(os.Stdout).Execute(); err != nil {
		if errors.Is(err, errRestartExit) {
			os.Exit(upgrade.ExitRestart) // the service manager starts the new binary
		}
		fmt.Fprintln(os.Stderr, "patchbay-agent:", err)
		os.Exit(1)
	}
}

func newRoot(stdout io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "patchbay-agent",
		Short: "Patchbay endpoint agent",
		Long: `patchbay-agent connects this machine to a Patchbay relay so that technicians can
help it: interactive sessions with the user's consent, and signed remediation plugins.

Enroll once with a token from your administrator, then run the agent (normally as a
service). The agent only ever dials out to the relay over HTTPS; it opens no port.`,
		Example: `  patchbay-agent enroll --server https://relay.example.com:8443 \
      --token pbe_... --ca-fingerprint sha256:3f1c...
  patchbay-agent run`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.AddCommand(newEnrollCmd(), newRunCmd(), newTrustCmd(), newSessionsCmd(), newHelperCmd(), newVersionCmd(), newServiceCmd())
	return root
}

// defaultDataDir is where the agent keeps its identity: $PATCHBAY_AGENT_DATA,
// else /var/lib/patchbay-agent for root, %ProgramData%\patchbay-agent on
// Windows, else $XDG_DATA_HOME/patchbay-agent (~/.local/share/patchbay-agent).
func defaultDataDir() string {
	if d := os.Getenv(envData); d != "" {
		return d
	}
	if runtime.GOOS == "windows" {
		if pd := os.Getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "patchbay-agent")
		}
	} else if os.Geteuid() == 0 {
		return "/var/lib/patchbay-agent"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "patchbay-agent")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "patchbay-agent")
	}
	return "patchbay-agent"
}

const dataHelp = "data directory holding the agent's key, certificate and settings (env " + envData + ")"

// filesHelp describes the data directory, for --help texts.
const filesHelp = `Files (in --data, default /var/lib/patchbay-agent as root, else
$XDG_DATA_HOME/patchbay-agent or ~/.local/share/patchbay-agent; env ` + envData + `):
  agent.key   private key, generated here, never sent anywhere   (0600)
  agent.crt   this agent's certificate, issued by the relay's CA
  ca.crt      the relay's CA certificate, pinned by --ca-fingerprint
  agent.json  relay URLs, agent ID, tags                           (0600)`

func newEnrollCmd() *cobra.Command {
	var (
		o         enroll.Options
		servers   []string
		tagArgs   []string
		tokenFile string
		trustFile string
	)
	cmd := &cobra.Command{
		Use:   "enroll --server URL --token TOKEN --ca-fingerprint SHA256:...",
		Short: "Enroll this machine with a relay (once)",
		Long: `Enroll this machine with a Patchbay relay.

The agent generates its private key locally, checks that the relay's CA has the
fingerprint you give (printed by patchbay-server at start and by "patchbay login"), and
trades a certificate request plus the enrollment token for a client certificate whose
subject is the agent's new ID. Nothing is written unless the relay accepts.

Ask an administrator for a token ("patchbay tokens create"). The token may also come from
the ` + envToken + ` environment variable or --token-file, which keeps it out of the
process list. A machine already enrolled is refused unless --force is given; --force
replaces the identity (the old agent ID stays on the relay until an admin removes it).

Several relays (a tier sharing one CA): repeat --server. The agent enrolls through the
first that answers (trying each in turn, with jittered backoff), connects to the first and, whenever the link is lost, tries the next, with
jittered backoff; the list is saved in agent.json ("patchbay-agent run --server" changes it).

--trust installs the agent's trusted plugin signers (an OpenSSH allowed_signers file,
copied to DATA/allowed_signers). Only signers listed there can make this agent run
anything; the relay cannot change the list. Manage it later with "patchbay-agent trust".

` + filesHelp,
		Example: `  sudo patchbay-agent enroll --server https://relay.example.com:8443 \
      --token pbe_Wq3... --ca-fingerprint sha256:3f1c...e9 --tags site=paris,role=kiosk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := enrollWith(cmd, o, servers, tagArgs, tokenFile, trustFile)
			if err != nil {
				return err
			}
			printEnrolled(cmd.OutOrStdout(), id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&servers, "server", nil, "relay URL, e.g. https://relay.example.com:8443 (required); repeat it for the other relays of a tier: enrollment goes through the first that answers, the agent connects to the first and fails over to the next")
	f.StringVar(&o.Token, "token", "", "enrollment token (or env "+envToken+", or --token-file)")
	f.StringVar(&tokenFile, "token-file", "", `read the enrollment token from this file ("-" for standard input)`)
	f.StringVar(&o.CAFingerprint, "ca-fingerprint", "", "fingerprint of the relay's CA, sha256:<64 hex digits> (required)")
	f.StringVar(&o.Dir, "data", defaultDataDir(), dataHelp)
	f.StringArrayVar(&tagArgs, "tags", nil, "this agent's own tags, k=v[,k=v...]; repeatable (tags scoped by the token win)")
	f.StringVar(&o.Hostname, "hostname", "", "name to report instead of this machine's host name")
	f.BoolVar(&o.Force, "force", false, "replace an existing enrollment in --data")
	f.StringVar(&trustFile, "trust", "", "OpenSSH allowed_signers file of the people whose signed plugins and scripts this agent runs")
	cmd.MarkFlagRequired("server")
	cmd.MarkFlagRequired("ca-fingerprint")
	return cmd
}

// enrollWith enrolls as the enroll command's flags say (also used by
// service install).
func enrollWith(cmd *cobra.Command, o enroll.Options, servers, tagArgs []string, tokenFile, trustFile string) (*identity.Identity, error) {
	token, err := readToken(o.Token, tokenFile, cmd.InOrStdin())
	if err != nil {
		return nil, err
	}
	o.Token = token
	o.Server, o.OtherServers = servers[0], servers[1:]
	if o.Tags, err = parseTags(tagArgs); err != nil {
		return nil, err
	}
	if trustFile != "" {
		// Checked before enrolling, so a bad file changes nothing.
		if _, err := signature.LoadAllowedSigners(trustFile); err != nil {
			return nil, fmt.Errorf("--trust: %w", err)
		}
	}
	id, err := enroll.Enroll(cmd.Context(), o)
	if err != nil {
		return nil, err
	}
	if trustFile != "" {
		if err := trust.Import(id.Dir, trustFile); err != nil {
			return nil, fmt.Errorf("enrolled, but installing --trust failed (retry with patchbay-agent trust add): %w", err)
		}
	}
	return id, nil
}

// readToken picks the token from --token, --token-file or the environment.
func readToken(flag, file string, stdin io.Reader) (string, error) {
	var sources []string
	token := strings.TrimSpace(flag)
	if token != "" {
		sources = append(sources, "--token")
	}
	if file != "" {
		var b []byte
		var err error
		if file == "-" {
			b, err = io.ReadAll(io.LimitReader(stdin, 4<<10))
		} else {
			b, err = os.ReadFile(file)
		}
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		token = strings.TrimSpace(string(b))
		sources = append(sources, "--token-file")
	}
	if len(sources) > 1 {
		return "", errors.New("read token: give either --token or --token-file, not both")
	}
	if token == "" && len(sources) == 0 {
		token = strings.TrimSpace(os.Getenv(envToken))
	}
	if token == "" {
		return "", errors.New("an enrollment token is required: --token, --token-file or " + envToken + " (an administrator creates one with \"patchbay tokens create\")")
	}
	return token, nil
}

// parseTags parses --tags values: comma-separated k=v pairs, keys unique.
func parseTags(args []string) (map[string]string, error) {
	tags := map[string]string{}
	for _, arg := range args {
		for _, kv := range strings.Split(arg, ",") {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("--tags: %q is not key=value", kv)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if _, dup := tags[k]; dup {
				return nil, fmt.Errorf("--tags: key %q given twice", k)
			}
			tags[k] = v
		}
	}
	if err := identity.CheckTags(tags); err != nil {
		return nil, fmt.Errorf("--tags: %w", err)
	}
	return tags, nil
}

func printEnrolled(w io.Writer, id *identity.Identity) {
	fmt.Fprintf(w, "Enrolled as agent %s\n", id.AgentID)
	fmt.Fprintf(w, "  relay:  %s\n", id.ServerURL)
	if len(id.Servers) > 1 {
		fmt.Fprintf(w, "  then:   %s\n", strings.Join(id.Servers[1:], ", "))
	}
	tags := id.RelayTags
	if tags == nil {
		tags = id.Tags
	}
	if len(tags) > 0 {
		keys := make([]string, 0, len(tags))
		for k := range tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		pairs := make([]string, len(keys))
		for i, k := range keys {
			pairs[i] = k + "=" + tags[k]
		}
		fmt.Fprintf(w, "  tags:   %s\n", strings.Join(pairs, ","))
	}
	fmt.Fprintf(w, "  files:  %s\n", id.Dir)
	fmt.Fprintf(w, "\nNext: start the agent (normally as a service):\n  patchbay-agent run --data %s\n", quoteArg(id.Dir))
}

// quoteArg quotes a path for a shell command line when it needs it.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func newRunCmd() *cobra.Command {
	var dir, level, format string
	var servers []string
	var sf sessionFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Connect to the relay and stay connected",
		Long: `Run the agent: connect to the relay this machine was enrolled with and keep the link
up, reconnecting with jittered backoff (up to one minute between attempts) whenever it
drops. With several relays (--server repeated, at enrollment or here) each reconnection
goes to the next one in the list. Stops cleanly on SIGINT or SIGTERM, and, when the Windows
service manager started it ("patchbay-agent service install"), on its Stop and Shutdown
requests.

Logs go to standard error: JSON lines, or a readable format on a terminal. An agent that
the relay refuses (revoked, or its certificate expired) logs that at error level and
keeps retrying slowly; enroll it again with --force to give it a new identity.

Interactive sessions: a technician's request is decided by this machine's own consent
policy, which the relay cannot change. --consent-mode prompt (default) asks the person at
the machine, who must approve within --consent-timeout (60s; no answer means no); notify
starts the session and tells them; unattended (servers) starts it. --consent-backend says
how to ask: auto (a desktop dialog where one can be shown, else the web page), web (a page
on this machine's loopback interface, URL in the log), desktop, tty, or exec:/path (your
own program: the request as JSON on its stdin, exit 0 approves). --consent-remember 15m
lets one approval cover the same technician's further requests for the same or fewer
capabilities for 15 minutes (ssh, then scp), until the user ends a session. The consent
flags are saved in DATA/consent.json, so later starts keep them. Sessions run as the agent's own
account unless --session-user names another; they are SSH end to end, recorded when they
have a terminal, and end after --session-idle-timeout without traffic or at
--session-max-duration. "patchbay-agent sessions list|end" sees and ends them.

Remote desktop (the "desktop" and "desktop-view" capabilities): with X11 the agent starts
x11vnc on loopback for an approved session only, on --desktop-display with
--desktop-xauthority; elsewhere set --desktop-vnc to this machine's own VNC server. These
flags are saved in DATA/desktop.json.

Self-updates ("patchbay agents upgrade"): the agent installs a release only when its
SHA256SUMS is signed by a key DATA/allowed_signers trusts for namespace patchbay-release
("patchbay-agent trust add --release"), its binary matches and runs. It keeps the running
binary as EXE.prev, installs the new one as EXE and restarts: under systemd, launchd or
the Windows service manager it exits with status 75 for the service manager to start it
again (Restart=always, KeepAlive, recovery actions); otherwise it re-executes itself.
` + envRestart + `=exit|exec overrides that choice. A new version that has not reached a relay
within the upgrade's rollback window puts EXE.prev back (keeping itself as EXE.failed)
and restarts the old one, which reports the failure. The window runs from the new version's
first start, and each start is counted first thing: a new version that stops (crashes) 3
times before it reaches a relay is rolled back at its 4th start, so a service manager does
not restart a crashing release forever. Without a service manager nothing restarts a
crashed agent; each start by hand counts.

` + filesHelp + `
  consent.json                consent policy (0600; only local commands change it)
  desktop.json                remote desktop settings (0600)
  ssh_host_ed25519_key        SSH host key, made here (0600); -cert.pub from the relay's host CA
  ssh_user_ca.pub             the relay's SSH user CA, pinned at enrollment
  agent.sock                  control socket for "patchbay-agent sessions" (0600)`,
		Example: `  patchbay-agent run
  patchbay-agent run --data /srv/patchbay-agent --log-level debug --log-format json
  patchbay-agent run --consent-mode notify --consent-backend desktop
  patchbay-agent run --consent-mode unattended --session-user support`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logging.Setup(os.Stderr, level, format)
			if err != nil {
				return err
			}
			id, err := identity.Load(dir)
			if err != nil {
				return err
			}
			if len(servers) > 0 && !slices.Equal(servers, id.Servers) {
				if err := id.SetServers(servers); err != nil {
					return fmt.Errorf("--server: %w", err)
				}
				if err := identity.SaveServers(id); err != nil {
					return err
				}
			}
			if testRelay != "" {
				if err := id.SetServers([]string{testRelay}); err != nil {
					return fmt.Errorf("test relay: %w", err)
				}
			}
			exe, err := executable()
			if err != nil {
				return err
			}
			// First thing, before anything that could crash: count this
			// start of a new version pending a self-update; one that keeps
			// crashing is rolled back here.
			j, err := journal.Open(filepath.Join(id.Dir, "journal"))
			if err != nil {
				return err
			}
			ulog := log.With().Str("agent_id", id.AgentID).Str("component", "upgrade").Logger()
			if upgrade.CountStart(j, fullVersion(), time.Now(), ulog) {
				return restartAgent(exe, ulog)
			}
			if testCrashAfterStart != "" {
				fmt.Fprintln(os.Stderr, "patchbay-agent: crashing after start (test build, main.testCrashAfterStart)")
				os.Exit(3)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			policy, err := sf.policy(cmd, dir)
			if err != nil {
				return err
			}
			alog := log.With().Str("agent_id", id.AgentID).Logger()
			alog.Info().Str("version", fullVersion()).Str("data", dir).Strs("servers", id.Servers).
				Str("consent_mode", string(policy.Mode)).Str("consent_backend", policy.Backend).Msg("agent starting")
			// Under the Windows service manager, Stop and Shutdown end ctx too.
			err = service.Run(ctx, func(ctx context.Context) error { return serve(ctx, id, exe, &sf, policy, log, alog) })
			if errors.Is(err, errRestart) {
				stop()
				return restartAgent(exe, alog)
			}
			if err != nil {
				return err
			}
			alog.Info().Msg("agent stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "data", defaultDataDir(), dataHelp)
	f.StringArrayVar(&servers, "server", nil, "relay URL to connect to, repeatable for the relays of a tier (tried in order; on link loss the next): replaces and saves the list given at enrollment (the relays must share the CA pinned then)")
	f.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&format, "log-format", logging.FormatAuto, "auto (readable on a terminal, JSON otherwise), json or console")
	sf.register(f)
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agent version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "patchbay-agent %s (%s, %s/%s)\n", fullVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

// fullVersion is version, plus the VCS revision for development builds.
func fullVersion() string { return buildversion.Full(version) }
