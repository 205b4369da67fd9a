// Command patchbay is the technician CLI of Patchbay: log in to a relay, list
// and inspect agents, manage enrollment and API tokens, and read and verify
// the audit log.
//
// Exit codes: 0 success, 1 failure (the error is printed to stderr as
// "patchbay: <message>"), 2 usage error (unknown command or flag, bad flag
// value, wrong number of arguments).
//
// Output: tables for people (-o table, the default) and JSON for scripts
// (-o json, the relay's own field names, two-space indent). Data goes to
// stdout; messages, hints and logs go to stderr. The only secret ever printed
// is a token on the `create` command that made it.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/logging"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newApp(os.Stdin, os.Stdout, os.Stderr).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// app holds what every command shares; tests build one with their own
// streams and clock.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	logLevel       string
	lines          *bufio.Reader // stdin read line by line (prompt.go), made at first use
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct {
	cmd string // the command path, for the --help hint
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf(format, args...)}
}

// errReported means the command has already printed why it failed; it
// exits with status 1 and prints nothing more.
var errReported = errors.New("failure already reported")

// run executes the command line args and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if errors.Is(err, errReported) {
		return 1
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec) // a remote command's status, as ssh does
	}
	fmt.Fprintf(a.stderr, "patchbay: %s\n", clean(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", ue.cmd)
		return 2
	}
	return 1
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "patchbay",
		Short: "Patchbay technician CLI",
		Long: `patchbay is the command-line client of a Patchbay relay: log in once, then
list and inspect the agents on your endpoints, open interactive sessions on
them with their user's consent (patchbay ssh, or stock OpenSSH through
patchbay ssh-config), run signed fixes across the fleet, manage enrollment
and API tokens, people, organisations and their sites, and read and verify
the tamper-evident audit log.

Every agent belongs to one site (ORG/SITE); people and tokens reach the
sites they are granted, admins every site. The relay filters everything by
the caller's sites: patchbay sites list shows yours.

Credentials are saved by "patchbay login" in $PATCHBAY_CONFIG, or else in
the user configuration directory (~/.config/patchbay/config.json on Linux),
readable only by you. The relay's CA is pinned by fingerprint at login and is
the only certificate authority the CLI trusts for that relay afterwards.

Exit status: 0 success, 1 failure, 2 usage error.`,
		Example: `  patchbay login --server https://relay.example.com:8443 --token pbt_... --ca-fingerprint sha256:3f1c...
  patchbay agents list --target 'os=linux,site=paris'
  patchbay ssh pc-042 --reason "INC-4711 printer offline"
  patchbay ssh-config >> ~/.ssh/config
  patchbay tokens create --site acme/paris --uses 10 --ttl 7d
  patchbay audit verify`,
		Version:           version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              unknownSubcommand,
		RunE:              showHelp,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logging.Setup(a.stderr, a.logLevel, logging.FormatAuto)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--log-level: %w", err)}
			}
			cmd.SetContext(logger.WithContext(cmd.Context()))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	})
	root.AddCommand(a.loginCmd(), a.logoutCmd(), a.whoamiCmd(),
		a.agentsCmd(), a.tokensCmd(), a.apiTokensCmd(), a.auditCmd(),
		a.pluginsCmd(), a.scriptsCmd(), a.runCmd(), a.jobsCmd(),
		a.sshCmd(), a.desktopCmd(), a.proxyCmd(), a.sshConfigCmd(), a.sessionsCmd(),
		a.consoleCmd(), a.usersCmd(), a.accountCmd(), a.orgsCmd(), a.sitesCmd(), a.inventoryCmd(), a.policiesCmd())
	root.AddCommand(a.schedulesCmd(), a.windowsCmd(), a.patchPoliciesCmd())
	root.AddCommand(a.versionCmd())
	root.AddCommand(a.alertsCmd(), a.alertRoutesCmd())
	root.AddCommand(a.incidentsCmd(), a.knownFixesCmd())
	root.AddCommand(a.reportsCmd())
	return root
}

// group returns a command that only holds subcommands: without arguments it
// prints its help; with an unknown one it is a usage error.
func group(use, short, long, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    unknownSubcommand,
		RunE:    showHelp,
	}
	c.AddCommand(subs...)
	return c
}

func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// unknownSubcommand refuses any argument to a command that only has
// subcommands, suggesting close names.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return &usageError{cmd: cmd.CommandPath(), err: errors.New(msg)}
}

// oneArg requires exactly one argument, described by what (e.g. "ID").
func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErrorf(cmd, "%s needs exactly one argument, %s (got %d)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf(cmd, "%s takes no arguments; got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// client loads the saved config and returns a client for its relay.
// withClient runs fn with a client for the saved login and closes it after.
func (a *app) withClient(fn func(c *client.Client) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

func (a *app) client() (*client.Client, error) {
	cfg, err := client.LoadConfig()
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}
