//go:build linux || freebsd || netbsd || openbsd || dragonfly

package desktop

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// x11Supported: this system's desktop is X11, served by x11vnc.
const x11Supported = true

// stopGrace is how long x11vnc has to exit on SIGTERM before SIGKILL.
const stopGrace = 3 * time.Second

// x11vnc is one running x11vnc process, the leader of its own process group.
type x11vnc struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited and been waited for
	dir     string        // private directory of the password file
	display string
	reply   wire.DesktopReply
	out     tailBuffer // the end of its output, for errors and logs
}

// passwordChars are the characters of one-time passwords (VNC uses 8 characters).
const passwordChars = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

func newPassword() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = passwordChars[int(b[i])%len(passwordChars)]
	}
	return string(b)
}

// startX11VNC starts x11vnc on o's display and returns once it listens.
func startX11VNC(ctx context.Context, o Options) (*x11vnc, error) {
	path, err := exec.LookPath("x11vnc")
	if err != nil {
		return nil, errors.New("x11vnc is not installed on this machine (apt-get install x11vnc), and desktop_vnc names no other VNC server")
	}
	v := &x11vnc{display: o.display(), done: make(chan struct{})}
	password := newPassword()
	if v.dir, err = os.MkdirTemp("", "patchbay-desktop-"); err != nil {
		return nil, fmt.Errorf("start x11vnc: password directory: %w", err)
	}
	fail := func(err error) (*x11vnc, error) {
		_ = os.RemoveAll(v.dir)
		return nil, err
	}
	pwFile := filepath.Join(v.dir, "passwd")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return fail(fmt.Errorf("start x11vnc: password file: %w", err))
	}
	home, _ := os.UserHomeDir()
	if c := o.Credential; c != nil {
		// x11vnc reads the file, then deletes it (rm:), as that user.
		for _, p := range []string{v.dir, pwFile} {
			if err := os.Chown(p, int(c.Uid), int(c.Gid)); err != nil {
				return fail(fmt.Errorf("start x11vnc: password file for uid %d: %w", c.Uid, err))
			}
		}
		home = v.dir
		if u, err := user.LookupId(strconv.FormatUint(uint64(c.Uid), 10)); err == nil && u.HomeDir != "" {
			home = u.HomeDir
		}
	}
	args := []string{"x11vnc", "-display", v.display}
	if o.XAuthority != "" {
		args = append(args, "-auth", o.XAuthority)
	}
	args = append(args, "-localhost", "-autoport", "5900", "-passwdfile", "rm:"+pwFile,
		"-forever", "-nevershared", "-norc", "-nocmds", "-noremote", "-nossl", "-noipv6", "-nolookup")
	if o.ViewOnly {
		args = append(args, "-viewonly")
	}
	env := []string{"PATH=" + searchPath(), "HOME=" + home, "DISPLAY=" + v.display}
	if o.XAuthority != "" {
		env = append(env, "XAUTHORITY="+o.XAuthority)
	} else if xa := os.Getenv("XAUTHORITY"); xa != "" {
		env = append(env, "XAUTHORITY="+xa)
	}
	port := &portWriter{found: make(chan uint32, 1), out: &v.out}
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: o.Credential}
	dieWithAgent(attr)
	v.cmd = &exec.Cmd{Path: path, Args: args, Env: env, Dir: v.dir, Stdout: port, Stderr: &v.out, SysProcAttr: attr}
	// Owned by v: starts x11vnc, then waits for it (stop kills it). The
	// parent-death signal (dieWithAgent) goes with the OS thread that forked
	// the child, not the process: this goroutine keeps that thread locked
	// until x11vnc has exited, so no idle-thread exit can fire it early.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := v.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = v.cmd.Wait()
		close(v.done)
	}()
	if err := <-started; err != nil {
		return fail(fmt.Errorf("start x11vnc: %w", err))
	}
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case p := <-port.found:
		v.reply = wire.DesktopReply{Host: "127.0.0.1", Port: p, Password: password, ViewOnly: o.ViewOnly,
			Server: "x11vnc on " + v.display}
		return v, nil
	case <-v.done:
		err = fmt.Errorf("x11vnc could not serve display %s (check desktop_display and desktop_xauthority): %s",
			v.display, lastLines(v.out.String(), 3))
	case <-ctx.Done():
		err = fmt.Errorf("start x11vnc: %w", context.Cause(ctx))
	case <-timer.C:
		err = fmt.Errorf("x11vnc did not report a port within %v: %s", startTimeout, lastLines(v.out.String(), 3))
	}
	v.stop()
	return nil, err
}

// running reports whether the process is still alive.
func (v *x11vnc) running() bool {
	select {
	case <-v.done:
		return false
	default:
		return true
	}
}

// stop ends the process group (SIGTERM, then SIGKILL), waits for the
// process and removes its directory.
func (v *x11vnc) stop() {
	if v.running() {
		pid := v.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		timer := time.NewTimer(stopGrace)
		select {
		case <-v.done:
		case <-timer.C:
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-v.done
		}
		timer.Stop()
	}
	<-v.done
	_ = os.RemoveAll(v.dir)
}

// portWriter is x11vnc's stdout: it reports the number of the first
// "PORT=NNNN" line and keeps everything in out.
type portWriter struct {
	mu    sync.Mutex
	line  []byte
	sent  bool
	found chan uint32
	out   *tailBuffer
}

func (w *portWriter) Write(p []byte) (int, error) {
	_, _ = w.out.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			if len(w.line) > 4096 {
				w.line = w.line[:0]
			}
			return len(p), nil
		}
		l := strings.TrimSpace(string(w.line[:i]))
		w.line = w.line[i+1:]
		if n, ok := strings.CutPrefix(l, "PORT="); ok {
			if port, err := strconv.ParseUint(n, 10, 16); err == nil && port > 0 {
				w.sent = true
				w.found <- uint32(port)
				return len(p), nil
			}
		}
	}
}

// lastLines is the last n non-empty lines of s, joined with "; ".
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strings.Join(lines[max(0, len(lines)-n):], "; ")
}

func searchPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/bin:/usr/bin:/bin"
}
