package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// TestTierJobs: three relays on one PostgreSQL (A runs the embedded NATS),
// two agents on each. A technician on relay B runs a job over all six: the
// relay that holds the job's lease sends the runs of the other relays'
// agents over NATS, and every run succeeds exactly once. Then a job with a
// concurrency cap: the relay scheduling it is SIGKILLed while runs are
// still pending; another relay takes its lease over and goes on with the
// agents it can reach, the killed relay comes back and its agents with it,
// and every run ends in exactly one final state, none run twice, no result
// lost.
func TestTierJobs(t *testing.T) {
	t.Parallel() // independent: its own relays, data and agents
	base := startTier(t)
	db, key, natsAddr, creds, a := base.db, base.key, base.natsAddr, base.creds, base.a
	b := startTierRelay(t, a, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", creds, "--tier-key-file", key)
	c := startTierRelay(t, a, "--db", db, "--nats", "nats://"+natsAddr, "--nats-creds", creds, "--tier-key-file", key)
	relays := map[string]*Relay{"A": a, "B": b, "C": c}

	token := strings.TrimSpace(run(t, nil, bin("patchbay-server"), "admin-token", "--data", a.Dir, "--db", db))
	adminB := b.Login(token)
	good := newSigner(t, "secops@example.com")
	adminB.publish(t, good, bin("plugins/testplugin"))
	onRelay := map[string]string{} // agent ID -> relay name
	for _, name := range []string{"A", "B", "C"} {
		for range 2 {
			ag := relays[name].Enroll(adminB.Token("--tags", "fleet=tier"), "--trust", good.allowedSigners(t)).Start()
			onRelay[ag.ID] = name
		}
	}
	waitFor(t, 30*time.Second, "B to see all six agents online", func() bool {
		n := 0
		for _, ag := range adminB.Agents("fleet=tier") {
			if ag.Online {
				n++
			}
		}
		return n == 6
	})

	// 1. A job over every relay's agents.
	count := filepath.Join(t.TempDir(), "count")
	j, err := adminB.runJob(t, "testplugin", "--target", "fleet=tier", "--param", "countfile="+count)
	if err != nil || j.State != "done" || j.Counts["succeeded"] != 6 {
		t.Fatalf("job over three relays: %v, state %s, counts %v", err, j.State, j.Counts)
	}
	checkOnce(t, j, onRelay)
	if n := lines(t, count); n != 6 {
		t.Fatalf("the fix ran %d times over six agents, want 6", n)
	}
	if h := leaseHolders(relays, j.ID); len(h) != 1 {
		t.Fatalf("relays that took the job's lease: %v, want exactly one", h)
	}

	// 2. Its scheduling relay killed mid-job.
	count = filepath.Join(t.TempDir(), "count")
	// A cap of 3: the killed relay's two agents cannot hold every slot, so
	// the relay that takes over has room to go on with the others.
	id := adminB.startJob(t, "testplugin", "--target", "fleet=tier", "--concurrency", "3", "--param", "sleep=2s",
		"--param", "countfile="+count)
	var holder string
	waitFor(t, 10*time.Second, "a relay to take the job's lease", func() bool {
		h := leaseHolders(relays, id)
		if len(h) == 1 {
			holder = h[0]
		}
		return len(h) > 0
	})
	if holder == "A" {
		t.Fatalf("relay A, which runs the tier's NATS, schedules the job created on B; this test kills the scheduler and needs NATS to live")
	}
	waitFor(t, 30*time.Second, "the first runs to start", func() bool { return lines(t, count) >= 2 })
	killed := relays[holder]
	killed.proc.kill()
	survivor := map[string]*Relay{"B": c, "C": b}[holder]
	admin := survivor.Login(token)
	j = admin.job(t, id)
	t.Logf("relay %s killed with the job at %v", holder, j.Counts)
	took := waitFor(t, 30*time.Second, "another relay to take the lease over", func() bool {
		return linesWith(survivor.Log().String(), "job lease taken", id) > 0 || linesWith(a.Log().String(), "job lease taken", id) > 0
	})
	t.Logf("lease taken over %v after the kill", took.Round(100*time.Millisecond))
	if h := leaseHolders(map[string]*Relay{"A": a, "survivor": survivor}, id); len(h) != 1 {
		t.Fatalf("relays that took over the lease: %v, want one", h)
	}
	// The agents of the relays still up finish while the killed one is down.
	waitFor(t, 60*time.Second, "the runs of the agents on the relays still up", func() bool {
		done := 0
		for _, r := range admin.job(t, id).Results {
			if onRelay[r.AgentID] != holder && r.State == "succeeded" {
				done++
			}
		}
		return done == 4
	})
	if j := admin.job(t, id); j.Final() {
		t.Fatalf("the job ended while the agents of the killed relay were away: %v", j.Counts)
	}
	killed.Start() // the same address and data: its agents come back to it
	waitFor(t, 90*time.Second, "the job to end", func() bool { return admin.job(t, id).Final() })
	j = admin.job(t, id)
	if j.State != "done" || j.Counts["succeeded"] != 6 {
		t.Fatalf("job after its scheduler was killed: state %s, counts %v", j.State, j.Counts)
	}
	checkOnce(t, j, onRelay)
	if n := lines(t, count); n != 6 {
		t.Fatalf("the fix ran %d times over six agents, want 6 (nothing twice)", n)
	}
	// The relay that came back did not take the lease its successor renews.
	if linesWith(killed.Log().String(), "job lease taken", id) > 0 {
		t.Fatalf("relay %s took the job's lease again after its restart while another relay held it", holder)
	}
}

// checkOnce checks that a job has one final result per agent.
func checkOnce(t *testing.T, j apiv1.Job, agents map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range j.Results {
		if seen[r.AgentID] {
			t.Fatalf("agent %s has two results", r.AgentID)
		}
		seen[r.AgentID] = true
		if _, ok := agents[r.AgentID]; !ok || r.State != "succeeded" {
			t.Fatalf("result %+v", r)
		}
	}
	if len(seen) != len(agents) {
		t.Fatalf("%d results, want %d", len(seen), len(agents))
	}
}

// leaseHolders returns the names of the relays whose log says they took
// the job's lease (sorted as given by the map's iteration: callers only
// count them or take the single one).
func leaseHolders(relays map[string]*Relay, jobID string) []string {
	var out []string
	for name, r := range relays {
		if linesWith(r.Log().String(), "job lease taken", jobID) > 0 {
			out = append(out, name)
		}
	}
	return out
}
