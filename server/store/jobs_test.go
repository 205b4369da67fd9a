package store

import (
	"context"
	"testing"
	"time"
)

func TestJobsRunsMoveForwardOnly(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	j := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", Params: map[string]string{"a": "b"}, Target: "all",
		MaxFailures: -1, Timeout: time.Minute, State: JobRunning, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	var runs []Run
	for i := 0; i < 507; i++ {
		runs = append(runs, Run{ID: NewID(), Seq: i, AgentID: NewID(), State: RunPending, PluginSHA256: "x", Version: "1.0.0"})
	}
	j.Total = len(runs)
	if err := s.CreateJob(ctx, j, runs); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(ctx, j.ID)
	if err != nil || got.Params["a"] != "b" || got.Timeout != time.Minute || !got.ExpiresAt.Equal(j.ExpiresAt) {
		t.Fatalf("GetJob = %+v, %v", got, err)
	}
	c, _ := s.RunCounts(ctx, j.ID, 0)
	if c.Undispatched != len(runs) || c.InFlight != 0 {
		t.Fatalf("counts = %+v", c)
	}
	page, _ := s.UndispatchedRuns(ctx, j.ID, -1, 0, 10)
	if len(page) != 10 || page[0].Seq != 0 {
		t.Fatalf("page = %d runs", len(page))
	}
	first, second := runs[0], runs[1]
	if err := s.MarkDispatched(ctx, []string{first.ID, second.ID}, now); err != nil {
		t.Fatal(err)
	}
	if c, _ = s.RunCounts(ctx, j.ID, 0); c.InFlight != 2 {
		t.Fatalf("in flight = %d", c.InFlight)
	}
	if fl, _ := s.InFlightRuns(ctx, first.AgentID); len(fl) != 1 {
		t.Fatalf("in-flight runs of agent = %v", fl)
	}

	// A report from another agent changes nothing; from the owner it
	// moves the run forward; a second result does not overwrite the first.
	changed, err := s.SaveReports(ctx,
		[]Started{{RunID: first.ID, AgentID: "someone-else", At: now}},
		[]Result{{AgentID: "someone-else", Run: Run{ID: first.ID, State: RunSucceeded}}})
	if err != nil || len(changed) != 0 {
		t.Fatalf("foreign report: %v %v", changed, err)
	}
	if _, err := s.SaveReports(ctx, []Started{{RunID: first.ID, AgentID: first.AgentID, At: now}}, nil); err != nil {
		t.Fatal(err)
	}
	res := Result{AgentID: first.AgentID, Run: Run{ID: first.ID, State: RunFailed, Error: "boom", Output: "out", EndedAt: now}}
	if changed, err := s.SaveReports(ctx, nil, []Result{res}); err != nil || !changed[j.ID] {
		t.Fatalf("result: %v %v", changed, err)
	}
	res.Run.State = RunSucceeded
	if changed, _ := s.SaveReports(ctx, nil, []Result{res}); len(changed) != 0 {
		t.Fatal("a second result overwrote the first")
	}
	rs, _ := s.JobRuns(ctx, j.ID, -1, 1)
	if rs[0].State != RunFailed || rs[0].Error != "boom" || rs[0].StartedAt.IsZero() {
		t.Fatalf("run = %+v", rs[0])
	}

	// Halting finishes only runs never sent.
	n, err := s.FinishRuns(ctx, j.ID, RunPending, RunHalted, "halted", true, now)
	if err != nil || n != len(runs)-2 {
		t.Fatalf("FinishRuns = %d, %v", n, err)
	}
	c, _ = s.RunCounts(ctx, j.ID, 0)
	if c.ByState[RunHalted] != len(runs)-2 || c.InFlight != 1 || c.ByState[RunFailed] != 1 {
		t.Fatalf("counts after halt = %+v", c)
	}
	if err := s.SetJobState(ctx, j.ID, JobHalted, now); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenJobs(ctx); len(open) != 0 {
		t.Fatalf("open jobs = %v", open)
	}
}
