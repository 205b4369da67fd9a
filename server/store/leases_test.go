package store

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// A job's lease is held by one node at a time: taken while free, renewed by
// its holder, refused to another node until it expires, then taken over;
// ended jobs are never leased; released leases are free at once.
func TestJobLeases(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j1, _ := testJob(t, s, 2)
	j2, _ := testJob(t, s, 1)
	ended, _ := testJob(t, s, 1)
	now := time.Now().UTC()
	if err := s.EndJob(ctx, ended.ID, JobDone, now, map[string]int{}); err != nil {
		t.Fatal(err)
	}
	ttl := 10 * time.Second

	held, err := s.TakeJobLeases(ctx, "a", now, ttl)
	if err != nil || !slices.Equal(held, sortedIDs(j1.ID, j2.ID)) {
		t.Fatalf("a takes the free leases: %v %v", held, err)
	}
	if held, err := s.TakeJobLeases(ctx, "b", now.Add(time.Second), ttl); err != nil || len(held) != 0 {
		t.Fatalf("b took leases a holds: %v %v", held, err)
	}
	if ok, err := s.TakeJobLease(ctx, j1.ID, "b", now.Add(time.Second), ttl); ok || err != nil {
		t.Fatalf("b took j1's lease from a: %v %v", ok, err)
	}
	// a renews; the lease then outlives its first expiry.
	if held, err := s.TakeJobLeases(ctx, "a", now.Add(8*time.Second), ttl); err != nil || len(held) != 2 {
		t.Fatalf("a renews: %v %v", held, err)
	}
	if ok, _ := s.TakeJobLease(ctx, j1.ID, "b", now.Add(12*time.Second), ttl); ok {
		t.Fatal("b took a renewed lease before it expired")
	}
	node, exp, err := s.JobLease(ctx, j1.ID)
	if err != nil || node != "a" || !exp.Equal(now.Add(18*time.Second).Truncate(time.Microsecond)) {
		t.Fatalf("j1's lease: %q until %v (%v), want a until %v", node, exp, err, now.Add(18*time.Second))
	}
	// a stops renewing (it died): b takes both over once they expire.
	if held, err := s.TakeJobLeases(ctx, "b", now.Add(19*time.Second), ttl); err != nil || len(held) != 2 {
		t.Fatalf("b takes expired leases: %v %v", held, err)
	}
	if held, _ := s.TakeJobLeases(ctx, "a", now.Add(20*time.Second), ttl); len(held) != 0 {
		t.Fatalf("a came back and took b's leases: %v", held)
	}
	if node, _, _ := s.JobLease(ctx, ended.ID); node != "" {
		t.Fatalf("an ended job was leased to %q", node)
	}
	// Released: another node takes them at once.
	if err := s.ReleaseJobLeases(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TakeJobLease(ctx, j2.ID, "c", now.Add(21*time.Second), ttl); !ok || err != nil {
		t.Fatalf("c takes a released lease: %v %v", ok, err)
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
	now := time.Now().UTC()
	nodes := []string{"a", "b", "c", "d"}
	got := make([][]string, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.TakeJobLeases(ctx, n, now, time.Minute)
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
