package jobs

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/store"
)

// agent is a simulated agent's link in the real hub: it records what the
// relay sends and answers runs as told.
type agent struct {
	id string
	f  *fixture

	mu      sync.Mutex
	runs    []string // run IDs received, in order
	cancels []string
	acks    []string
	hold    bool   // keep runs (answer later with finish)
	state   string // the result it reports (default succeeded)
	held    []string
}

func (a *agent) AgentID() string { return a.id }
func (a *agent) Close(string)    {}
func (a *agent) Open(context.Context, string) (*mux.Stream, error) {
	return nil, fmt.Errorf("no streams here")
}

func (a *agent) Send(typ string, body any) error {
	a.mu.Lock()
	var answer string
	switch typ {
	case wire.MsgRun:
		req := body.(wire.RunRequest)
		a.runs = append(a.runs, req.RunID)
		if a.hold {
			a.held = append(a.held, req.RunID)
		} else {
			answer = req.RunID
		}
	case wire.MsgRunCancel:
		a.cancels = append(a.cancels, body.(wire.RunCancel).RunID)
	case wire.MsgRunAck:
		a.acks = append(a.acks, body.(wire.RunAck).RunID)
	}
	state := a.state
	a.mu.Unlock()
	if answer != "" {
		a.f.d.Started(a.id, wire.RunStarted{RunID: answer, Started: time.Now()})
		a.report(answer, state)
	}
	return nil
}

func (a *agent) report(runID, state string) {
	if state == "" {
		state = store.RunSucceeded
	}
	now := time.Now()
	a.f.d.Result(a.id, wire.RunResult{RunID: runID, State: state, Summary: "test", Started: now, Ended: now})
}

// finish reports every held run with state.
func (a *agent) finish(state string) int {
	a.mu.Lock()
	held := a.held
	a.held = nil
	a.mu.Unlock()
	for _, id := range held {
		a.report(id, state)
	}
	return len(held)
}

func (a *agent) received() (runs, cancels, acks []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.runs), slices.Clone(a.cancels), slices.Clone(a.acks)
}

type fixture struct {
	t      *testing.T
	st     *store.Store
	hub    *hub.Hub
	d      *Dispatcher
	agents []*agent

	skew   atomic.Int64 // added to the dispatcher's clock
	mu     sync.Mutex
	audits []string
}

// newFixture starts a dispatcher on a real store with n agents, online.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := hub.New(&bus.Local{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	f := &fixture{t: t, st: st, hub: h}
	for i := 0; i < n; i++ {
		a := &agent{id: store.NewID(), f: f}
		f.agents = append(f.agents, a)
		if err := h.Register(a); err != nil {
			t.Fatal(err)
		}
	}
	f.start()
	return f
}

// start starts a dispatcher (again, as a relay restart does).
func (f *fixture) start() {
	f.d = New(f.st, f.hub, func(_ context.Context, _, action, target string, detail map[string]string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.audits = append(f.audits, action+" "+detail["state"])
		return nil
	}, nil, zerolog.Nop())
	f.d.now = func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }
	f.d.Start()
	f.t.Cleanup(f.d.Close)
}

// createJob stores a job with one run per agent (in agent order) and hands
// it to the dispatcher, as the API does.
func (f *fixture) createJob(mod func(*store.Job)) store.Job {
	f.t.Helper()
	now := time.Now().UTC()
	j := store.Job{ID: store.NewID(), Plugin: "p", PluginVersion: "1.0.0", Target: "all", MaxFailures: -1, MaxFailuresBP: -1,
		Timeout: time.Minute, State: store.JobRunning, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Total: len(f.agents)}
	if mod != nil {
		mod(&j)
	}
	var runs []store.Run
	for i, a := range f.agents {
		runs = append(runs, store.Run{ID: store.NewID(), Seq: i, AgentID: a.id, State: store.RunPending,
			PluginSHA256: "sha", PluginSize: 1, Version: "1.0.0"})
	}
	if err := f.st.CreateJob(context.Background(), j, runs); err != nil {
		f.t.Fatal(err)
	}
	if err := f.d.Created(context.Background(), j); err != nil {
		f.t.Fatal(err)
	}
	return j
}

// check compares the dispatcher's counts of an open job with the store's,
// atomically (every write to a tracked job's runs holds d.tx).
func (f *fixture) check(jobID string) store.Counts {
	f.t.Helper()
	f.d.tx.Lock()
	defer f.d.tx.Unlock()
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	js := f.d.jobs[jobID]
	if js == nil {
		f.t.Fatalf("job %s not open in the dispatcher", jobID)
	}
	mem := js.counts()
	db, err := f.st.RunCounts(context.Background(), jobID, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	if !maps.Equal(mem.ByState, db.ByState) || mem.InFlight != db.InFlight || mem.Undispatched != db.Undispatched || mem.Final != db.Final {
		f.t.Fatalf("memory %+v, store %+v", mem, db)
	}
	canary, err := f.st.RunCounts(context.Background(), jobID, js.job.Canary)
	if err != nil {
		f.t.Fatal(err)
	}
	if js.job.Canary > 0 && canary.Final != js.canaryFinal {
		f.t.Fatalf("canary final: memory %d, store %d", js.canaryFinal, canary.Final)
	}
	for id, f2 := range js.inFlight {
		if f.d.runs[id] != js || (f2.state != store.RunPending && f2.state != store.RunRunning) {
			f.t.Fatalf("run in flight %s: %+v", id, f2)
		}
	}
	return mem
}

// waitEnd waits for a job to end and returns it as stored.
func (f *fixture) waitEnd(jobID string) store.Job {
	f.t.Helper()
	var j store.Job
	waitFor(f.t, "job "+jobID+" to end", func() bool {
		var err error
		j, err = f.st.GetJob(context.Background(), jobID)
		return err == nil && !j.EndedAt.IsZero()
	})
	f.d.tx.Lock() // the store and memory agree whenever tx is free
	_, _, _, ok := f.d.Progress(jobID)
	f.d.tx.Unlock()
	if ok {
		f.t.Fatal("an ended job is still open in the dispatcher")
	}
	db, err := f.st.RunCounts(context.Background(), jobID, 0)
	if err != nil || !maps.Equal(db.ByState, j.Counts) {
		f.t.Fatalf("stored final counts %v, runs %v (%v)", j.Counts, db.ByState, err)
	}
	return j
}

// waitHeld waits until each of agents holds n runs (claimed runs are
// counted in flight just before they are sent).
func (f *fixture) waitHeld(n int, agents ...*agent) {
	f.t.Helper()
	waitFor(f.t, "runs to arrive", func() bool {
		for _, a := range agents {
			a.mu.Lock()
			held := len(a.held)
			a.mu.Unlock()
			if held != n {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Every agent gets its run once and every result is stored, acked and
// counted; the job ends done with its counts stored and audited.
func TestJobRunsEveryAgentOnce(t *testing.T) {
	f := newFixture(t, 1200) // more than two pages
	j := f.createJob(nil)
	got := f.waitEnd(j.ID)
	if got.State != store.JobDone || got.Counts[store.RunSucceeded] != 1200 || len(got.Counts) != 1 {
		t.Fatalf("job = %s %v", got.State, got.Counts)
	}
	for _, a := range f.agents {
		runs, _, acks := a.received()
		if len(runs) != 1 || len(acks) != 1 || acks[0] != runs[0] {
			t.Fatalf("agent %s: runs %v acks %v", a.id, runs, acks)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Equal(f.audits, []string{"job.finished done"}) {
		t.Fatalf("audits = %v", f.audits)
	}
}

// At most --concurrency runs are in flight, in seq order, and the counts in
// memory match the store's at every step.
func TestConcurrencyAndCountsMatchTheStore(t *testing.T) {
	f := newFixture(t, 10)
	for _, a := range f.agents {
		a.hold = true
	}
	j := f.createJob(func(j *store.Job) { j.Concurrency = 3 })
	for wave := 0; wave < 4; wave++ {
		want := min(3, 10-3*wave)
		waitFor(t, "a wave in flight", func() bool { return f.check(j.ID).InFlight == want })
		f.waitHeld(1, f.agents[3*wave:3*wave+want]...)
		time.Sleep(30 * time.Millisecond) // a few more walks: nothing more may start
		c := f.check(j.ID)
		if c.InFlight != want || c.Undispatched != 10-3*wave-want {
			t.Fatalf("wave %d: %+v", wave, c)
		}
		for i, a := range f.agents {
			if runs, _, _ := a.received(); (len(runs) == 1) != (i < 3*wave+want) {
				t.Fatalf("wave %d: agent %d got %d runs", wave, i, len(runs))
			}
		}
		for _, a := range f.agents[3*wave : 3*wave+want] {
			a.finish(store.RunSucceeded)
		}
	}
	if got := f.waitEnd(j.ID); got.Counts[store.RunSucceeded] != 10 {
		t.Fatalf("counts = %v", got.Counts)
	}
}

// A failing canary halts the job: nothing else starts, and the runs never
// sent end halted.
func TestFailingCanaryHalts(t *testing.T) {
	f := newFixture(t, 6)
	for _, a := range f.agents {
		a.state = store.RunFailed
	}
	j := f.createJob(func(j *store.Job) { j.Canary, j.MaxFailures = 1, 0 })
	got := f.waitEnd(j.ID)
	if got.State != store.JobHalted || got.Counts[store.RunFailed] != 1 || got.Counts[store.RunHalted] != 5 {
		t.Fatalf("job = %s %v", got.State, got.Counts)
	}
	for _, a := range f.agents[1:] {
		if runs, _, _ := a.received(); len(runs) != 0 {
			t.Fatal("a run started after the canary failed")
		}
	}
}

// A good canary of two runs alone, then the rest.
func TestCanaryRunsAlone(t *testing.T) {
	f := newFixture(t, 6)
	for _, a := range f.agents {
		a.hold = true
	}
	j := f.createJob(func(j *store.Job) { j.Canary, j.MaxFailures = 2, 0 })
	waitFor(t, "the canary", func() bool { return f.check(j.ID).InFlight == 2 })
	f.waitHeld(1, f.agents[:2]...)
	time.Sleep(30 * time.Millisecond)
	if c := f.check(j.ID); c.InFlight != 2 {
		t.Fatalf("canary: %+v", c)
	}
	f.agents[0].finish(store.RunSucceeded)
	time.Sleep(30 * time.Millisecond)
	if c := f.check(j.ID); c.InFlight != 1 {
		t.Fatalf("the rest started before the canary ended: %+v", c)
	}
	f.agents[1].finish(store.RunSkipped)
	waitFor(t, "the rest", func() bool { return f.check(j.ID).InFlight == 4 })
	f.waitHeld(1, f.agents[2:]...)
	for _, a := range f.agents[2:] {
		a.finish(store.RunSucceeded)
	}
	if got := f.waitEnd(j.ID); got.State != store.JobDone || got.Counts[store.RunSucceeded] != 5 {
		t.Fatalf("job = %s %v", got.State, got.Counts)
	}
}

// An agent offline when the job starts is counted offline, gets its run
// when it connects, and the job then ends.
func TestOfflineAgentCatchesUp(t *testing.T) {
	f := newFixture(t, 5)
	late := f.agents[1]
	f.hub.Unregister(late)
	j := f.createJob(nil)
	waitFor(t, "the online agents' results", func() bool { return f.check(j.ID).ByState[store.RunSucceeded] == 4 })
	if _, c, offline, ok := f.d.Progress(j.ID); !ok || offline != 1 || c.Undispatched != 1 {
		t.Fatalf("progress: %+v offline %d", c, offline)
	}
	if err := f.hub.Register(late); err != nil {
		t.Fatal(err)
	}
	f.d.AgentOnline(late.id)
	if got := f.waitEnd(j.ID); got.Counts[store.RunSucceeded] != 5 {
		t.Fatalf("counts = %v", got.Counts)
	}
	if runs, _, _ := late.received(); len(runs) != 1 {
		t.Fatalf("late agent got %d runs", len(runs))
	}
}

// Past its expiry, runs never sent end expired, and so do runs in flight on
// offline agents; runs on online agents still report.
func TestExpiry(t *testing.T) {
	f := newFixture(t, 4)
	for _, a := range f.agents {
		a.hold = true
	}
	gone, never := f.agents[0], f.agents[3]
	f.hub.Unregister(never)
	j := f.createJob(nil)
	waitFor(t, "three runs in flight", func() bool { return f.check(j.ID).InFlight == 3 })
	f.waitHeld(1, f.agents[:3]...)
	f.hub.Unregister(gone)
	f.skew.Store(int64(2 * time.Hour))
	f.d.Wake()
	waitFor(t, "expiry", func() bool { return f.check(j.ID).ByState[store.RunExpired] == 2 })
	f.agents[1].finish(store.RunSucceeded)
	f.agents[2].finish(store.RunFailed)
	got := f.waitEnd(j.ID)
	if got.State != store.JobDone || got.Counts[store.RunExpired] != 2 || got.Counts[store.RunSucceeded] != 1 || got.Counts[store.RunFailed] != 1 {
		t.Fatalf("job = %s %v", got.State, got.Counts)
	}
}

// Cancel ends the runs never sent at once and tells the running agents to
// stop; the job ends cancelled when they report.
func TestCancel(t *testing.T) {
	f := newFixture(t, 5)
	for _, a := range f.agents {
		a.hold = true
	}
	j := f.createJob(func(j *store.Job) { j.Concurrency = 2 })
	waitFor(t, "two runs in flight", func() bool { return f.check(j.ID).InFlight == 2 })
	f.waitHeld(1, f.agents[:2]...)
	n, err := f.d.Cancel(context.Background(), j.ID)
	if err != nil || n != 3 {
		t.Fatalf("Cancel = %d, %v", n, err)
	}
	if c := f.check(j.ID); c.ByState[store.RunCancelled] != 3 || c.Undispatched != 0 {
		t.Fatalf("after cancel: %+v", c)
	}
	for _, a := range f.agents[:2] {
		if runs, cancels, _ := a.received(); len(cancels) != 1 || cancels[0] != runs[0] {
			t.Fatalf("agent told %v, ran %v", cancels, runs)
		}
		a.finish(store.RunCancelled)
	}
	if got := f.waitEnd(j.ID); got.State != store.JobCancelled || got.Counts[store.RunCancelled] != 5 {
		t.Fatalf("job = %s %v", got.State, got.Counts)
	}
	if n, err := f.d.Cancel(context.Background(), j.ID); err != nil || n != 0 {
		t.Fatalf("Cancel of an ended job = %d, %v", n, err)
	}
}

// A relay restart rebuilds the state from the store: the counts match, the
// runs in flight are sent again when their agents reconnect (and never to
// anyone else), the rest is sent once, and the job ends.
func TestRestartRebuildsStateFromTheStore(t *testing.T) {
	f := newFixture(t, 8)
	for _, a := range f.agents {
		a.hold = true
	}
	j := f.createJob(func(j *store.Job) { j.Concurrency = 3; j.Canary = 1 })
	waitFor(t, "the canary", func() bool { return f.check(j.ID).InFlight == 1 })
	f.waitHeld(1, f.agents[0])
	f.agents[0].finish(store.RunSucceeded)
	waitFor(t, "three in flight", func() bool { return f.check(j.ID).InFlight == 3 })
	f.waitHeld(1, f.agents[1:4]...)
	f.agents[1].mu.Lock()
	startedRun := f.agents[1].held[0]
	f.agents[1].mu.Unlock()
	f.d.Started(f.agents[1].id, wire.RunStarted{RunID: startedRun, Started: time.Now()})
	waitFor(t, "a start", func() bool { return f.check(j.ID).ByState[store.RunRunning] == 1 })
	before := f.check(j.ID)

	f.d.Close() // the relay stops; every link drops
	for _, a := range f.agents {
		f.hub.Unregister(a)
	}
	f.start()
	if after := f.check(j.ID); !maps.Equal(after.ByState, before.ByState) || after.InFlight != 3 || after.Undispatched != 4 {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	time.Sleep(30 * time.Millisecond)
	for _, a := range f.agents {
		if err := f.hub.Register(a); err != nil {
			t.Fatal(err)
		}
		f.d.AgentOnline(a.id)
	}
	waitFor(t, "the runs in flight sent again", func() bool {
		for _, a := range f.agents[1:4] {
			if runs, _, _ := a.received(); len(runs) != 2 {
				return false
			}
		}
		return true
	})
	if c := f.check(j.ID); c.InFlight != 3 {
		t.Fatalf("concurrency exceeded after restart: %+v", c)
	}
	for _, a := range f.agents {
		a.mu.Lock()
		a.hold = false
		a.held = slices.Compact(a.held) // a run sent twice is answered once (the agent's journal)
		a.mu.Unlock()
		a.finish(store.RunSucceeded)
	}
	got := f.waitEnd(j.ID)
	if got.Counts[store.RunSucceeded] != 8 {
		t.Fatalf("counts = %v", got.Counts)
	}
	for i, a := range f.agents {
		runs, _, _ := a.received()
		want := 1
		if i >= 1 && i <= 3 {
			want = 2 // in flight across the restart: sent again
		}
		if len(runs) != want || runs[want-1] != runs[0] {
			t.Fatalf("agent %d got runs %v", i, runs)
		}
	}
}

// A result for a run that the store never recorded as sent (an earlier
// relay process sent it and died before recording it) is stored and
// counted; a result from the wrong agent or for a final run changes
// nothing.
func TestResultOfARunNeverRecordedAsSent(t *testing.T) {
	f := newFixture(t, 3)
	for _, a := range f.agents {
		a.hold = true
	}
	f.hub.Unregister(f.agents[2])
	j := f.createJob(func(j *store.Job) { j.Canary = 3 })
	waitFor(t, "two in flight", func() bool { return f.check(j.ID).InFlight == 2 })
	f.waitHeld(1, f.agents[:2]...)
	runs, err := f.st.UndispatchedRuns(context.Background(), j.ID, -1, 0, 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("undispatched = %v, %v", runs, err)
	}
	stale := runs[0]
	f.d.Result(f.agents[0].id, wire.RunResult{RunID: stale.ID, State: store.RunSucceeded}) // not its agent
	a := f.agents[2]
	f.d.Started(a.id, wire.RunStarted{RunID: stale.ID, Started: time.Now()})
	a.report(stale.ID, store.RunFailed)
	a.report(stale.ID, store.RunSucceeded) // again: stays failed
	waitFor(t, "the stale result", func() bool { return f.check(j.ID).ByState[store.RunFailed] == 1 })
	time.Sleep(30 * time.Millisecond)
	if c := f.check(j.ID); c.Undispatched != 0 || c.InFlight != 2 || c.Final != 1 {
		t.Fatalf("counts = %+v", c)
	}
	f.agents[0].finish(store.RunSucceeded)
	f.agents[1].finish(store.RunSucceeded)
	if got := f.waitEnd(j.ID); got.Counts[store.RunSucceeded] != 2 || got.Counts[store.RunFailed] != 1 {
		t.Fatalf("counts = %v", got.Counts)
	}
}
