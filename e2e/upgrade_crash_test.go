package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/agent/upgrade"
)

// serviceManager runs an agent the way systemd (Restart=always) or launchd
// (KeepAlive) do: with PATCHBAY_AGENT_RESTART=exit, started again whenever
// it exits, at most maxStarts times. The foreground mode the other tests use
// re-executes the agent after a swap, but nothing restarts an agent that
// crashed: a crash loop exists only under a service manager, so the test
// plays one. Ownership: one goroutine, stopped (the agent killed) by the
// test's cleanup, which waits for it.
type serviceManager struct {
	mu    sync.Mutex
	exits []int // exit statuses, in order
	stop  chan struct{}
	done  chan struct{}
}

func superviseAgent(t *testing.T, a *upAgent, maxStarts int) *serviceManager {
	t.Helper()
	m := &serviceManager{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for i := 0; i < maxStarts; i++ {
			cmd := exec.Command(a.Exe, "run", "--data", a.Dir, "--log-level", "debug", "--log-format", "json")
			cmd.Env = append(os.Environ(), "PATCHBAY_AGENT_RESTART=exit")
			cmd.Stdout, cmd.Stderr = a.log, a.log
			if err := cmd.Start(); err != nil {
				t.Errorf("service manager: start %s: %v", a.Exe, err)
				return
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-m.stop:
				cmd.Process.Kill()
				<-exited
				return
			case err := <-exited:
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
				fmt.Fprintf(a.log, "service manager: agent exited with status %d; starting it again\n", code)
				m.mu.Lock()
				m.exits = append(m.exits, code)
				m.mu.Unlock()
			}
		}
		fmt.Fprintf(a.log, "service manager: gave up after %d starts\n", maxStarts)
	}()
	t.Cleanup(func() { close(m.stop); <-m.done })
	return m
}

func (m *serviceManager) exitStatuses() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.exits...)
}

// TestAgentSelfUpdateCrashLoop upgrades an agent, run by a service manager,
// to a version that exits at every start before it connects. The rollback
// window is long, so only the count of starts can end the loop: the new
// version restores the previous binary at its start after
// upgrade.MaxStarts, and the old version reports the run failed with the
// crash reason, once.
func TestAgentSelfUpdateCrashLoop(t *testing.T) {
	f := newUpgradeFleet(t, 1)
	a := f.agents[0]
	oldBin, crashBin := agentBuild(t, upOld), agentBuild(t, upCrash)
	f.rel.add(t, upCrash, crashBin, f.key, nil)

	// Hand the agent from the foreground run to the service manager.
	a.proc.stop(t)
	m := superviseAgent(t, a, 2*upgrade.MaxStarts+4)
	waitFor(t, 20*time.Second, "agent online on "+upOld+" under the service manager", func() bool {
		ags := f.cli.Agents("id=" + a.ID)
		return len(ags) == 1 && ags[0].Online && ags[0].Version == upOld && len(m.exitStatuses()) == 0
	})

	rolled := a.log.when("upgrade: previous binary restored")
	j, err := f.cli.upgrade(t, "--version", upCrash, "--target", "id="+a.ID, "--rollback-after", "1h")
	if err == nil || len(j.Results) != 1 {
		t.Fatalf("crashing upgrade: exit %v, job %+v", err, j)
	}
	<-rolled
	r := j.Results[0]
	want := fmt.Sprintf("rolled back: %s crashed %d times before it connected", upCrash, upgrade.MaxStarts)
	if d := runDetails(t, r); r.State != "failed" || r.Error != want || !d.RolledBack || d.Before != upOld || d.After != upOld || r.Version != upOld {
		t.Fatalf("crashing upgrade: state %s, version %s, error %q (want %q), details %+v", r.State, r.Version, r.Error, want, d)
	}
	// The swap (75), the crashes (3 each), the rollback (75); the old
	// version runs since.
	wantExits := []int{upgrade.ExitRestart}
	for i := 0; i < upgrade.MaxStarts; i++ {
		wantExits = append(wantExits, 3)
	}
	wantExits = append(wantExits, upgrade.ExitRestart)
	if got := m.exitStatuses(); fmt.Sprint(got) != fmt.Sprint(wantExits) {
		t.Fatalf("the agent exited with %v, want %v", got, wantExits)
	}
	sameFile(t, a.Exe, oldBin, "executable after the rollback")
	sameFile(t, a.Exe+".failed", crashBin, "the rolled back binary")
	noStrayFiles(t, a.Exe, "patchbay-agent", "patchbay-agent.failed")
	waitFor(t, 20*time.Second, "agent online on "+upOld+" after the rollback", func() bool {
		ags := f.cli.Agents("id=" + a.ID)
		return len(ags) == 1 && ags[0].Online && ags[0].Version == upOld
	})
	if n := a.log.Count("crashing after start"); n != upgrade.MaxStarts {
		t.Fatalf("the new version crashed %d times, want %d", n, upgrade.MaxStarts)
	}
	if n := a.log.Count("upgrade failed"); n != 1 {
		t.Fatalf("the old version reported the failure %d times", n)
	}
	if n := a.log.Count("upgrade: fetching and verifying the release"); n != 1 {
		t.Fatalf("the agent began the upgrade %d times", n)
	}
}
