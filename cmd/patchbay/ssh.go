package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/internal/wsconn"
)

// sshSuffix is the pseudo-domain of agents in OpenSSH configs: AGENT.patchbay.
const sshSuffix = ".patchbay"

// certMinValid: a certificate that expires sooner than this is renewed first.
const certMinValid = 5 * time.Minute

func parseCaps(s string) ([]string, error) {
	var caps []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			caps = append(caps, c)
		}
	}
	return caps, wire.ValidCapabilities(caps)
}

func (a *app) sshCmd() *cobra.Command {
	var reason string
	var forwards []string
	var tty, noTTY bool
	cmd := &cobra.Command{
		Use:   "ssh AGENT --reason TEXT [-L [BIND:]PORT:HOST:HOSTPORT]... [-- COMMAND...]",
		Short: "Open a shell (or run a command) on an agent, with its user's consent",
		Long: `Open an interactive session on an agent: a shell, or one command after "--".

AGENT is an agent ID, a unique prefix of one, or a hostname that one agent has
(case-insensitive), as patchbay agents list shows them. The relay asks the agent, and the agent
decides by its own consent policy: by default the person at the machine is shown who
you are, your --reason and what you ask for, and must approve within a minute. The
session is SSH end to end between this command and the agent (the relay only copies
bytes); terminal sessions are recorded by the agent (patchbay sessions recording).

--reason is required (a ticket number, what is wrong): the user sees it verbatim.
--reason "" sends none, which only a relay started with --allow-empty-reason accepts.
While a person is asked, "waiting for the user at pc-042 (45 s left)" counts down on
standard error (one line when it is not a terminal); then the decision and its reason,
e.g. "denied by the user", "no answer within 60s". Each decision is signed by the
agent and kept in the audit log (patchbay audit verify checks it).

Capabilities requested: "shell" for an interactive session, "exec" with a COMMAND,
plus "forward" with -L (forwarding to the endpoint's loopback only, e.g. its RDP or
VNC port). The exit status is the remote command's.

Your SSH certificate (from patchbay login) is renewed automatically when it is
about to expire. For stock OpenSSH (ssh, scp, sftp) see patchbay ssh-config.`,
		Example: `  patchbay ssh web-01 --reason "INC-4711 disk full"
  patchbay ssh 0193a1b2-... -- df -h
  patchbay ssh kiosk-7 --reason "INC-12 VNC" -L 5901:localhost:5900`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usageErrorf(cmd, "patchbay ssh needs an AGENT (ID, ID prefix or hostname: patchbay agents list shows them)")
			}
			if cmd.ArgsLenAtDash() > 1 || (cmd.ArgsLenAtDash() == -1 && len(args) > 1) {
				return usageErrorf(cmd, "put the command after --, e.g. patchbay ssh %s -- %s", args[0], strings.Join(args[1:], " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("reason") {
				return usageErrorf(cmd, "--reason is required: say why, e.g. --reason \"INC-4711 disk full\" (the user at the machine is shown it)")
			}
			agent, command := args[0], strings.Join(args[1:], " ")
			var specs []forwardSpec
			for _, f := range forwards {
				s, err := parseForward(f)
				if err != nil {
					return usageErrorf(cmd, "-L %s: %v", f, err)
				}
				specs = append(specs, s)
			}
			caps := []string{wire.CapShell}
			if command != "" {
				caps = []string{wire.CapExec}
			}
			if len(specs) > 0 {
				caps = append(caps, wire.CapForward)
			}
			wantTTY := (command == "" || tty) && !noTTY && isTerminal(os.Stdin)
			return a.withClient(func(c *client.Client) error {
				return a.runSSH(cmd.Context(), c, agent, reason, caps, command, wantTTY, specs)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (a ticket number, what is wrong): shown to the user verbatim and kept in the audit log (required)")
	cmd.Flags().StringArrayVarP(&forwards, "local-forward", "L", nil, "forward a local port to the endpoint's loopback: [BIND:]PORT:HOST:HOSTPORT")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a terminal for COMMAND too")
	cmd.Flags().BoolVarP(&noTTY, "no-tty", "T", false, "never allocate a terminal")
	return cmd
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// dialSSH asks for a session on agent with caps (waiting for the user's
// consent) and runs an SSH client on it. The caller closes both.
func (a *app) dialSSH(ctx context.Context, c *client.Client, agent, reason string, caps []string) (*ssh.Client, *wsconn.Conn, error) {
	dir, err := client.SSHDir()
	if err != nil {
		return nil, nil, err
	}
	id, err := c.EnsureSSHIdentity(ctx, dir, certMinValid)
	if err != nil {
		return nil, nil, err
	}
	wd := a.waitDisplay(agent)
	conn, st, err := c.OpenSession(ctx, client.SessionRequest{
		Agent: agent, Reason: reason, Capabilities: caps, OnStatus: wd.status,
	})
	wd.stop()
	if err != nil {
		return nil, nil, err
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, st.AgentID+":22", &ssh.ClientConfig{
		User:            id.Cert.KeyId,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(id.Signer)},
		HostKeyCallback: id.HostKeyCallback(),
		Timeout:         30 * time.Second,
	})
	if err != nil {
		r := conn.CloseReason()
		conn.Close()
		if r != "" {
			return nil, nil, fmt.Errorf("ssh to %s: %s", agent, r)
		}
		return nil, nil, fmt.Errorf("ssh to %s: %w", agent, err)
	}
	return ssh.NewClient(sc, chans, reqs), conn, nil
}

// runSSH opens the session and runs an SSH client on it.
func (a *app) runSSH(ctx context.Context, c *client.Client, agent, reason string, caps []string, command string, wantTTY bool, forwards []forwardSpec) error {
	cl, conn, err := a.dialSSH(ctx, c, agent, reason, caps)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer cl.Close()

	var fwd sync.WaitGroup
	fctx, stopForwards := context.WithCancel(ctx)
	defer func() { stopForwards(); fwd.Wait() }()
	for _, f := range forwards {
		ln, err := net.Listen("tcp", f.listen)
		if err != nil {
			return fmt.Errorf("-L %s: %w", f.listen, err)
		}
		fmt.Fprintf(a.stderr, "patchbay: forwarding %s to %s on the endpoint\n", ln.Addr(), f.target)
		fwd.Add(1)
		go func() {
			defer fwd.Done()
			serveForward(fctx, ln, cl, f.target)
		}()
	}
	code, err := a.runRemote(ctx, cl, command, wantTTY, len(forwards) > 0)
	if err != nil {
		if r := conn.CloseReason(); r != "" {
			return fmt.Errorf("%s", r)
		}
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// exitCode makes the CLI exit with a remote command's status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("remote command exited with status %d", int(e)) }

// runRemote runs the shell or command on one session channel and returns
// its exit status.
func (a *app) runRemote(ctx context.Context, cl *ssh.Client, command string, wantTTY, forwarding bool) (int, error) {
	s, err := cl.NewSession()
	if err != nil {
		return 0, fmt.Errorf("open session channel: %w", err)
	}
	defer s.Close()
	s.Stdout, s.Stderr = a.stdout, a.stderr
	stdinDone := make(chan struct{})
	if wantTTY {
		fd := int(os.Stdin.Fd())
		w, h, err := term.GetSize(fd)
		if err != nil {
			w, h = 80, 24
		}
		termName := os.Getenv("TERM")
		if termName == "" {
			termName = "xterm-256color"
		}
		if err := s.RequestPty(termName, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return 0, fmt.Errorf("request a terminal: %w", err)
		}
		old, err := term.MakeRaw(fd)
		if err == nil {
			defer term.Restore(fd, old)
		}
		go watchResize(fd, s, stdinDone)
	}
	defer close(stdinDone)
	in, err := s.StdinPipe()
	if err != nil {
		return 0, err
	}
	go func() {
		_, _ = io.Copy(in, a.stdin)
		if !wantTTY {
			in.Close() // EOF for a command reading stdin
		}
	}()
	if command != "" {
		err = s.Start(command)
	} else {
		err = s.Shell()
	}
	if err != nil {
		return 0, fmt.Errorf("start remote %s: %w", map[bool]string{true: "command", false: "shell"}[command != ""], err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGTERM)
		s.Close()
		return 130, nil
	}
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ee.Signal() != "" {
			fmt.Fprintf(a.stderr, "patchbay: remote process killed by signal %s\n", ee.Signal())
		}
		return ee.ExitStatus(), nil
	case errors.Is(err, io.EOF), strings.Contains(err.Error(), "exited without exit status"):
		return 255, errors.New("the session ended without an exit status")
	}
	return 0, err
}

// forwardSpec is one -L forwarding.
type forwardSpec struct{ listen, target string }

func parseForward(s string) (forwardSpec, error) {
	parts := strings.Split(s, ":")
	bind := "127.0.0.1"
	switch len(parts) {
	case 3:
	case 4:
		bind, parts = parts[0], parts[1:]
	default:
		return forwardSpec{}, errors.New("want [BIND:]PORT:HOST:HOSTPORT")
	}
	return forwardSpec{listen: net.JoinHostPort(bind, parts[0]), target: net.JoinHostPort(parts[1], parts[2])}, nil
}

// serveForward accepts on ln until ctx ends and tunnels each connection to
// target through the SSH client (direct-tcpip).
func serveForward(ctx context.Context, ln net.Listener, cl *ssh.Client, target string) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		lc, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer lc.Close()
			rc, err := cl.Dial("tcp", target)
			if err != nil {
				return
			}
			defer rc.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(rc, lc); done <- struct{}{} }()
			go func() { _, _ = io.Copy(lc, rc); done <- struct{}{} }()
			select {
			case <-done:
			case <-ctx.Done():
			}
		}()
	}
}
