//go:build windows

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/patchbay/patchbay/plugins/scriptmeta"
)

// systemRoot is the Windows directory.
func systemRoot() string {
	if r := os.Getenv("SystemRoot"); r != "" {
		return r
	}
	return `C:\Windows`
}

// command returns the argv that runs file with shell.
func command(shell, file string) ([]string, error) {
	switch shell {
	case scriptmeta.ShellPowerShell:
		ps := filepath.Join(systemRoot(), "System32", "WindowsPowerShell", "v1.0", "powershell.exe")
		return []string{ps, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-File", file}, nil
	case scriptmeta.ShellSh, scriptmeta.ShellBash:
		return nil, errors.New(shell + " scripts do not run on Windows")
	}
	return nil, errors.New("unknown shell " + shell)
}

// passThrough are the variables of the agent's environment that Windows
// programs need to work at all; nothing else of it reaches a script.
var passThrough = []string{
	"SystemRoot", "SystemDrive", "windir", "ComSpec", "PATHEXT", "OS",
	"ProgramData", "ProgramFiles", "ProgramFiles(x86)", "ProgramW6432",
	"CommonProgramFiles", "CommonProgramFiles(x86)", "CommonProgramW6432",
	"ALLUSERSPROFILE", "PUBLIC", "USERPROFILE", "APPDATA", "LOCALAPPDATA",
	"COMPUTERNAME", "USERNAME", "USERDOMAIN", "NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE",
	"PSModulePath",
}

// baseEnv is the environment every script starts from.
func baseEnv(tmp string) []string {
	root := systemRoot()
	path := strings.Join([]string{
		root + `\System32`, root, root + `\System32\Wbem`, root + `\System32\WindowsPowerShell\v1.0`,
	}, ";")
	env := []string{"PATH=" + path, "LANG=C.UTF-8", "TMPDIR=" + tmp, "TEMP=" + tmp, "TMP=" + tmp}
	for _, k := range passThrough {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if _, ok := os.LookupEnv("SystemRoot"); !ok {
		env = append(env, "SystemRoot="+root)
	}
	if home := os.Getenv("USERPROFILE"); home != "" {
		env = append(env, "HOME="+home)
	}
	return env
}

// group is a Job object holding the script and everything it starts; the
// job is killed when this plugin closes it or dies.
type group struct{ job windows.Handle }

var ntResumeProcess = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtResumeProcess")

// newGroup has cmd start suspended, so that it is in the job before it can
// start anything.
func newGroup(cmd *exec.Cmd) *group {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		CreationFlags: windows.CREATE_SUSPENDED | windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_NO_WINDOW,
		HideWindow:    true,
	}
	return &group{}
}

// started puts the suspended process into a new job and resumes it.
func (g *group) started(cmd *exec.Cmd) error {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return fmt.Errorf("job object: %w", err)
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return fmt.Errorf("job object: %w", err)
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE|windows.PROCESS_SUSPEND_RESUME,
		false, uint32(cmd.Process.Pid))
	if err != nil {
		windows.CloseHandle(job)
		return fmt.Errorf("open process: %w", err)
	}
	defer windows.CloseHandle(h)
	if err := windows.AssignProcessToJobObject(job, h); err != nil {
		windows.CloseHandle(job)
		return fmt.Errorf("job object: %w", err)
	}
	g.job = job
	if st, _, _ := ntResumeProcess.Call(uintptr(h)); st != 0 {
		return fmt.Errorf("resume: NTSTATUS %#x", st)
	}
	return nil
}

// kill ends every process in the job.
func (g *group) kill() {
	if g.job != 0 {
		_ = windows.TerminateJobObject(g.job, 1)
	}
}

func (g *group) close() {
	if g.job != 0 {
		windows.CloseHandle(g.job)
		g.job = 0
	}
}
