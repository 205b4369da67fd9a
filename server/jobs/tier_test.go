package jobs

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/store"
)

// pairLinks are the links of one relay of a pair sharing a store and a
// bus: its own hub, and the other relay's for the agents held there (the
// server routes those over NATS to the relay that holds them; here the hop
// is a call).
type pairLinks struct{ here, there *hub.Hub }

func (l pairLinks) Online(id string) bool { return l.here.Online(id) || l.there.Online(id) }

func (l pairLinks) Send(id, typ string, body any) error {
	if l.here.Online(id) {
		return l.here.Send(id, typ, body)
	}
	return l.there.Send(id, typ, body)
}

// tierPair starts two relays' dispatchers on one store and one bus, n
// agents held by each; each agent reports to the dispatcher of its relay.
// Both fixtures list every agent (f1's first), so a job either creates
// covers all. before runs on each dispatcher before it starts.
func tierPair(t *testing.T, n int, before func(*Dispatcher)) (f1, f2 *fixture) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &bus.Local{}
	var hubs [2]*hub.Hub
	for i := range hubs {
		if hubs[i], err = hub.New(&bus.Local{}, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(hubs[i].Close)
	}
	f1, f2 = &fixture{t: t, st: st, hub: hubs[0]}, &fixture{t: t, st: st, hub: hubs[1]}
	var all []*agent
	for i, f := range []*fixture{f1, f2} {
		for range n {
			a := &agent{id: store.NewID(), f: f}
			all = append(all, a)
			if err := hubs[i].Register(a); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, f := range []*fixture{f1, f2} {
		f.agents = all
		f.d = New(st, pairLinks{here: hubs[i], there: hubs[1-i]}, nil, nil, zerolog.Nop())
		f.d.now = func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }
		f.d.JoinTier(Tier{Node: []string{"relay-1", "relay-2"}[i], Bus: b})
		if before != nil {
			before(f.d)
		}
		f.d.Start()
		t.Cleanup(f.d.Close)
	}
	return f1, f2
}

// A job created on relay 1 over the agents of both relays: relay 1 holds
// its lease and sends every run; the results of relay 2's agents, stored by
// relay 2, reach relay 1 as notes, so that with a concurrency of 1 the job
// goes on past each of them. The resync from the store is off: the notes
// alone must do it.
func TestTierRemoteRunsAndNotes(t *testing.T) {
	f1, f2 := tierPair(t, 2, func(d *Dispatcher) { d.tier.resyncAt = time.Now().Add(time.Hour) })
	j := f1.createJob(func(j *store.Job) { j.Concurrency = 1 })
	got := f1.waitEnd(j.ID)
	if got.State != store.JobDone || got.Counts[store.RunSucceeded] != 4 {
		t.Fatalf("job %s %v", got.State, got.Counts)
	}
	for _, a := range f1.agents {
		if runs, _, acks := a.received(); len(runs) != 1 || len(acks) != 1 {
			t.Fatalf("agent of %s: runs %v acks %v, want one each", map[*fixture]string{f1: "relay 1", f2: "relay 2"}[a.f], runs, acks)
		}
	}
	if _, _, _, ok := f2.d.Progress(j.ID); ok {
		t.Fatal("relay 2 tracks a job relay 1 holds")
	}
	node, _, err := f1.st.JobLease(context.Background(), j.ID)
	if err != nil || node != "relay-1" {
		t.Fatalf("lease of the job: %q %v, want relay-1", node, err)
	}
}

// The relays' clocks disagree by minutes (relay 2's runs 5 minutes ahead):
// leases are timed by the store's clock, not the relays', so relay 2 never
// takes the lease relay 1 keeps renewing. Then relay 1 stops renewing (its
// clock jumps an hour back: its next renewal is an hour away): relay 2
// takes the job over, once the lease has expired, with the runs in flight
// that relay 1 sent; relay 1, its clock right again, lets go of it; the
// job ends on relay 2 with every run once.
func TestTierLeaseTakeover(t *testing.T) {
	f1, f2 := tierPair(t, 2, nil)
	for _, a := range f1.agents {
		a.hold = true
	}
	f2.skew.Store(int64(5 * time.Minute))
	j := f1.createJob(nil)
	f1.waitHeld(1, f1.agents...)
	ctx := context.Background()
	_, first, err := f1.st.JobLease(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	renewals := 0
	last := first
	waitFor(t, "relay 1 to renew its lease twice", func() bool {
		node, exp, err := f1.st.JobLease(ctx, j.ID)
		if err != nil || node != "relay-1" {
			t.Fatalf("relay 2, its clock 5 minutes ahead, took the lease relay 1 renews: held by %q (%v)", node, err)
		}
		if exp.After(last) {
			renewals++
			last = exp
		}
		return renewals >= 2
	})
	if _, _, _, ok := f2.d.Progress(j.ID); ok {
		t.Fatal("relay 2, its clock 5 minutes ahead, schedules the job relay 1 holds")
	}

	f1.skew.Store(int64(-time.Hour))
	waitFor(t, "relay 2 to take the lease over once expired", func() bool {
		_, _, _, on2 := f2.d.Progress(j.ID)
		return on2
	})
	f1.skew.Store(0)
	waitFor(t, "relay 1 to let go", func() bool {
		_, _, _, on1 := f1.d.Progress(j.ID)
		return !on1
	})
	if c := f2.check(j.ID); c.InFlight != 4 {
		t.Fatalf("relay 2 took the job over with %d runs in flight, want 4", c.InFlight)
	}
	for _, a := range f1.agents {
		a.finish(store.RunSucceeded)
	}
	got := f2.waitEnd(j.ID)
	if got.State != store.JobDone || got.Counts[store.RunSucceeded] != 4 {
		t.Fatalf("job %s %v", got.State, got.Counts)
	}
	for _, a := range f1.agents {
		runs, _, _ := a.received()
		for _, r := range runs {
			if r != runs[0] {
				t.Fatalf("agent got runs %v, want one run", runs)
			}
		}
	}
}

// A relay that starts while another holds a job's lease leaves the job
// alone: it does not load it, so it neither expires nor sends again the
// runs the holder has in flight; the holder finishes the job.
func TestTierRelayStartingLeavesHeldJobsAlone(t *testing.T) {
	f1, f2 := tierPair(t, 2, nil)
	for _, a := range f1.agents {
		a.hold = true
	}
	j := f1.createJob(nil)
	f1.waitHeld(1, f1.agents...)
	// Relay 2 restarts (a new node).
	f2.d.Close()
	f2.d = New(f2.st, pairLinks{here: f2.hub, there: f1.hub}, nil, nil, zerolog.Nop())
	f2.d.now = func() time.Time { return time.Now().Add(time.Duration(f2.skew.Load())) }
	f2.d.JoinTier(Tier{Node: "relay-2-again", Bus: f1.d.tier.Bus})
	f2.d.Start() // loads the jobs whose leases it takes, before it returns
	t.Cleanup(f2.d.Close)
	if _, _, _, ok := f2.d.Progress(j.ID); ok {
		t.Fatal("a starting relay loaded a job whose lease another relay holds")
	}
	for _, a := range f1.agents {
		a.finish(store.RunSucceeded)
	}
	got := f1.waitEnd(j.ID)
	if got.State != store.JobDone || got.Counts[store.RunSucceeded] != 4 {
		t.Fatalf("job %s %v, want done with every run succeeded", got.State, got.Counts)
	}
	for _, a := range f1.agents {
		if runs, _, _ := a.received(); len(runs) != 1 {
			t.Fatalf("agent got runs %v, want one", runs)
		}
	}
}

// A job cancelled on a relay that does not hold it: its runs never sent end
// cancelled at once, and the holder, told by a note, reads the job again
// and tells its agents to stop the runs in flight.
func TestTierCancelOnAnotherRelay(t *testing.T) {
	f1, f2 := tierPair(t, 2, func(d *Dispatcher) { d.tier.resyncAt = time.Now().Add(time.Hour) })
	for _, a := range f1.agents {
		a.hold = true
	}
	j := f1.createJob(func(j *store.Job) { j.Concurrency = 3 })
	f1.waitHeld(1, f1.agents[:3]...) // two on relay 1, one on relay 2
	n, err := f2.d.Cancel(context.Background(), j.ID)
	if err != nil || n != 1 {
		t.Fatalf("cancel on relay 2: %d runs never started (%v), want 1", n, err)
	}
	waitFor(t, "the holder to tell the agents to stop", func() bool {
		for _, a := range f1.agents[:3] {
			if _, cancels, _ := a.received(); len(cancels) != 1 {
				return false
			}
		}
		return true
	})
	for _, a := range f1.agents {
		a.finish(store.RunCancelled)
	}
	got := f1.waitEnd(j.ID)
	if got.State != store.JobCancelled || got.Counts[store.RunCancelled] != 4 {
		t.Fatalf("job %s %v, want cancelled with every run cancelled", got.State, got.Counts)
	}
}
