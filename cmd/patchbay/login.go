package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) loginCmd() *cobra.Command {
	var server, token, fingerprint, user string
	var pwStdin, ssoLogin, noOpen bool
	var ssoWait time.Duration
	cmd := &cobra.Command{
		Use:   "login --server URL (--token TOKEN | --user NAME | --sso) --ca-fingerprint SHA256",
		Short: "Log in to a relay and save the credentials",
		Long: `Log in to a relay as a user (--user, with a password and a TOTP code) or
with an API token, and save the credentials for later commands.

With --user NAME the password is prompted on the terminal without echo,
then, when the user has a TOTP second factor, the code from the
authenticator app (or a recovery code). Neither is ever taken from the
command line. For scripts, --password-stdin reads the password from the
first line of standard input and the code, when one is needed, from the
next. The relay answers with a session of 12 hours (then log in again);
wrong passwords and codes are slowed down per address and per user name.
If the relay requires TOTP and you have none yet, the session can only
enrol it: run patchbay account totp enrol, then log in again.

With --sso you sign in at your organisation's identity provider (when the
relay has single sign-on): the command listens on 127.0.0.1 at a random
port, prints an address of the relay and opens it in your browser (unless
--no-open, or when no desktop is there: then open it yourself, on this
machine). After the provider's login the relay sends the browser back to
that port with a one-time code, which only this command can redeem (it
works once, within 60 s, with a secret that never left this process). The
result is the same 12-hour session as a password login, with the role your
groups at the provider map to.

The relay's certificate authority is pinned by --ca-fingerprint (printed by
patchbay-server at start; "sha256:" and 64 hex digits, colons allowed): the
connection is refused unless the relay presents a chain anchored in exactly
that CA, and the token is only sent after that check. The CA certificate is
then saved with the token, and every later command trusts only it.

Without --token, or with --token -, the token is read from the terminal
without echo (or from the first line of standard input when it is not a
terminal), which keeps it out of shell history and the process list. When
already logged in, --server and --ca-fingerprint default to the saved ones,
so a new token can be set with just "patchbay login".

The credentials are written to $PATCHBAY_CONFIG if set, else to the user
configuration directory (~/.config/patchbay/config.json on Linux), mode 0600.`,
		Example: `  patchbay login --server https://relay.example.com:8443 --ca-fingerprint sha256:3f1c... --user dana
  patchbay login --server https://relay.example.com:8443 --ca-fingerprint sha256:3f1c... --token pbt_...
  pass show patchbay | patchbay login --server relay.example.com:8443 --ca-fingerprint SHA256:3F:1C:... --token -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || fingerprint == "" {
				if saved, err := client.LoadConfig(); err == nil {
					if server == "" {
						server = saved.Server
					}
					if fingerprint == "" {
						fingerprint = saved.CAFingerprint
					}
				}
			}
			if server == "" {
				return usageErrorf(cmd, "--server is required")
			}
			if fingerprint == "" {
				return usageErrorf(cmd, "--ca-fingerprint is required (the relay prints it at start)")
			}
			if ssoLogin {
				if token != "" || user != "" || pwStdin {
					return usageErrorf(cmd, "--sso excludes --token, --user and --password-stdin: the identity provider signs you in")
				}
				return a.loginSSO(cmd, server, fingerprint, noOpen, ssoWait)
			}
			if user != "" {
				if token != "" {
					return usageErrorf(cmd, "--token and --user exclude each other: a user logs in with a password")
				}
				return a.loginUser(cmd, server, fingerprint, user, pwStdin)
			}
			if pwStdin {
				return usageErrorf(cmd, "--password-stdin needs --user NAME")
			}
			if token == "" || token == "-" {
				var err error
				if token, err = a.readToken(); err != nil {
					return err
				}
			}
			cfg, err := client.Login(cmd.Context(), server, token, fingerprint)
			if err != nil {
				return err
			}
			return a.saveLogin(cmd, cfg, true)
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "relay URL, e.g. https://relay.example.com:8443 (https:// may be left out)")
	f.StringVar(&token, "token", "", `API token; "-" or empty reads it from the terminal or standard input`)
	f.StringVar(&fingerprint, "ca-fingerprint", "", "fingerprint of the relay's CA, sha256:<64 hex digits>")
	f.StringVar(&user, "user", "", "log in as this user with a password (and TOTP code), prompted without echo")
	f.BoolVar(&pwStdin, "password-stdin", false, "with --user: read the password, then the code if needed, from standard input, one per line")
	f.BoolVar(&ssoLogin, "sso", false, "sign in at your organisation's identity provider in a browser (single sign-on)")
	f.BoolVar(&noOpen, "no-open", false, "with --sso: only print the address, never start a browser")
	f.DurationVar(&ssoWait, "sso-timeout", 5*time.Minute, "with --sso: how long to wait for the browser to come back")
	return cmd
}

// loginSSO is patchbay login --sso.
func (a *app) loginSSO(cmd *cobra.Command, server, fingerprint string, noOpen bool, wait time.Duration) error {
	s, err := client.StartSSO(server, fingerprint)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(a.stderr, "Sign in with your organisation's account in a browser on this machine (waiting up to %v):\n%s\n", wait, s.URL)
	if !noOpen && a.canOpenBrowser() {
		if err := openBrowser(s.URL); err != nil {
			fmt.Fprintf(a.stderr, "could not open a browser (%v): open the address above yourself\n", err)
		}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), wait)
	defer cancel()
	cfg, out, err := s.Wait(ctx)
	if err != nil {
		return err
	}
	if err := a.saveLogin(cmd, cfg, true); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "Session valid until %s\n", out.ExpiresAt.Local().Format(time.RFC3339))
	return nil
}

// loginUser is patchbay login --user: password (and code) prompted or read
// from standard input, never from argv.
func (a *app) loginUser(cmd *cobra.Command, server, fingerprint, user string, pwStdin bool) error {
	ctx := cmd.Context()
	pw, err := a.secret(pwStdin, "Password for "+user)
	if err != nil {
		return err
	}
	cfg, out, err := client.LoginPassword(ctx, server, fingerprint, user, pw, "")
	if errors.Is(err, client.ErrCodeRequired) {
		var code string
		if code, err = a.code(pwStdin, "Code (authenticator app or recovery code)"); err != nil {
			return err
		}
		cfg, out, err = client.LoginPassword(ctx, server, fingerprint, user, pw, code)
	}
	if err != nil {
		return err
	}
	if out.RecoveryCodesLeft != nil {
		fmt.Fprintf(a.stderr, "patchbay: warning: %s\n", recoveryNote(*out.RecoveryCodesLeft))
	}
	if err := a.saveLogin(cmd, cfg, !out.TOTPEnrolRequired); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "Session valid until %s\n", out.ExpiresAt.Local().Format(time.RFC3339))
	if out.TOTPEnrolRequired {
		fmt.Fprintln(a.stderr, "This relay requires a TOTP second factor and you have none yet: this session can only enrol one.\n"+
			"Run patchbay account totp enrol now.")
	}
	return nil
}

// saveLogin saves cfg and reports it; with ssh, a technician also gets an
// SSH certificate.
func (a *app) saveLogin(cmd *cobra.Command, cfg client.Config, ssh bool) error {
	path, err := client.SaveConfig(cfg)
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	fmt.Fprintf(a.stdout, "Logged in to %s as %s (%s)\n", cfg.Server, clean(cfg.Name), clean(cfg.Role))
	fmt.Fprintf(a.stderr, "Credentials saved to %s\n", path)
	if ssh && cfg.Role != apiv1.RoleViewer {
		a.loginSSH(cmd.Context(), cfg)
	}
	return nil
}

// readToken reads the API token from the terminal without echo, or from the
// first line of standard input when that is not a terminal.
func (a *app) readToken() (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, "API token: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", fmt.Errorf("read token: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(io.LimitReader(a.stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read token from standard input: %w", err)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", errors.New("read token: standard input is empty; pass --token or pipe the token in")
	}
	return line, nil
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the saved credentials",
		Long: `Delete the saved credentials (server, API token and pinned CA) from this
machine.

The token itself stays valid on the relay until it expires or an admin revokes
it with "patchbay api-tokens revoke ID".`,
		Example: `  patchbay logout`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := client.RemoveConfig()
			if err != nil {
				return fmt.Errorf("log out: %w", err)
			}
			fmt.Fprintf(a.stdout, "Logged out: removed %s\n", path)
			return nil
		},
	}
}

func (a *app) whoamiCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show which relay and identity the saved token is for",
		Long: `Ask the relay who the saved API token belongs to: the relay, the token's
name, ID and role, the user it belongs to, the sites it reaches ("all" for
every site: admins, and those granted all), and the pinned CA fingerprint.
Fails with "not logged in"
when there are no saved credentials, and with the relay's message when the
token was revoked or expired.`,
		Example: `  patchbay whoami
  patchbay whoami -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				who, err := c.Whoami(cmd.Context())
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, who)
				}
				t := newTable(a.stdout)
				t.row("Server:", c.Server())
				t.row("Name:", who.Name)
				t.row("Role:", who.Role)
				if who.User != "" {
					t.row("User:", who.User)
				}
				t.row("Sites:", strings.Join(who.Sites, ", "))
				t.row("Token ID:", who.TokenID)
				t.row("CA fingerprint:", c.Config().CAFingerprint)
				t.row("Relay version:", who.ServerVersion)
				return t.flush()
			})
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

// loginSSH gets the technician a fresh SSH certificate (for patchbay ssh and
// OpenSSH through patchbay ssh-config). A failure is reported, not fatal:
// the API login worked, and patchbay ssh tries again.
func (a *app) loginSSH(ctx context.Context, cfg client.Config) {
	c, err := client.New(cfg)
	if err == nil {
		defer c.Close()
		var dir string
		if dir, err = client.SSHDir(); err == nil {
			var id *client.SSHIdentity
			if id, err = c.EnsureSSHIdentity(ctx, dir, 7*time.Hour); err == nil {
				fmt.Fprintf(a.stderr, "SSH certificate for %s valid until %s (%s)\n", clean(id.Cert.KeyId), id.ValidBefore.Local().Format(time.RFC3339), id.CertPath())
				return
			}
		}
	}
	fmt.Fprintf(a.stderr, "patchbay: warning: no SSH certificate: %s\n", clean(err.Error()))
}
