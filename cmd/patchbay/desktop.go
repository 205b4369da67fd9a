package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/wire"
)

func (a *app) desktopCmd() *cobra.Command {
	var reason, listen string
	var viewOnly bool
	cmd := &cobra.Command{
		Use:   "desktop AGENT --reason TEXT [--view-only] [--listen 127.0.0.1:5901]",
		Short: "See and control an agent's screen with a VNC viewer, with its user's consent",
		Long: `Open a remote desktop on an agent and serve it to a VNC viewer on this machine.

AGENT is an agent ID, a unique prefix of one, or a hostname, as patchbay agents list
shows them. Like patchbay ssh, the relay asks the agent and the agent decides by its own
consent policy (by default the person at the machine approves, seeing your --reason);
the user may allow view only. The session asks for the "desktop" capability, or
"desktop-view" with --view-only. It is SSH end to end between this command and the agent:
the relay only copies bytes.

On Linux and BSD with X11 the agent starts x11vnc for this session only, on its loopback,
with a fresh one-time password; on Windows and macOS it reaches the VNC server the
endpoint's own configuration names (desktop_vnc), which asks for its own password.
When the desktop is ready this command prints, on standard output:

  address: 127.0.0.1:5901
  vncviewer: vncviewer 127.0.0.1::5901
  password: Xk3m9Qp2
  view-only: no
  server: x11vnc on :0

then forwards each connection to that address to the desktop until you press Ctrl-C
or the session ends (the user at the machine can end it at any time). Point any VNC
viewer at the address and give it the password. --listen chooses the local address
(default 127.0.0.1:0, a free port); it must be a loopback address, since the desktop
would otherwise be open to your network behind an 8-character password.

In a view-only session the agent drops keyboard, pointer and clipboard input before
it reaches the VNC server, whatever your viewer sends.`,
		Example: `  patchbay desktop pc-042 --reason "INC-4711 printer dialog"
  patchbay desktop kiosk-7 --reason "INC-12 check the screen" --view-only --listen 127.0.0.1:5901
  vncviewer 127.0.0.1::5901`,
		Args: oneArg("AGENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("reason") {
				return usageErrorf(cmd, "--reason is required: say why, e.g. --reason \"INC-4711 printer dialog\" (the user at the machine is shown it)")
			}
			if err := loopbackListen(listen); err != nil {
				return usageErrorf(cmd, "--listen %s: %v", listen, err)
			}
			capability := wire.CapDesktop
			if viewOnly {
				capability = wire.CapDesktopView
			}
			return a.withClient(func(c *client.Client) error {
				return a.runDesktop(cmd.Context(), c, args[0], reason, capability, listen)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (a ticket number, what is wrong): shown to the user verbatim and kept in the audit log (required)")
	cmd.Flags().BoolVar(&viewOnly, "view-only", false, `ask only to see the screen ("desktop-view"): no keyboard, pointer or clipboard`)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "local loopback address for your VNC viewer (port 0: a free one)")
	return cmd
}

// loopbackListen checks that addr is HOST:PORT with a loopback host.
func loopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, e.g. 127.0.0.1:5901")
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
		return errors.New("not a loopback address (127.0.0.1, ::1 or localhost): the desktop would be reachable from your network")
	}
	return nil
}

// runDesktop opens the session, gets the desktop and serves it on listen
// until ctx ends or the session does.
func (a *app) runDesktop(ctx context.Context, c *client.Client, agent, reason, capability, listen string) error {
	cl, conn, err := a.dialSSH(ctx, c, agent, reason, []string{capability})
	if err != nil {
		return err
	}
	defer conn.Close()
	defer cl.Close()
	ok, payload, err := cl.SendRequest(wire.DesktopRequest, true, nil)
	if err != nil {
		if r := conn.CloseReason(); r != "" {
			return fmt.Errorf("desktop on %s: %s", agent, r)
		}
		return fmt.Errorf("desktop on %s: %w", agent, err)
	}
	if !ok {
		msg := strings.TrimPrefix(string(payload), "patchbay: ")
		if msg == "" {
			msg = "desktop refused by the agent (it may be older than this CLI)"
		}
		return errors.New(msg)
	}
	var rep wire.DesktopReply
	if err := ssh.Unmarshal(payload, &rep); err != nil {
		return fmt.Errorf("desktop on %s: malformed reply: %w", agent, err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", listen, err)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	password := rep.Password
	if password == "" {
		password = "(the VNC server's own: " + rep.Server + " asks for it)"
	}
	fmt.Fprintf(a.stdout, "address: %s\nvncviewer: vncviewer %s::%s\npassword: %s\nview-only: %s\nserver: %s\n",
		ln.Addr(), host, port, password, map[bool]string{true: "yes", false: "no"}[rep.ViewOnly], rep.Server)
	fmt.Fprintf(a.stderr, "patchbay: desktop of %s ready; press Ctrl-C to end the session\n", agent)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { // ends when the SSH connection does
		_ = cl.Wait()
		cancel()
	})
	serveForward(sctx, ln, cl, net.JoinHostPort(rep.Host, strconv.FormatUint(uint64(rep.Port), 10)))
	interrupted := ctx.Err() != nil
	cl.Close()
	wg.Wait()
	if interrupted {
		return nil
	}
	if r := conn.CloseReason(); r != "" {
		return errors.New(r)
	}
	return errors.New("the session ended")
}
