package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// A job's lease is held by one node at a time: taken while free, renewed by
// its holder, refused to another node until it expires by the database's
// clock, then taken over; ended jobs are never leased; released leases are
// free at once. No relay's clock takes part: the store reads the
// database's (PostgreSQL's now(), SQLite's own time), so relays whose
// clocks disagree by minutes still agree on who holds a lease.
func TestJobLeases(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j1, _ := testJob(t, s, 2)
	j2, _ := testJob(t, s, 1)
	ended, _ := testJob(t, s, 1)
	if err := s.EndJob(ctx, ended.ID, JobDone, time.Now().UTC(), map[string]int{}); err != nil {
		t.Fatal(err)
	}
	ttl := 1500 * time.Millisecond

	held, err := s.TakeJobLeases(ctx, "a", ttl)
	if err != nil || !slices.Equal(held, sortedIDs(j1.ID, j2.ID)) {
		t.Fatalf("a takes the free leases: %v %v", held, err)
	}
	if held, err := s.TakeJobLeases(ctx, "b", ttl); err != nil || len(held) != 0 {
		t.Fatalf("b took leases a holds: %v %v", held, err)
	}
	if ok, err := s.TakeJobLease(ctx, j1.ID, "b", ttl); ok || err != nil {
		t.Fatalf("b took j1's lease from a: %v %v", ok, err)
	}
	// a renews: the lease runs ttl from the database's time of the renewal.
	before := dbClock(t, s)
	if held, err := s.TakeJobLeases(ctx, "a", ttl); err != nil || len(held) != 2 {
		t.Fatalf("a renews: %v %v", held, err)
	}
	after := dbClock(t, s)
	node, exp, err := s.JobLease(ctx, j1.ID)
	if err != nil || node != "a" || exp.Before(before.Add(ttl).Truncate(time.Microsecond)) || exp.After(after.Add(ttl)) {
		t.Fatalf("j1's lease: %q until %v (%v), want a until between %v and %v (the database's clock)", node, exp, err, before.Add(ttl), after.Add(ttl))
	}
	// a stops renewing (it died): b takes both over once they expire by
	// the database's clock, and not before.
	tries := 0
	waitLease(t, 10*time.Second, func() bool {
		tries++
		held, err := s.TakeJobLeases(ctx, "b", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) == 0 {
			return false
		}
		if now := dbClock(t, s); len(held) != 2 || now.Before(exp) {
			t.Fatalf("b took %v at %v, before a's lease expired at %v", held, now, exp)
		}
		return true
	})
	if tries < 2 {
		t.Fatalf("b took a's renewed leases at its first try")
	}
	if held, _ := s.TakeJobLeases(ctx, "a", ttl); len(held) != 0 {
		t.Fatalf("a came back and took b's leases: %v", held)
	}
	if node, _, _ := s.JobLease(ctx, ended.ID); node != "" {
		t.Fatalf("an ended job was leased to %q", node)
	}
	// Released: another node takes them at once.
	if err := s.ReleaseJobLeases(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TakeJobLease(ctx, j2.ID, "c", ttl); !ok || err != nil {
		t.Fatalf("c takes a released lease: %v %v", ok, err)
	}
}

// dbClock is the database's time, as the store reads it for leases.
func dbClock(t *testing.T, s *Store) time.Time {
	t.Helper()
	now, err := s.dbNow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// waitLease polls cond every 100 ms until it holds or timeout passes.
func waitLease(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no lease taken over after %v", timeout)
		}
	}
}

// Nodes racing for the same free leases: each job ends up with exactly one
// holder, and every node's answer agrees with the database.
func TestJobLeaseRace(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	var jobs []string
	for range 5 {
		j, _ := testJob(t, s, 1)
		jobs = append(jobs, j.ID)
	}
	nodes := []string{"a", "b", "c", "d"}
	got := make([][]string, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.TakeJobLeases(ctx, n, time.Minute)
		}()
	}
	wg.Wait()
	holders := map[string]string{}
	for i, n := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %s: %v", n, errs[i])
		}
		for _, id := range got[i] {
			if h, ok := holders[id]; ok {
				t.Fatalf("job %s leased to both %s and %s", id, h, n)
			}
			holders[id] = n
		}
	}
	for _, id := range jobs {
		node, _, err := s.JobLease(ctx, id)
		if err != nil || node == "" || node != holders[id] {
			t.Fatalf("job %s: the database says %q (%v), the nodes say %q", id, node, err, holders[id])
		}
	}
}

// A relay of a tier ends at start only its own sessions left open (and
// those from before sessions recorded their relay); a relay alone ends all.
func TestEndOpenSessionsOfOneNode(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	ts := time.Now().UTC().Truncate(time.Second)
	mk := func(node string) string {
		id := NewID()
		if err := s.CreateSession(ctx, Session{ID: id, AgentID: "agent", Technician: "t", Actor: "a", Reason: "r",
			Capabilities: []string{"shell"}, RequestedAt: ts, Node: node}, nil); err != nil {
			t.Fatal(err)
		}
		return id
	}
	mine, other, old := mk("relay-a"), mk("relay-b"), mk("")
	if n, err := s.EndOpenSessions(ctx, "relay-a", "the relay restarted", ts); n != 2 || err != nil {
		t.Fatalf("relay-a ended %d sessions (%v), want its own and the old one", n, err)
	}
	for id, want := range map[string]string{mine: SessionFailed, old: SessionFailed, other: SessionRequested} {
		if got, err := s.GetSession(ctx, id); err != nil || got.State != want {
			t.Errorf("session %s: %s (%v), want %s", id, got.State, err, want)
		}
	}
	if n, err := s.EndOpenSessions(ctx, "", "the relay restarted", ts); n != 1 || err != nil {
		t.Fatalf("a relay alone ended %d sessions (%v), want the last one", n, err)
	}
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}
