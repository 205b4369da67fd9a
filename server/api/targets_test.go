package api

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/patchbay/patchbay/server/store"
)

// TestResolveTargetsPages resolves a selector over more agents than one
// page holds: every matching agent becomes exactly one run, seq follows
// agent ID order across pages, and no run of an earlier page reappears in a
// later one (the page buffer is reused).
func TestResolveTargetsPages(t *testing.T) {
	a, _, _ := testAPI(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := a.Store.CreateEnrollToken(ctx, store.EnrollToken{ID: store.NewID(), Hash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour), CreatedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	const n = 2*targetPage + 345
	for i := range n {
		if _, _, err := a.Store.EnrollAgent(ctx, "h", store.Agent{ID: store.NewID(), Hostname: fmt.Sprintf("pc-%04d", i)}, now); err != nil {
			t.Fatal(err)
		}
	}
	// Hostnames not ending in 0, 3, 6 or 9.
	sel := selector.MustParse("hostname!=pc-*0,hostname!=pc-*3,hostname!=pc-*6,hostname!=pc-*9")
	matched := map[string]bool{}
	for i := range n {
		if d := i % 10; d != 0 && d != 3 && d != 6 && d != 9 {
			matched[fmt.Sprintf("pc-%04d", i)] = true
		}
	}

	job := store.Job{ID: store.NewID(), Plugin: "sysinfo", PluginVersion: "1.0.0", CreatedAt: now}
	var got []store.Run
	pages := 0
	err := a.resolveTargets(ctx, store.Scope{All: true}, &job, sel, apiv1.JobCreate{Target: "test"}, func(runs []store.Run) error {
		pages++
		got = append(got, runs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages != 3 {
		t.Errorf("%d pages emitted, want 3", pages)
	}
	if len(got) != len(matched) || job.Total != len(matched) {
		t.Fatalf("%d runs, job total %d, want %d", len(got), job.Total, len(matched))
	}
	seen := map[string]bool{}
	for i, r := range got {
		if r.Seq != i {
			t.Fatalf("run %d has seq %d", i, r.Seq)
		}
		if !matched[r.Hostname] || seen[r.AgentID] {
			t.Fatalf("run %d: agent %s (%s) not matched or seen twice", i, r.AgentID, r.Hostname)
		}
		seen[r.AgentID] = true
		if i > 0 && got[i-1].AgentID >= r.AgentID {
			t.Fatalf("run %d: agent IDs out of order: %s then %s", i, got[i-1].AgentID, r.AgentID)
		}
	}
}
