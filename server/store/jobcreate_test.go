package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Job creations at once, each reading targets and the catalog while its
// transaction is open, all succeed: the producer's reads join the job's
// transaction. Before, each creation read on a second pooled connection;
// with the pool taken by the other creations waiting for SQLite's write
// lock, they failed with "database is locked" after the busy timeout.
func TestConcurrentJobCreationsReadInTheirTransaction(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", func(e *EnrollToken) { e.UsesAllowed = 0 })
	for i := range 20 {
		if _, _, err := s.EnrollAgent(ctx, "tok", Agent{Hostname: fmt.Sprintf("h%d", i)}, ts); err != nil {
			t.Fatal(err)
		}
	}
	const creators = 8 // twice the SQLite pool
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, creators)
	for range creators {
		wg.Go(func() {
			j := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", Target: "all", State: JobRunning,
				MaxFailures: -1, MaxFailuresBP: -1, CreatedAt: ts, ExpiresAt: ts.Add(time.Hour), Sites: []string{DefaultSiteID}}
			errs <- s.CreateJobStream(ctx, &j, func(ctx context.Context, emit func([]Run) error) error {
				for after := ""; ; {
					page, err := s.TargetPage(ctx, Scope{All: true}, after, 3, false)
					if err != nil {
						return err
					}
					if _, err := s.ListArtifacts(ctx, KindPlugin, "p"); err != nil {
						return err
					}
					runs := make([]Run, 0, len(page))
					for _, a := range page {
						after = a.ID
						runs = append(runs, Run{ID: NewID(), Seq: j.Total, AgentID: a.ID, Hostname: a.Hostname, State: RunPending})
						j.Total++
					}
					if err := emit(runs); err != nil {
						return err
					}
					if len(page) < 3 {
						return nil
					}
				}
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("create job: %v", err)
		}
	}
	jobs, err := s.ListJobs(ctx, Scope{All: true}, 100)
	if err != nil || len(jobs) != creators {
		t.Fatalf("jobs stored: %d (%v), want %d", len(jobs), err, creators)
	}
	for _, j := range jobs {
		if j.Total != 20 {
			t.Errorf("job %s total %d, want 20", j.ID, j.Total)
		}
	}
	t.Logf("%d job creations of 20 runs each at once: %v", creators, time.Since(start))
}
