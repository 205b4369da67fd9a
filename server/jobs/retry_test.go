package jobs

import (
	"slices"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// heldRun takes the one run an agent holds.
func heldRun(t *testing.T, a *agent) string {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.held) != 1 {
		t.Fatalf("agent %s holds %d runs, want 1", a.id, len(a.held))
	}
	id := a.held[0]
	a.held = nil
	return id
}

// A run its agent could not start (the plugin download failed) goes back to
// pending, never sent, and is sent again after the backoff; it runs once
// and the job ends succeeded. A report from another agent changes nothing.
func TestRunNotStartedIsSentAgain(t *testing.T) {
	f := newFixture(t, 2)
	for _, a := range f.agents {
		a.hold = true
	}
	j := f.createJob(nil)
	waitFor(t, "two in flight", func() bool { return f.check(j.ID).InFlight == 2 })
	f.waitHeld(1, f.agents...)
	a := f.agents[0]
	run := heldRun(t, a)
	f.d.NotStarted(f.agents[1].id, wire.RunNotStarted{RunID: run, Error: "not its agent"})
	f.d.Started(a.id, wire.RunStarted{RunID: run, Started: time.Now()})
	waitFor(t, "the run to start", func() bool { return f.check(j.ID).ByState[store.RunRunning] == 1 })
	f.d.NotStarted(a.id, wire.RunNotStarted{RunID: run, Error: "download plugin p 1.0.0: connection refused"})
	waitFor(t, "the run back to never sent", func() bool {
		c := f.check(j.ID)
		return c.Undispatched == 1 && c.InFlight == 1 && c.ByState[store.RunRunning] == 0
	})
	f.skew.Store(int64(retryBase + time.Second)) // past the backoff; the scheduler's tick sends it
	f.waitHeld(1, a)
	if runs, _, _ := a.received(); !slices.Equal(runs, []string{run, run}) {
		t.Fatalf("agent received %v, want its run twice", runs)
	}
	a.finish(store.RunSucceeded)
	f.agents[1].finish(store.RunSucceeded)
	if got := f.waitEnd(j.ID); got.State != store.JobDone || got.Counts[store.RunSucceeded] != 2 {
		t.Fatalf("job = %s %v", got.State, got.Counts)
	}
}

// A run that comes back not started after its job expired ends expired,
// like every run never sent, and the job ends.
func TestRunNotStartedAfterExpiryExpires(t *testing.T) {
	f := newFixture(t, 2)
	for _, a := range f.agents {
		a.hold = true
	}
	j := f.createJob(nil)
	waitFor(t, "two in flight", func() bool { return f.check(j.ID).InFlight == 2 })
	f.waitHeld(1, f.agents...)
	f.skew.Store(int64(2 * time.Hour))
	f.d.Wake()
	a := f.agents[0]
	run := heldRun(t, a)
	f.d.NotStarted(a.id, wire.RunNotStarted{RunID: run, Error: "download plugin p 1.0.0: connection refused"})
	waitFor(t, "the run to expire", func() bool { return f.check(j.ID).ByState[store.RunExpired] == 1 })
	f.agents[1].finish(store.RunSucceeded)
	if got := f.waitEnd(j.ID); got.Counts[store.RunExpired] != 1 || got.Counts[store.RunSucceeded] != 1 {
		t.Fatalf("job = %s %v", got.State, got.Counts)
	}
	if runs, _, _ := a.received(); len(runs) != 1 {
		t.Fatalf("the expired run was sent %d times, want 1", len(runs))
	}
}
