package sshd

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestProcSession(t *testing.T) {
	for stat, want := range map[string]int{
		"1234 (bash) S 1 1234 1234 34816 1234 4194560": 1234,
		"99 (a) b) c) R 5 6 77 0":                      77,
		"99 (x)  S  1  2  314\n":                       314,
		"99 (weird":                                    -1,
		"99 (x) S 1":                                   -1,
		"99 (x) S 1 2 notanumber 5":                    -1,
		"":                                             -1,
	} {
		if got := procSession([]byte(stat)); got != want {
			t.Errorf("procSession(%q) = %d, want %d", stat, got, want)
		}
	}
}

// sessionHelperEnv makes the test binary a process of a session: "leader"
// starts a "job" in a process group of its own (as an interactive shell
// does), prints its pid and sleeps; "job" sleeps.
const sessionHelperEnv = "PATCHBAY_SSHD_TEST_SESSION"

// sessionHelperMain runs the test binary as a session's process when the
// environment says so.
func sessionHelperMain() (int, bool) {
	if role := os.Getenv(sessionHelperEnv); role != "" {
		return runSessionHelper(role), true
	}
	return 0, false
}

func runSessionHelper(role string) int {
	if role == "leader" {
		job := exec.Command(os.Args[0])
		job.Env = append(os.Environ(), sessionHelperEnv+"=job")
		job.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := job.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(job.Process.Pid)
	}
	time.Sleep(time.Minute) // killed long before
	return 0
}

// TestKillSessionsTogether ends many sessions at once, as a dropped link or
// a stopping agent does: each session's job, in a process group of its own,
// dies with it, and the sessions share walks of /proc.
func TestKillSessionsTogether(t *testing.T) {
	const n = 24
	leaders := make([]*exec.Cmd, n)
	jobs := make([]int, n)
	for i := range leaders {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), sessionHelperEnv+"=leader")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatalf("leader %d: %v", i, err)
		}
		if jobs[i], err = strconv.Atoi(line[:len(line)-1]); err != nil {
			t.Fatalf("leader %d printed %q", i, line)
		}
		leaders[i] = cmd
	}
	// A process outside these sessions, in a group of its own, survives.
	bystander := exec.Command("sleep", "60")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })

	var wg sync.WaitGroup
	for _, l := range leaders {
		wg.Go(func() { killSession(l.Process.Pid) })
	}
	wg.Wait()
	// killSession returns after the signals are sent; the jobs are gone as
	// soon as the kernel has delivered them.
	for i, pid := range jobs {
		waitGone(t, leaders[i].Process.Pid)
		waitGone(t, pid)
	}
	if processGone(bystander.Process.Pid) {
		t.Error("a process of another session was killed")
	}
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if reaper.walking || len(reaper.pending) != 0 {
		t.Errorf("reaper left walking=%v with %d sessions pending", reaper.walking, len(reaper.pending))
	}
}
