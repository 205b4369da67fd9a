package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// Batches of last-seen and inventory writes over the same agents, given in
// opposite orders by two relays at once, never deadlock: rows are written
// in agent ID order. (PostgreSQL detects a deadlock and fails one side;
// SQLite serialises the transactions.)
func TestConcurrentBatchesTakeLocksInOneOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", func(e *EnrollToken) { e.UsesAllowed = 0 })
	var ids []string
	for i := range 200 {
		a, _, err := s.EnrollAgent(ctx, "tok", Agent{Hostname: fmt.Sprintf("h%d", i)}, ts)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	invs := func(ids []string) []Inventory {
		out := make([]Inventory, len(ids))
		for i, id := range ids {
			out[i] = Inventory{AgentID: id, Hostname: "x", OS: "linux", Arch: "amd64", Seen: ts}
		}
		return out
	}
	for round := range 10 {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		wg.Go(func() { errs <- s.TouchLastSeen(ctx, ids, ts) })
		wg.Go(func() { errs <- s.TouchLastSeen(ctx, reversed, ts) })
		wg.Go(func() { errs <- s.UpdateInventories(ctx, invs(ids)) })
		wg.Go(func() { errs <- s.UpdateInventories(ctx, invs(reversed)) })
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
