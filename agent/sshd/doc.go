// Package sshd is the agent's SSH server. It serves one SSH connection on a
// net.Conn that is a stream of the agent's relay link (the agent never listens
// on a port), so the technician's SSH client — `patchbay ssh`, or stock
// OpenSSH with `ProxyCommand patchbay proxy %h` — talks SSH end to end with the
// agent and the relay only copies encrypted bytes.
//
// # Authentication
//
// Only public-key authentication with a user certificate signed by Config.UserCA
// is accepted, and only for the technician whose session the user approved:
// the certificate must be a user certificate, have key ID Config.Technician and
// list it among its principals, be valid now and carry no critical options
// (a source-address option would be checked against the relay, not the
// technician), and not be revoked: Config.Revocations holds the serials the
// relay revoked (wire.MsgSSHRevoked: the technician's API token was revoked),
// each until its certificate expires. Passwords, keyboard-interactive and plain keys are refused. The
// login name the client sends is ignored (logged only): it does not choose the
// account. Each refusal is logged with its reason (wrong CA, wrong key ID,
// expired...). x/crypto does not enforce certificate extensions, so this
// package does: a terminal needs permit-pty, port forwarding
// permit-port-forwarding. Agent forwarding, X11 forwarding and remote (-R)
// forwarding are always refused.
//
// # Which account sessions run as
//
// By default every process of a session runs as the agent's own service
// account, in its home directory (Config.Dir overrides), with Config.Shell
// ($SHELL, else /bin/sh). When Config.Credential is set (the agent runs as
// root), processes run as that local user instead, in that user's home (or /
// when it does not exist), and the sftp server runs as a child process under
// the same credential (the agent's own executable, re-executed), never inside
// the root agent. Port forwarding connections are made by the agent itself.
//
// Commands run as `Shell -c COMMAND`, like OpenSSH; a shell session runs
// Shell as a login shell. The environment is HOME, USER, LOGNAME, SHELL, PATH,
// PATCHBAY_TECHNICIAN, TERM (with a terminal), then Config.Env, then what the
// client sent in "env" requests, of which only LANG, LC_* and TERM are accepted.
// Each process runs in a session and process group of its own; when it exits,
// or its channel or the SSH connection ends, the whole group (and on Linux
// every process left in its session) is killed: nothing started by a
// technician outlives the session.
//
// On Windows a terminal is a pseudo console (ConPTY, Windows 10 1809 and
// later) recorded like a Unix one; commands run as `cmd.exe /c COMMAND`
// (passed unescaped, as cmd.exe parses its own command line) or PowerShell
// -Command; each process is put in a job object that is ended with it. A
// Credential there means the user logged in at the console
// (WTSQueryUserToken, so the agent must run as LocalSystem): Windows cannot
// start a process as a named account without its password. See
// proc_windows.go and winproc.go.
//
// # Capabilities
//
// Config.Capabilities lists what the user approved (internal/wire: shell,
// exec, sftp, forward, desktop, desktop-view). Anything else is refused with a message naming the
// missing capability: on the channel's stderr, followed by exit status 1 (the
// request itself is accepted, since OpenSSH drops the stderr of a refused
// one), or as the reason a forwarded channel is rejected:
//
//   - shell: a "shell" request. Without a terminal, and when the session is
//     recorded, a shell also needs exec (it would run commands unrecorded).
//   - exec: an "exec" request. The legacy scp protocol (`scp -t`/`scp -f`,
//     used by `scp -O`) is a file copy, so it is allowed with sftp or exec,
//     but only when the command is a plain scp invocation with no shell syntax.
//   - sftp: the sftp subsystem (sftp, and scp of OpenSSH 9+). Other subsystems
//     are refused.
//   - forward: "direct-tcpip" channels (ssh -L, -W, -D), only to this machine's
//     loopback: 127.0.0.0/8, ::1 or "localhost" (always dialled as 127.0.0.1
//     then ::1, never resolved). Other destinations are refused with
//     ssh.Prohibited and a message naming the rule.
//   - desktop, desktop-view: the global request wire.DesktopRequest, answered
//     by Config.Desktop.Start (agent/desktop: x11vnc for this session, or the
//     endpoint's own VNC server) with a wire.DesktopReply, or refused with the
//     reason as the failure payload. Then "direct-tcpip" channels to that
//     address, and only that one, are allowed without forward or the
//     certificate's permit-port-forwarding. With desktop-view (and not
//     desktop) the reply says ViewOnly and the client's bytes go to the VNC
//     server through Config.ViewOnlyCopy (desktop.CopyViewOnly), which drops
//     keyboard, pointer and clipboard input whatever the server allows — even
//     on a channel opened with forward. The desktop is stopped when the
//     session ends.
//
// # Recording
//
// When Config.Record is set, terminal (PTY) sessions are recorded in asciicast
// v2: everything the terminal prints ("o" events), everything the technician
// types ("i" events) — including passwords typed at prompts that do not echo
// them, which the security officer explicitly wants — and terminal resizes ("r").
// Each command started on a terminal adds a marker ("m") naming it. Record is
// called once, when the first terminal process starts; later terminals of the
// same connection share the recording. Commands and sftp without a terminal
// are not recorded (they are logged: command line, subsystem, forward target).
// Recording is fail-closed: if Record fails the terminal session does not
// start, and if writing the recording fails the whole SSH session ends. The
// recorder is closed when the connection ends.
//
// # Ending
//
// Serve ends when the client disconnects, when Config.IdleTimeout passes with no
// channel data either way (keepalives and other protocol messages do not
// count, so a client's ServerAliveInterval does not keep an idle session open),
// at Config.MaxDuration, when the certificate it authenticated with is revoked
// (ErrRevoked: "the technician's access was revoked"), or when its context
// ends. In the last four cases every
// open session channel gets "patchbay: session ended: <reason>" on its stderr
// and exit status 255 if a process was running, and the connection is closed
// within a second.
package sshd
