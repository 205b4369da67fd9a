//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sshd

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Credential is the local user sessions run as (syscall.Credential on Unix).
type Credential = syscall.Credential

const ptySupported = true

// process is a running OS process of a session: the leader of its own session
// and process group, with a terminal (tty) or three pipes.
type process struct {
	cmd    *exec.Cmd
	pid    int
	tty    *os.File // the terminal's master side, or nil
	stdin  *os.File // pipe ends, when there is no terminal
	stdout *os.File
	stderr *os.File
	rel    sync.Once
	kill   sync.Once // stop runs once: the session scan reads all of /proc
}

func startProcess(spec procSpec) (*process, error) {
	cmd := &exec.Cmd{
		Path: spec.path,
		Args: spec.args,
		Env:  append(append([]string(nil), spec.env...), spec.extraEnv...),
		Dir:  spec.dir,
	}
	attr := &syscall.SysProcAttr{Setsid: true, Credential: spec.cred}
	cmd.SysProcAttr = attr
	p := &process{cmd: cmd}
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			_ = f.Close()
		}
	}()
	if spec.pty != nil {
		master, tty, err := openPTY(spec.pty.cols, spec.pty.rows)
		if err != nil {
			return nil, err
		}
		childEnds = append(childEnds, tty)
		if spec.cred != nil {
			// The user owns their terminal, as with a login.
			if err := tty.Chown(int(spec.cred.Uid), int(spec.cred.Gid)); err != nil {
				_ = master.Close()
				return nil, fmt.Errorf("terminal: %w", err)
			}
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		attr.Setctty, attr.Ctty = true, 0
		p.tty = master
	} else {
		var ends [3][2]*os.File // [stdin, stdout, stderr][read, write]
		for i := range ends {
			r, w, err := os.Pipe()
			if err != nil {
				for _, e := range ends[:i] {
					_ = e[0].Close()
					_ = e[1].Close()
				}
				return nil, err
			}
			ends[i] = [2]*os.File{r, w}
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ends[0][0], ends[1][1], ends[2][1]
		childEnds = append(childEnds, ends[0][0], ends[1][1], ends[2][1])
		p.stdin, p.stdout, p.stderr = ends[0][1], ends[1][0], ends[2][0]
	}
	if err := cmd.Start(); err != nil {
		p.release()
		return nil, err
	}
	p.pid = cmd.Process.Pid
	return p, nil
}

// openPTY opens a terminal of the given size. The master side is made
// non-blocking so that closing it interrupts a pending Read or Write
// (creack/pty leaves it in blocking mode).
func openPTY(cols, rows int) (master, tty *os.File, err error) {
	m, t, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open terminal: %w", err)
	}
	syscall.ForkLock.RLock()
	fd, err := syscall.Dup(int(m.Fd()))
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	_ = m.Close()
	if err != nil {
		_ = t.Close()
		return nil, nil, fmt.Errorf("open terminal: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		_ = t.Close()
		return nil, nil, fmt.Errorf("open terminal: %w", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := setWinsize(master, cols, rows); err != nil {
		_ = master.Close()
		_ = t.Close()
		return nil, nil, fmt.Errorf("terminal size: %w", err)
	}
	return master, t, nil
}

func setWinsize(f *os.File, cols, rows int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(rows), Col: uint16(cols)})
	}); err != nil {
		return err
	}
	return ierr
}

// wait waits for the process (not its children) to exit.
func (p *process) wait() exitStatus {
	_ = p.cmd.Wait() // the status is in ProcessState
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return exitStatus{code: 255}
	case ws.Signaled():
		name := unix.SignalName(ws.Signal())
		if len(name) > 3 {
			name = name[3:] // "SIGTERM" -> "TERM", as SSH names signals
		} else {
			name = strconv.Itoa(int(ws.Signal()))
		}
		return exitStatus{code: 128 + int(ws.Signal()), signal: name, core: ws.CoreDump()}
	}
	return exitStatus{code: ws.ExitStatus()}
}

// stop kills the process's group and, where the system lets us find them,
// every other process left in its session (an interactive shell puts each
// job in a group of its own).
func (p *process) stop() {
	if p.pid <= 1 {
		return
	}
	p.kill.Do(func() {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		killSession(p.pid)
	})
}

func (p *process) resize(cols, rows int) {
	if p.tty != nil {
		_ = setWinsize(p.tty, cols, rows)
	}
}

// Signals a client may send (RFC 4254 6.9 names).
var allowedSignals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL,
	"TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "ALRM": syscall.SIGALRM,
}

func (p *process) signal(name string) error {
	sig, ok := allowedSignals[name]
	if !ok {
		return fmt.Errorf("signal %q not supported", name)
	}
	return syscall.Kill(-p.pid, sig)
}

func (p *process) closeStdin() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
}

// release closes the parent's ends of the terminal or pipes.
func (p *process) release() {
	p.rel.Do(func() {
		for _, f := range []*os.File{p.tty, p.stdin, p.stdout, p.stderr} {
			if f != nil {
				_ = f.Close()
			}
		}
	})
}

func lookupCredential(c *Credential) (*user.User, error) {
	return user.LookupId(strconv.FormatUint(uint64(c.Uid), 10))
}

func defaultShell() string {
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}

func rootDir() string { return "/" }

func defaultPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

func platformEnv() []string { return nil }
