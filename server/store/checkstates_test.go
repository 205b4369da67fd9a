package store

import (
	"context"
	"testing"
	"time"
)

// PolicyStateSummary counts the states of the agents a scope reaches
// (never a revoked agent's), and lists the failing ones newest first, at
// most the limit asked.
func TestPolicyStateSummary(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mkToken(t, s, "tok", func(e *EnrollToken) { e.UsesAllowed = 10 })
	org := Organisation{ID: NewID(), Name: "Acme", CreatedAt: ts}
	lyon := Site{ID: NewID(), OrgID: org.ID, Name: "Lyon", CreatedAt: ts}
	if err := s.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSite(ctx, lyon); err != nil {
		t.Fatal(err)
	}
	agents := map[string]string{}
	for _, host := range []string{"pc-1", "pc-2", "pc-3", "pc-4", "lyon-1", "gone"} {
		a, _, err := s.EnrollAgent(ctx, "tok", Agent{ID: NewID(), Hostname: host}, ts)
		if err != nil {
			t.Fatal(err)
		}
		agents[host] = a.ID
	}
	if err := s.SetAgentSite(ctx, agents["lyon-1"], lyon.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAgent(ctx, agents["gone"], ts); err != nil {
		t.Fatal(err)
	}
	disk, other := NewID(), NewID()
	for i, r := range []struct{ host, policy, state string }{
		{"pc-1", disk, "passed"}, {"pc-2", disk, "failed"}, {"pc-3", disk, "failed"}, {"pc-4", disk, "error"},
		{"lyon-1", disk, "failed"}, {"gone", disk, "failed"}, {"pc-1", other, "passed"},
	} {
		e := CheckEvent{ID: NewID(), AgentID: agents[r.host], PolicyID: r.policy, State: r.state, Summary: r.host + " " + r.state,
			At: ts.Add(time.Duration(i) * time.Minute)}
		if _, err := s.SaveCheckEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.PolicyStateSummary(ctx, Scope{Sites: []string{DefaultSiteID}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	d := got[disk]
	if d == nil || d.Counts["passed"] != 1 || d.Counts["failed"] != 2 || d.Counts["error"] != 1 || len(d.Counts) != 3 {
		t.Fatalf("disk counts in the default site: %+v", d)
	}
	// pc-4 (error) changed last, then pc-3; pc-2 is over the limit.
	if len(d.Failing) != 2 || d.Failing[0].Hostname != "pc-4" || d.Failing[1].Hostname != "pc-3" ||
		d.Failing[0].Summary != "pc-4 error" || !d.Failing[0].ChangedAt.Equal(ts.Add(3*time.Minute)) {
		t.Fatalf("failing in the default site: %+v", d.Failing)
	}
	if o := got[other]; o == nil || o.Counts["passed"] != 1 || len(o.Failing) != 0 {
		t.Fatalf("other policy: %+v", o)
	}
	all, err := s.PolicyStateSummary(ctx, Scope{All: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := all[disk]; d.Counts["failed"] != 3 || d.Failing != nil {
		t.Fatalf("disk everywhere (no failing list asked): %+v", d)
	}
	none, err := s.PolicyStateSummary(ctx, Scope{}, 5)
	if err != nil || len(none) != 0 {
		t.Fatalf("no sites: %+v %v", none, err)
	}
}
