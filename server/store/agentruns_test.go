package store

import (
	"context"
	"testing"
)

func TestAgentRunsNewestFirst(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	j1, runs1 := testJob(t, s, 3)
	agent := runs1[1].AgentID
	j2 := j1
	j2.ID, j2.Total = NewID(), 1
	run2 := Run{ID: NewID(), JobID: j2.ID, Seq: 0, AgentID: agent, Hostname: "host", State: RunPending, Version: "1.0.0"}
	if err := s.CreateJob(ctx, j2, []Run{run2}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AgentRuns(ctx, agent, 10)
	if err != nil || len(got) != 2 || got[0].ID != run2.ID || got[0].JobID != j2.ID || got[1].ID != runs1[1].ID {
		t.Fatalf("AgentRuns = %+v, %v: want the second job's run, then the first's", got, err)
	}
	if got, err := s.AgentRuns(ctx, agent, 1); err != nil || len(got) != 1 || got[0].ID != run2.ID {
		t.Fatalf("AgentRuns limit 1 = %+v, %v", got, err)
	}
	if got, err := s.AgentRuns(ctx, NewID(), 10); err != nil || len(got) != 0 {
		t.Fatalf("runs of an unknown agent = %v, %v", got, err)
	}
}
