package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/internal/logging"
)

// autostartEntry is the XDG autostart file that starts the helper in every
// graphical login (install it as /etc/xdg/autostart/patchbay-helper.desktop).
const autostartEntry = `[Desktop Entry]
Type=Application
Name=Patchbay helper
Comment=Shows Patchbay remote-support requests and live sessions
Exec=/usr/bin/patchbay-agent helper
NoDisplay=true
X-GNOME-Autostart-enabled=true
X-KDE-autostart-after=panel
`

// startupPagesDelay is when the helper gives back its start-up pages a
// second time: by then it has connected to the agent (or is waiting to retry).
const startupPagesDelay = 5 * time.Second

func newHelperCmd() *cobra.Command {
	var (
		socket, session  string
		logLevel, logFmt string
		printAutostart   bool
		stdio            bool
	)
	cmd := &cobra.Command{
		Use:   "helper",
		Short: "Show the agent's consent prompts in this desktop session (started at login)",
		Long: `Run in a user's graphical session, the helper shows the consent prompts of the
patchbay-agent service (which runs as root, without a display) and, while a technician
is connected, a window saying who and since when, with an End session button.

It connects to the service's helper socket (default ` + consent.DefaultHelperSocket + `) and
claims its user and session: the logind session (XDG_SESSION_ID) where systemd-logind
runs, else its X display ("x11:$DISPLAY"), "console" on macOS. The service checks the
claim against the kernel: the user is the one at the other end of the socket, and the
session is that user's. A helper that claims anything else is refused, and exits 1.
It reconnects by itself when the service restarts.

The service asks the console's user by default (consent policy "ask": "console"), or
every user with a helper ("ask": "all"); when nobody is there, "when_no_user" decides
(deny, allow, notify). Prompts use zenity or kdialog (osascript on macOS).

Install it to start at every login: XDG autostart on Linux
(patchbay-agent helper --print-autostart > /etc/xdg/autostart/patchbay-helper.desktop),
a LaunchAgent on macOS (deploy/macos/com.patchbay.helper.plist).`,
		Example: `  patchbay-agent helper
  patchbay-agent helper --print-autostart | sudo tee /etc/xdg/autostart/patchbay-helper.desktop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printAutostart {
				_, err := fmt.Fprint(cmd.OutOrStdout(), autostartEntry)
				return err
			}
			// An idle helper holds little: prompts and indicators are
			// separate programs while they show.
			debug.SetGCPercent(25)
			debug.SetMemoryLimit(8 << 20)
			log, err := logging.Setup(os.Stderr, logLevel, logFmt)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// And what start-up touched: once now and once when connecting
			// to the agent is done (make bench, BENCH_ONLY=consent: an idle
			// helper's RSS went from 18 MiB to about 7 MiB).
			releaseStartupPages()
			time.AfterFunc(startupPagesDelay, releaseStartupPages)
			cfg := consent.HelperConfig{Socket: socket, Session: session, Version: fullVersion(), Log: log,
				Idle: releaseStartupPages} // after prompts too: each dialog's handling grows the heap again
			if stdio {
				return consent.RunHelperStdio(ctx, cfg)
			}
			return consent.RunHelper(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket", consent.DefaultHelperSocket, "the agent service's helper socket (its consent policy's helper_socket)")
	f.StringVar(&session, "session", "", "the session to claim (default: XDG_SESSION_ID with logind, else x11:$DISPLAY)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFmt, "log-format", logging.FormatAuto, "auto (readable on a terminal, JSON otherwise), json or console")
	f.BoolVar(&stdio, "stdio", false, "speak to the agent on standard input and output (how the Windows service runs the helpers it launches in users' sessions)")
	f.BoolVar(&printAutostart, "print-autostart", false, "print the XDG autostart entry that starts the helper at every login, and exit")
	return cmd
}
