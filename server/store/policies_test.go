package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPolicies(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p := Policy{ID: NewID(), Name: "disk", Target: "os=linux", Check: "builtin:disk-space",
		Params: map[string]string{"path": "/", "min_free_pct": "10"}, Interval: 5 * time.Minute,
		Fix: "cacheclear", FixParams: map[string]string{"dir": "/tmp/x"}, MaxFixesDay: 2, MaxFixesSiteHour: 3, CreatedAt: ts}
	if err := s.CreatePolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePolicy(ctx, Policy{ID: NewID(), Name: "disk", Check: "x", Interval: time.Minute, CreatedAt: ts}); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("duplicate name: %v", err)
	}
	got, err := s.GetPolicy(ctx, "disk")
	if err != nil || got.Params["min_free_pct"] != "10" || got.Interval != 5*time.Minute || got.FixParams["dir"] != "/tmp/x" || got.MaxFixesDay != 2 {
		t.Fatalf("get: %+v %v", got, err)
	}
	list, err := s.ListPolicies(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}

	agent := NewID()
	e := CheckEvent{ID: NewID(), AgentID: agent, PolicyID: p.ID, State: "failed", Summary: "5% free", At: ts}
	for i, want := range []bool{true, false} { // the same result twice is stored once
		stored, err := s.SaveCheckEvent(ctx, e)
		if err != nil || stored != want {
			t.Fatalf("save %d: stored %v err %v", i, stored, err)
		}
	}
	if _, err := s.SaveCheckEvent(ctx, CheckEvent{ID: NewID(), AgentID: agent, PolicyID: p.ID, State: "passed", At: ts.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	states, err := s.CheckStates(ctx, agent)
	if err != nil || len(states) != 1 || states[0].State != "passed" || !states[0].ChangedAt.Equal(ts.Add(time.Minute)) {
		t.Fatalf("states: %+v %v", states, err)
	}
	events, err := s.CheckEvents(ctx, agent, "", 10)
	if err != nil || len(events) != 2 || events[0].State != "failed" {
		t.Fatalf("events: %+v %v", events, err)
	}

	// Limits: per site and hour (3), per agent and day (2).
	site := NewID()
	now := ts.Add(2 * time.Hour)
	fix := func(agent string, at time.Time) (PolicyFix, error) {
		f := PolicyFix{RequestID: NewID(), PolicyID: p.ID, AgentID: agent, SiteID: site, JobID: NewID(), CreatedAt: at}
		return f, s.ReservePolicyFix(ctx, p, f)
	}
	for i := range 2 {
		f, err := fix(agent, now)
		if err != nil {
			t.Fatalf("fix %d: %v", i, err)
		}
		if err := s.ReservePolicyFix(ctx, p, f); !errors.Is(err, ErrPolicyFixExists) { // a repeated request is stored once
			t.Fatalf("repeated request: %v", err)
		}
		if job, err := s.PolicyFixFor(ctx, f.RequestID); err != nil || job != f.JobID {
			t.Fatalf("fix for: %s %v", job, err)
		}
	}
	if _, err := fix(agent, now); !errors.Is(err, ErrFixLimit) {
		t.Fatalf("third fix on the agent in a day: %v", err)
	}
	if _, err := fix(NewID(), now); err != nil {
		t.Fatalf("another agent: %v", err)
	}
	last, err := fix(NewID(), now)
	if !errors.Is(err, ErrFixLimit) {
		t.Fatalf("fourth fix in the site within the hour: %v", err)
	}
	if _, err := fix(NewID(), now.Add(2*time.Hour)); err != nil {
		t.Fatalf("an hour later: %v", err)
	}
	if err := s.ReleasePolicyFix(ctx, last.RequestID); err != nil {
		t.Fatal(err)
	}

	// Concurrent requests of many agents never exceed the site's limit.
	p2 := p
	p2.ID, p2.Name, p2.MaxFixesSiteHour = NewID(), "p2", 3
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			errs <- s.ReservePolicyFix(ctx, p2, PolicyFix{RequestID: NewID(), PolicyID: p2.ID, AgentID: NewID(), SiteID: site, JobID: NewID(), CreatedAt: now})
		}()
	}
	ok := 0
	for range 8 {
		if err := <-errs; err == nil {
			ok++
		} else if !errors.Is(err, ErrFixLimit) {
			t.Fatal(err)
		}
	}
	if ok != 3 {
		t.Fatalf("%d concurrent self-heals allowed, want 3", ok)
	}
	if _, err := s.PolicyFixFor(ctx, NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown request: %v", err)
	}

	if err := s.DeletePolicy(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if states, _ := s.CheckStates(ctx, agent); len(states) != 0 {
		t.Fatalf("states left after delete: %+v", states)
	}
	if err := s.DeletePolicy(ctx, p.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}
