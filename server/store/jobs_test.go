package store

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testJob stores a job of n runs: pending, but failed (no build) for the
// seqs in failed.
func testJob(tb testing.TB, s *Store, n int, failed ...int) (Job, []Run) {
	tb.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	j := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", Params: map[string]string{"a": "b"}, Target: "all",
		MaxFailures: -1, MaxFailuresBP: -1, Timeout: time.Minute, State: JobRunning, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Total: n}
	runs := make([]Run, n)
	for i := range runs {
		runs[i] = Run{ID: NewID(), JobID: j.ID, Seq: i, AgentID: NewID(), Hostname: "host", State: RunPending,
			PluginSHA256: strings.Repeat("ab", 32), PluginSize: 20 << 20, Version: "1.0.0"}
	}
	for _, i := range failed {
		runs[i].State, runs[i].Error, runs[i].EndedAt = RunFailed, "no build", now
	}
	if err := s.CreateJob(context.Background(), j, runs); err != nil {
		tb.Fatal(err)
	}
	return j, runs
}

func TestJobsRunsMoveForwardOnly(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	j, runs := testJob(t, s, 507)
	got, err := s.GetJob(ctx, j.ID)
	if err != nil || got.Params["a"] != "b" || got.Timeout != time.Minute || !got.ExpiresAt.Equal(j.ExpiresAt) || got.Counts != nil {
		t.Fatalf("GetJob = %+v, %v", got, err)
	}
	c, _ := s.RunCounts(ctx, j.ID, 0)
	if c.Undispatched != len(runs) || c.InFlight != 0 {
		t.Fatalf("counts = %+v", c)
	}
	page, _ := s.UndispatchedRuns(ctx, j.ID, -1, 0, 10)
	if len(page) != 10 || page[0].Seq != 0 || page[0].PluginSHA256 != runs[0].PluginSHA256 || page[0].AgentID != runs[0].AgentID {
		t.Fatalf("page = %+v", page)
	}
	first, second := runs[0], runs[1]
	claimed, err := s.ClaimRuns(ctx, []string{first.ID, second.ID}, now)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("ClaimRuns = %v, %v", claimed, err)
	}
	if again, err := s.ClaimRuns(ctx, []string{first.ID}, now.Add(time.Second)); err != nil || len(again) != 0 {
		t.Fatalf("a run was claimed twice: %v, %v", again, err)
	}
	if c, _ = s.RunCounts(ctx, j.ID, 0); c.InFlight != 2 || c.Undispatched != len(runs)-2 {
		t.Fatalf("counts after claim = %+v", c)
	}
	if open, _ := s.AgentOpenRuns(ctx, first.AgentID); len(open) != 1 || open[0].DispatchedAt.IsZero() || open[0].JobID != j.ID {
		t.Fatalf("open runs of agent = %+v", open)
	}

	// A report from another agent changes nothing; from the owner it
	// moves the run forward; a second result does not overwrite the first.
	sOK, rOK, err := s.SaveReports(ctx,
		[]Started{{RunID: first.ID, AgentID: "someone-else", At: now}},
		[]Result{{AgentID: "someone-else", Run: Run{ID: first.ID, State: RunSucceeded}}})
	if err != nil || sOK[0] || rOK[0] {
		t.Fatalf("foreign report: %v %v %v", sOK, rOK, err)
	}
	if sOK, _, err := s.SaveReports(ctx, []Started{{RunID: first.ID, AgentID: first.AgentID, At: now}}, nil); err != nil || !sOK[0] {
		t.Fatalf("start: %v %v", sOK, err)
	}
	res := Result{AgentID: first.AgentID, Run: Run{ID: first.ID, State: RunFailed, Error: "boom", Output: "out", EndedAt: now,
		Consent: `{"approved":true,"by":"alice"}`}}
	if _, rOK, err := s.SaveReports(ctx, nil, []Result{res}); err != nil || !rOK[0] {
		t.Fatalf("result: %v %v", rOK, err)
	}
	res.Run.State = RunSucceeded
	if _, rOK, _ := s.SaveReports(ctx, nil, []Result{res}); rOK[0] {
		t.Fatal("a second result overwrote the first")
	}
	rs, _ := s.JobRuns(ctx, j.ID, -1, 1)
	if rs[0].State != RunFailed || rs[0].Error != "boom" || rs[0].StartedAt.IsZero() || rs[0].Consent != `{"approved":true,"by":"alice"}` {
		t.Fatalf("run = %+v", rs[0])
	}
	if refs, err := s.RunRefs(ctx, []string{second.ID, "nope"}); err != nil || len(refs) != 1 || refs[second.ID] != (RunRef{j.ID, 1}) {
		t.Fatalf("RunRefs = %v, %v", refs, err)
	}

	// Halting finishes only runs never sent.
	n, err := s.FinishUndispatched(ctx, j.ID, RunHalted, "halted", now)
	if err != nil || n != len(runs)-2 {
		t.Fatalf("FinishUndispatched = %d, %v", n, err)
	}
	c, _ = s.RunCounts(ctx, j.ID, 0)
	if c.ByState[RunHalted] != len(runs)-2 || c.InFlight != 1 || c.ByState[RunFailed] != 1 {
		t.Fatalf("counts after halt = %+v", c)
	}
	if err := s.SetJobState(ctx, j.ID, JobHalted); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenJobs(ctx); len(open) != 1 || open[0].State != JobHalted {
		t.Fatalf("open jobs = %v", open)
	}
	final := map[string]int{RunHalted: 505, RunFailed: 1, RunSucceeded: 1}
	if err := s.EndJob(ctx, j.ID, JobHalted, now, final); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenJobs(ctx); len(open) != 0 {
		t.Fatalf("open jobs = %v", open)
	}
	if got, _ := s.GetJob(ctx, j.ID); !maps.Equal(got.Counts, final) || !got.EndedAt.Equal(now) || got.State != JobHalted {
		t.Fatalf("ended job = %+v", got)
	}
}

// ClaimRuns claims only runs still pending and never sent, across chunks,
// and says which.
func TestClaimRunsSkipsFinalAndSent(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	j, runs := testJob(t, s, 250, 7)
	if _, err := s.ClaimRuns(ctx, []string{runs[120].ID}, now); err != nil {
		t.Fatal(err)
	}
	if _, rOK, err := s.SaveReports(ctx, nil, []Result{{AgentID: runs[3].AgentID, Run: Run{ID: runs[3].ID, State: RunSucceeded}}}); err != nil || !rOK[0] {
		t.Fatalf("result of a run never sent: %v %v", rOK, err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	got, err := s.ClaimRuns(ctx, ids, now.Add(time.Second))
	if err != nil || len(got) != 247 {
		t.Fatalf("claimed %d, %v", len(got), err)
	}
	for _, id := range got {
		if id == runs[3].ID || id == runs[7].ID || id == runs[120].ID {
			t.Fatalf("claimed %s", id)
		}
	}
	tally, err := s.JobTally(ctx, j.ID, 10)
	if err != nil || tally.Counts.InFlight != 248 || tally.Counts.Undispatched != 0 || tally.Counts.Final != 2 ||
		tally.CanaryFinal != 2 || len(tally.InFlight) != 248 {
		t.Fatalf("tally = %+v (%d in flight), %v", tally.Counts, len(tally.InFlight), err)
	}
}

// ClaimSeqRange claims a page of runs never sent, less those that became
// final or were sent since the page was read.
func TestClaimSeqRange(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	j, runs := testJob(t, s, 30)
	page, err := s.UndispatchedRuns(ctx, j.ID, 9, 0, 10) // seqs 10..19
	if err != nil || len(page) != 10 || page[0].Seq != 10 || page[0].JobID != j.ID {
		t.Fatalf("page = %+v, %v", page, err)
	}
	if got, err := s.ClaimSeqRange(ctx, j.ID, 9, page[:5], now); err != nil || len(got) != 5 || got[4] != runs[14].ID {
		t.Fatalf("ClaimSeqRange = %v, %v", got, err)
	}
	// Meanwhile: one is sent on its own, one reports (never sent).
	if _, err := s.ClaimRuns(ctx, []string{runs[16].ID}, now); err != nil {
		t.Fatal(err)
	}
	if _, rOK, err := s.SaveReports(ctx, nil, []Result{{AgentID: runs[18].AgentID, Run: Run{ID: runs[18].ID, State: RunFailed}}}); err != nil || !rOK[0] {
		t.Fatal(err)
	}
	got, err := s.ClaimSeqRange(ctx, j.ID, 14, page[5:], now.Add(time.Second))
	if err != nil || len(got) != 3 || got[0] != runs[15].ID || got[1] != runs[17].ID || got[2] != runs[19].ID {
		t.Fatalf("ClaimSeqRange = %v, %v", got, err)
	}
	if c, _ := s.RunCounts(ctx, j.ID, 0); c.InFlight != 9 || c.Undispatched != 20 || c.Final != 1 {
		t.Fatalf("counts = %+v", c)
	}
}

func TestTallies(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j, runs := testJob(t, s, 20, 1, 15)
	j.Canary = 5
	fresh, err := s.NewJobTally(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	full, err := s.JobTally(ctx, j.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(fresh.Counts.ByState, full.Counts.ByState) || fresh.Counts.Undispatched != 18 || fresh.Counts.Final != 2 ||
		fresh.CanaryFinal != 1 || full.CanaryFinal != 1 || full.Counts.Undispatched != 18 || len(full.InFlight) != 0 {
		t.Fatalf("fresh %+v, full %+v", fresh, full)
	}
	now := time.Now()
	s.ClaimRuns(ctx, []string{runs[0].ID, runs[2].ID}, now)
	s.SaveReports(ctx, []Started{{RunID: runs[2].ID, AgentID: runs[2].AgentID, At: now}}, nil)
	full, err = s.JobTally(ctx, j.ID, 5)
	if err != nil || full.Counts.InFlight != 2 || full.Counts.ByState[RunRunning] != 1 || full.Counts.ByState[RunPending] != 17 {
		t.Fatalf("tally = %+v, %v", full, err)
	}
	states := map[string]string{}
	for _, f := range full.InFlight {
		states[f.RunID] = f.State
	}
	if states[runs[0].ID] != RunPending || states[runs[2].ID] != RunRunning {
		t.Fatalf("in flight = %+v", full.InFlight)
	}
	below, _ := s.RunCounts(ctx, j.ID, 5)
	if below.Final != 1 || below.InFlight != 2 || below.Undispatched != 2 {
		t.Fatalf("canary counts = %+v", below)
	}
}

// The queries the dispatcher runs while a job runs use the indexes meant
// for them (and no sort of the job's runs).
func TestJobQueryPlans(t *testing.T) {
	s, _ := newSQLiteStore(t) // EXPLAIN QUERY PLAN is SQLite's
	ctx := context.Background()
	for q, want := range map[string]string{
		`SELECT ` + unsentColumns + ` FROM runs WHERE job_id = $1 AND state = 'pending' AND dispatched_at IS NULL AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4`: "runs_undispatched",
		`UPDATE runs SET dispatched_at = $1 WHERE job_id = $2 AND state = 'pending' AND dispatched_at IS NULL AND seq > $3 AND seq <= $4`:                          "runs_undispatched",
		`UPDATE runs SET state = $1, error = $2, ended_at = $3 WHERE job_id = $4 AND state = 'pending' AND dispatched_at IS NULL`:                                  "runs_undispatched",
		`SELECT ` + runColumns + ` FROM runs WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`:                                                                 "runs_job_seq",
		`SELECT ` + sendColumns + ` FROM runs WHERE agent_id = $1 AND state IN ('pending', 'running')`:                                                             "runs_agent_open",
		`UPDATE runs SET dispatched_at = $1 WHERE state = 'pending' AND dispatched_at IS NULL AND id IN ($2, $3)`:                                                  "sqlite_autoindex_runs_1",
		saveResultSQL:     "sqlite_autoindex_runs_1",
		saveResultLeanSQL: "sqlite_autoindex_runs_1",
	} {
		n := strings.Count(q, "$")
		args := make([]any, n)
		for i := range args {
			args[i] = "x"
		}
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, want) || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\n  plan %q, want %s", q, p, want)
		}
	}
}

// BenchmarkJobRuns measures the store's part of a 10,000-agent job: create,
// claim (500 at a time) and store results (1,000 per transaction).
func BenchmarkJobRuns(b *testing.B) {
	const n = 10000
	ctx, cancel := context.WithCancel(context.Background()) // as the relay's are
	defer cancel()
	for b.Loop() {
		b.StopTimer()
		s, err := Open(ctx, b.TempDir()+"/relay.db")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		_, runs := testJob(b, s, n)
		t1 := time.Now()
		for i := 0; i < n; i += 500 {
			if got, err := s.ClaimSeqRange(ctx, runs[0].JobID, i-1, runs[i:i+500], time.Now()); err != nil || len(got) != 500 {
				b.Fatal(len(got), err)
			}
		}
		t2 := time.Now()
		for i := 0; i < n; i += 1000 {
			now := time.Now()
			var res []Result
			for _, r := range runs[i : i+1000] {
				res = append(res, Result{AgentID: r.AgentID, Run: Run{ID: r.ID, State: RunSucceeded, Needed: true,
					Summary: "no-op", Version: "1.0.0", StartedAt: now, EndedAt: now}})
			}
			if _, _, err := s.SaveReports(ctx, nil, res); err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		b.ReportMetric(float64(t1.Sub(t0).Microseconds())/n, "create-µs/run")
		b.ReportMetric(float64(t2.Sub(t1).Microseconds())/n, "claim-µs/run")
		b.ReportMetric(float64(t3.Sub(t2).Microseconds())/n, "result-µs/run")
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// Runs are written in groups of runGroup when they are pending on one build,
// one at a time otherwise; either way each reads back as it was given.
func TestCreateJobWritesEveryRunAsGiven(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	j := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", Target: "all", MaxFailures: -1, MaxFailuresBP: -1,
		Timeout: time.Minute, State: JobRunning, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	var want []Run
	for i := range 3*runGroup + 17 {
		r := Run{ID: NewID(), JobID: j.ID, Seq: i, AgentID: NewID(), Hostname: fmt.Sprintf("h%d", i), State: RunPending,
			PluginSHA256: strings.Repeat("ab", 32), PluginSize: 20 << 20, Version: "1.0.0"}
		switch {
		case i >= 2*runGroup && i%7 == 0: // another build now and then
			r.PluginSHA256, r.PluginSize, r.Version = strings.Repeat("cd", 32), 1, "1.0.1"
		case i%50 == 3: // no build for this one
			r.State, r.Error, r.EndedAt, r.PluginSHA256, r.PluginSize, r.Version = RunFailed, "no build", now, "", 0, ""
		}
		want = append(want, r)
	}
	err := s.CreateJobStream(ctx, &j, func(_ context.Context, emit func([]Run) error) error {
		for i := 0; i < len(want); i += 100 { // pages that do not line up with the groups
			if err := emit(want[i:min(i+100, len(want))]); err != nil {
				return err
			}
		}
		j.Total = len(want)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.JobRuns(ctx, j.ID, -1, 10*len(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d runs stored, want %d", len(got), len(want))
	}
	for i, g := range got {
		if !reflect.DeepEqual(g, want[i]) {
			t.Fatalf("run %d stored as\n%+v\nwant\n%+v", i, g, want[i])
		}
	}
}
