package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (a *app) consoleCmd() *cobra.Command {
	var noOpen bool
	cmd := &cobra.Command{
		Use:   "console [--no-open]",
		Short: "Open the web console with a one-time link",
		Long: `Log in to the relay's web console in a browser, as the identity and role of
your saved API token (see patchbay whoami): the relay makes a one-time link,
valid for 60 seconds and usable once, which this command prints and, when
it runs on a terminal of a machine with a desktop, opens in your browser
(xdg-open, open or the Windows default browser). The secret is in the link's
#fragment, which the browser never sends in a request or a Referer.

The browser session lasts until you log out, after 30 minutes without use,
or 12 hours after login, whichever comes first, and ends at once when the
API token is revoked. Without a link, the console's login page also takes
an API token.

On a machine other people use, prefer --no-open and paste the link
yourself: the opener's command line is visible to them for a moment.`,
		Example: `  patchbay console
  patchbay console --no-open | xclip -selection clipboard`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClient(func(c *client.Client) error {
				link, l, err := c.ConsoleLink(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, link)
				valid := l.ExpiresAt.Sub(a.now()).Round(time.Second)
				if !noOpen && a.canOpenBrowser() {
					if err := openBrowser(link); err != nil {
						fmt.Fprintf(a.stderr, "could not open a browser (%v): open the link above within %v; it works once\n", err, valid)
						return nil
					}
					fmt.Fprintf(a.stderr, "Opened in your browser. The link works once, within %v.\n", valid)
					return nil
				}
				fmt.Fprintf(a.stderr, "Open the link above in your browser within %v; it works once.\n", valid)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "only print the link, never start a browser")
	return cmd
}

// canOpenBrowser: stdout is a terminal (a person is there, not a script)
// and, on Linux and the BSDs, a graphical display exists.
func (a *app) canOpenBrowser() bool {
	f, ok := a.stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	switch runtime.GOOS {
	case "windows", "darwin":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// openBrowser starts the desktop's URL opener on the link and leaves it:
// some openers run the browser in the foreground, which must outlive this
// command. Only a failure to start it is reported.
func openBrowser(link string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", link)
	case "darwin":
		cmd = exec.Command("open", link)
	default:
		cmd = exec.Command("xdg-open", link)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
