//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package sshd

// Other systems (not Unix, not Windows): commands and shells run on pipes without a
// terminal, as the agent's own account, and are
// killed alone (not as a tree). Untested.

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sync"
)

// Credential is the local user sessions run as. Running as another user is
// not supported on this system: Serve refuses a non-nil Credential.
type Credential struct {
	Uid, Gid    uint32
	Groups      []uint32
	NoSetGroups bool
}

const ptySupported = false

type process struct {
	cmd            *exec.Cmd
	tty            *os.File // always nil here
	stdin          *os.File
	stdout, stderr *os.File
	rel            sync.Once
}

func startProcess(spec procSpec) (*process, error) {
	if spec.cred != nil {
		return nil, errors.New("running as another user is not supported on " + runtime.GOOS)
	}
	if spec.pty != nil {
		return nil, errors.New("terminals are not supported on " + runtime.GOOS)
	}
	cmd := &exec.Cmd{
		Path: spec.path,
		Args: spec.args,
		Env:  append(append([]string(nil), spec.env...), spec.extraEnv...),
		Dir:  spec.dir,
	}
	if filepath.Base(spec.path) == spec.path {
		if lp, err := exec.LookPath(spec.path); err == nil {
			cmd.Path = lp
		}
	}
	p := &process{cmd: cmd}
	var ends [3][2]*os.File
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
	p.stdin, p.stdout, p.stderr = ends[0][1], ends[1][0], ends[2][0]
	err := cmd.Start()
	for _, f := range []*os.File{ends[0][0], ends[1][1], ends[2][1]} {
		_ = f.Close()
	}
	if err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

func (p *process) wait() exitStatus {
	_ = p.cmd.Wait()
	if code := p.cmd.ProcessState.ExitCode(); code >= 0 {
		return exitStatus{code: code}
	}
	return exitStatus{code: 255}
}

func (p *process) stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

func (p *process) resize(int, int) {}

func (p *process) signal(name string) error {
	if name == "KILL" || name == "TERM" || name == "INT" {
		p.stop()
		return nil
	}
	return errors.New("signal " + name + " not supported on " + runtime.GOOS)
}

func (p *process) closeStdin() { _ = p.stdin.Close() }

func (p *process) release() {
	p.rel.Do(func() {
		for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
			if f != nil {
				_ = f.Close()
			}
		}
	})
}

func lookupCredential(*Credential) (*user.User, error) {
	return nil, errors.New("running as another user is not supported on " + runtime.GOOS)
}

func defaultShell() string {
	if runtime.GOOS == "windows" {
		if c := os.Getenv("ComSpec"); c != "" {
			return c
		}
		return "cmd.exe"
	}
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}

func rootDir() string {
	if runtime.GOOS == "windows" {
		if d := os.Getenv("SystemDrive"); d != "" {
			return d + `\`
		}
		return `C:\`
	}
	return "/"
}

func defaultPath() string { return os.Getenv("PATH") }

// platformEnv passes on what Windows programs need to start at all.
func platformEnv() []string {
	var env []string
	if runtime.GOOS == "windows" {
		for _, k := range []string{"SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "TEMP", "TMP", "ProgramData", "ProgramFiles", "USERPROFILE"} {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	}
	return env
}
