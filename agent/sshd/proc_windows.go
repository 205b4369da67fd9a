package sshd

// Windows: a terminal is a pseudo console (ConPTY); commands without one run
// on pipes. Every process goes into a job object, so stop ends what it
// started too. A Credential runs the process as the user logged in at the
// console (WTSQueryUserToken, which needs the agent to run as LocalSystem):
// Windows cannot start a process as a named account without its password.
// The logic that does not need Windows (command line, environment block,
// sizes, exit status) is in winproc.go, tested everywhere; this file is only
// the system calls. Not run in CI (Linux); it is compiled and vetted there.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Credential is the local user sessions run as. On Windows a non-nil
// Credential means the user logged in at the console; its fields are not
// used (they match the Unix type so that other packages convert it).
type Credential struct {
	Uid, Gid    uint32
	Groups      []uint32
	NoSetGroups bool
}

const ptySupported = true

type process struct {
	cmd            *exec.Cmd // with pipes; nil with a terminal
	tty            *conPTY   // with a terminal
	stdin          *os.File
	stdout, stderr *os.File
	proc           windows.Handle // the process, with a terminal (pipes: cmd.Process)
	killed         atomic.Bool    // stop ran before the exit was read

	mu       sync.Mutex // guards job against release
	job      windows.Handle
	released bool
	rel      sync.Once
}

func startProcess(spec procSpec) (*process, error) {
	path := spec.path
	if filepath.Base(path) == path {
		if lp, err := exec.LookPath(path); err == nil {
			path = lp
		}
	}
	var token windows.Token
	if spec.cred != nil {
		t, err := consoleUserToken()
		if err != nil {
			return nil, err
		}
		token = t
		defer token.Close()
	}
	env := append(append([]string(nil), spec.env...), spec.extraEnv...)
	if spec.pty != nil {
		return startConsole(spec, path, env, token)
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        spec.args,
		Env:         env,
		Dir:         spec.dir,
		SysProcAttr: &syscall.SysProcAttr{CmdLine: windowsCommandLine(spec.args), Token: syscall.Token(token)},
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
	// Children it starts before this are not in the job; exec cannot start
	// the process suspended.
	if h, err := windows.OpenProcess(windows.PROCESS_TERMINATE|windows.PROCESS_SET_QUOTA, false, uint32(cmd.Process.Pid)); err == nil {
		p.job, _ = newKillJob(h)
		_ = windows.CloseHandle(h)
	}
	return p, nil
}

// startConsole starts the process on a new pseudo console, suspended until
// it is in its job.
func startConsole(spec procSpec, path string, env []string, token windows.Token) (*process, error) {
	block, err := windowsEnvBlock(env)
	if err != nil {
		return nil, err
	}
	tty, err := newConPTY(spec.pty.cols, spec.pty.rows)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*process, error) {
		_ = tty.Close()
		return nil, err
	}
	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		return fail(fmt.Errorf("terminal: %w", err))
	}
	defer attrs.Delete()
	// The attribute's value is the console handle itself, not a pointer to it.
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE, *(*unsafe.Pointer)(unsafe.Pointer(&tty.hpc)), unsafe.Sizeof(tty.hpc)); err != nil {
		return fail(fmt.Errorf("terminal: %w", err))
	}
	si := windows.StartupInfoEx{ProcThreadAttributeList: attrs.List()}
	si.Cb = uint32(unsafe.Sizeof(si))
	si.Flags = windows.STARTF_USESTDHANDLES // none: the console is the child's I/O, not the agent's handles
	app, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return fail(err)
	}
	line, err := windows.UTF16PtrFromString(windowsCommandLine(spec.args))
	if err != nil {
		return fail(err)
	}
	var dir *uint16
	if spec.dir != "" {
		if dir, err = windows.UTF16PtrFromString(spec.dir); err != nil {
			return fail(err)
		}
	}
	flags := uint32(windows.EXTENDED_STARTUPINFO_PRESENT | windows.CREATE_UNICODE_ENVIRONMENT | windows.CREATE_SUSPENDED)
	var pi windows.ProcessInformation
	if token != 0 {
		err = windows.CreateProcessAsUser(token, app, line, nil, nil, false, flags, &block[0], dir, &si.StartupInfo, &pi)
	} else {
		err = windows.CreateProcess(app, line, nil, nil, false, flags, &block[0], dir, &si.StartupInfo, &pi)
	}
	if err != nil {
		return fail(fmt.Errorf("start %s: %w", path, err))
	}
	p := &process{tty: tty, proc: pi.Process}
	p.job, _ = newKillJob(pi.Process)
	if _, err := windows.ResumeThread(pi.Thread); err != nil {
		_ = windows.TerminateProcess(pi.Process, terminatedExitCode)
		_ = windows.CloseHandle(pi.Thread)
		p.release()
		return nil, fmt.Errorf("start %s: resume: %w", path, err)
	}
	_ = windows.CloseHandle(pi.Thread)
	return p, nil
}

// newKillJob puts the process into a new job that ends every process in it
// when it is terminated or its last handle closes.
func newKillJob(proc windows.Handle) (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, err
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		_ = windows.CloseHandle(job)
		return 0, err
	}
	if err := windows.AssignProcessToJobObject(job, proc); err != nil {
		_ = windows.CloseHandle(job)
		return 0, err
	}
	return job, nil
}

// consoleUserToken is the primary token of the user logged in at the
// console, for CreateProcessAsUser.
func consoleUserToken() (windows.Token, error) {
	s := windows.WTSGetActiveConsoleSessionId()
	if s == 0xFFFFFFFF {
		return 0, errors.New("run as the console user: nobody is logged in at the console")
	}
	var t windows.Token
	if err := windows.WTSQueryUserToken(s, &t); err != nil {
		return 0, fmt.Errorf("run as the console user: WTSQueryUserToken: %w (the agent must run as LocalSystem, and a user must be logged in at the console)", err)
	}
	return t, nil
}

func (p *process) wait() exitStatus {
	if p.cmd != nil {
		_ = p.cmd.Wait()
		return windowsExitStatus(uint32(p.cmd.ProcessState.ExitCode()), p.killed.Load())
	}
	var code uint32
	if _, err := windows.WaitForSingleObject(p.proc, windows.INFINITE); err != nil {
		return exitStatus{code: 255}
	}
	err := windows.GetExitCodeProcess(p.proc, &code)
	// The output pipe ends only when the console closes; closing it now lets
	// the copier read the last output and then EOF.
	p.tty.closeConsole()
	if err != nil {
		return exitStatus{code: 255}
	}
	return windowsExitStatus(code, p.killed.Load())
}

func (p *process) stop() {
	p.killed.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		return
	}
	switch {
	case p.job != 0:
		_ = windows.TerminateJobObject(p.job, terminatedExitCode)
	case p.proc != 0:
		_ = windows.TerminateProcess(p.proc, terminatedExitCode)
	case p.cmd != nil && p.cmd.Process != nil:
		_ = p.cmd.Process.Kill()
	}
}

func (p *process) resize(cols, rows int) {
	if p.tty != nil {
		p.tty.resize(cols, rows)
	}
}

func (p *process) signal(name string) error {
	switch name {
	case "INT":
		if p.tty != nil {
			_, err := p.tty.Write([]byte{0x03}) // the console turns ^C into CTRL_C_EVENT
			return err
		}
		p.stop()
		return nil
	case "KILL", "TERM", "HUP":
		p.stop()
		return nil
	}
	return errors.New("signal " + name + " not supported on windows")
}

func (p *process) closeStdin() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	}
}

// release closes the console or pipes and the process's handles.
func (p *process) release() {
	p.rel.Do(func() {
		if p.tty != nil {
			_ = p.tty.Close()
		}
		for _, f := range []*os.File{p.stdin, p.stdout, p.stderr} {
			if f != nil {
				_ = f.Close()
			}
		}
		p.mu.Lock()
		p.released = true
		if p.job != 0 {
			_ = windows.CloseHandle(p.job) // ends what is left (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)
		}
		if p.proc != 0 {
			_ = windows.CloseHandle(p.proc)
		}
		p.mu.Unlock()
	})
}

// conPTY is a pseudo console and the agent's ends of its two pipes.
type conPTY struct {
	hpc      windows.Handle
	in       *os.File // the client's input goes here
	out      *os.File // the console's output comes from here
	closeHPC sync.Once
}

func newConPTY(cols, rows int) (*conPTY, error) {
	var inR, inW, outR, outW windows.Handle
	if err := windows.CreatePipe(&inR, &inW, nil, 0); err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	if err := windows.CreatePipe(&outR, &outW, nil, 0); err != nil {
		_ = windows.CloseHandle(inR)
		_ = windows.CloseHandle(inW)
		return nil, fmt.Errorf("terminal: %w", err)
	}
	x, y := consoleSize(cols, rows)
	var hpc windows.Handle
	err := windows.CreatePseudoConsole(windows.Coord{X: x, Y: y}, inR, outW, 0, &hpc)
	// The console holds its own copies of its ends.
	_ = windows.CloseHandle(inR)
	_ = windows.CloseHandle(outW)
	if err != nil {
		_ = windows.CloseHandle(inW)
		_ = windows.CloseHandle(outR)
		return nil, fmt.Errorf("terminal: CreatePseudoConsole (needs Windows 10 1809 or later): %w", err)
	}
	return &conPTY{hpc: hpc, in: os.NewFile(uintptr(inW), "conpty-in"), out: os.NewFile(uintptr(outR), "conpty-out")}, nil
}

func (c *conPTY) Read(b []byte) (int, error)  { return c.out.Read(b) }
func (c *conPTY) Write(b []byte) (int, error) { return c.in.Write(b) }

func (c *conPTY) resize(cols, rows int) {
	x, y := consoleSize(cols, rows)
	_ = windows.ResizePseudoConsole(c.hpc, windows.Coord{X: x, Y: y})
}

// closeConsole closes the pseudo console, which ends its processes and,
// after the last output, the output pipe. Someone must be reading that
// pipe: on older Windows versions ClosePseudoConsole waits until it drains.
func (c *conPTY) closeConsole() {
	c.closeHPC.Do(func() { windows.ClosePseudoConsole(c.hpc) })
}

// Close closes the input, the console (draining its output meanwhile) and
// the output.
func (c *conPTY) Close() error {
	_ = c.in.Close()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, c.out)
	}()
	c.closeConsole()
	<-drained
	return c.out.Close()
}

// lookupCredential is the console user's account.
func lookupCredential(*Credential) (*user.User, error) {
	t, err := consoleUserToken()
	if err != nil {
		return nil, err
	}
	defer t.Close()
	tu, err := t.GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("run as the console user: %w", err)
	}
	return user.LookupId(tu.User.Sid.String())
}

func defaultShell() string {
	if c := os.Getenv("ComSpec"); c != "" {
		return c
	}
	return "cmd.exe"
}

func rootDir() string {
	if d := os.Getenv("SystemDrive"); d != "" {
		return d + `\`
	}
	return `C:\`
}

func defaultPath() string { return os.Getenv("PATH") }

// platformEnv passes on what Windows programs need to start at all.
func platformEnv() []string {
	var env []string
	for _, k := range []string{"SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "TEMP", "TMP", "ProgramData", "ProgramFiles", "USERPROFILE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
