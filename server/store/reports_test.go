package store

import (
	"context"
	"testing"
	"time"
)

// A report counts what happened in its period, in the sites the caller
// reaches: incidents with time to resolve, fix and self-heal runs, alerts
// by kind and the top problems, agents by OS and version.
func TestReport(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	s := f.s
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	in := from.Add(48 * time.Hour)

	// A second HQ agent on another OS and version.
	tok := mkToken(t, s, "tok-hq2", func(e *EnrollToken) { e.SiteID = f.hq.ID })
	if _, _, err := s.EnrollAgent(ctx, tok.Hash, Agent{ID: NewID(), Hostname: "pc-02", OS: "windows", Version: "1.4.0"}, ts); err != nil {
		t.Fatal(err)
	}

	// Incidents: HQ opens three in the period (one before it), resolves
	// two of them in 1h and 3h; Main has one.
	mkInc := func(site Site, at time.Time, resolveAfter time.Duration) {
		t.Helper()
		x, err := s.CreateIncident(ctx, Incident{Title: "t", SiteID: site.ID, Severity: SeverityWarning}, nil, "", "alice", at)
		if err != nil {
			t.Fatal(err)
		}
		if resolveAfter > 0 {
			if err := s.ResolveIncident(ctx, Scope{All: true}, x.ID, "fixed", "", "alice", at.Add(resolveAfter)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkInc(f.hq, in, time.Hour)
	mkInc(f.hq, in, 3*time.Hour)
	mkInc(f.hq, in, 0)
	mkInc(f.hq, from.Add(-time.Hour), 0)
	mkInc(f.main, in, 5*time.Hour)

	// Runs: a person's fix on HQ (2 ended: 1 succeeded, 1 failed, plus one
	// pending), a self-heal on HQ (1 succeeded), a fix on Main, and a run
	// that ended after the period.
	mkJob := func(by string, agent Agent, states ...string) {
		t.Helper()
		j := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", Target: "id=" + agent.ID, State: JobRunning, MaxFailures: -1, MaxFailuresBP: -1,
			CreatedBy: by, CreatedAt: in, ExpiresAt: in.Add(time.Hour), Sites: []string{agent.SiteID}}
		var runs []Run
		for i, st := range states {
			r := Run{ID: NewID(), Seq: i, AgentID: agent.ID, Hostname: agent.Hostname, State: st}
			if st != RunPending {
				r.EndedAt = in.Add(time.Minute)
			}
			runs = append(runs, r)
		}
		j.Total = len(runs)
		if err := s.CreateJob(ctx, j, runs); err != nil {
			t.Fatal(err)
		}
	}
	mkJob("alice", f.hqAgent, RunSucceeded, RunFailed, RunPending)
	mkJob("policy disk (self-heal)", f.hqAgent, RunSucceeded)
	mkJob("bob", f.mainAgent, RunSucceeded)
	late := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", State: JobRunning, MaxFailures: -1, MaxFailuresBP: -1, CreatedBy: "alice",
		CreatedAt: to, ExpiresAt: to.Add(time.Hour), Sites: []string{f.hq.ID}, Total: 1}
	if err := s.CreateJob(ctx, late, []Run{{ID: NewID(), AgentID: f.hqAgent.ID, State: RunFailed, EndedAt: to.Add(time.Minute)}}); err != nil {
		t.Fatal(err)
	}

	// Alerts: disk on HQ raised three times, service once; offline on Main.
	for range 3 {
		if _, _, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.hqAgent.ID, Check: "disk", Severity: SeverityWarning}, "system", in); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.hqAgent.ID, Check: "service", Severity: SeverityWarning}, "system", in); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RaiseAlert(ctx, Alert{Kind: "offline", AgentID: f.mainAgent.ID, Severity: SeverityCritical}, "system", in); err != nil {
		t.Fatal(err)
	}

	rep, err := s.Report(ctx, f.hqScope, ReportFilter{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if rep.IncidentsOpened != 3 || rep.IncidentsResolved != 2 || rep.ResolveMedian != 2*time.Hour || rep.ResolveMean != 2*time.Hour {
		t.Errorf("hq incidents: %+v", rep)
	}
	if rep.Fixes != (RunStats{Ended: 2, Succeeded: 1, Failed: 1}) || rep.SelfHeals != (RunStats{Ended: 1, Succeeded: 1}) || rep.Fixes.Rate() != 0.5 {
		t.Errorf("hq runs: fixes %+v self-heals %+v", rep.Fixes, rep.SelfHeals)
	}
	if len(rep.AlertsByKind) != 1 || rep.AlertsByKind[0] != (Count{"check", 2}) {
		t.Errorf("hq alerts by kind: %+v", rep.AlertsByKind)
	}
	if len(rep.TopProblems) != 2 || rep.TopProblems[0] != (Problem{Kind: "check", Check: "disk", Alerts: 1, Raised: 3}) || rep.TopProblems[1].Check != "service" {
		t.Errorf("hq top problems: %+v", rep.TopProblems)
	}
	if len(rep.AgentsByOS) != 2 || len(rep.AgentsByVersion) != 2 {
		t.Errorf("hq agents: %+v %+v", rep.AgentsByOS, rep.AgentsByVersion)
	}

	// Every site: Main's figures join in; one site of many: only its own.
	all, err := s.Report(ctx, f.anyScope, ReportFilter{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if all.IncidentsOpened != 4 || all.IncidentsResolved != 3 || all.ResolveMedian != 3*time.Hour || all.Fixes.Ended != 3 || len(all.AlertsByKind) != 2 {
		t.Errorf("all sites: %+v", all)
	}
	main, err := s.Report(ctx, f.anyScope, ReportFilter{SiteID: f.main.ID, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if main.IncidentsOpened != 1 || main.Fixes.Ended != 1 || main.SelfHeals.Ended != 0 || len(main.AgentsByOS) != 1 || main.AlertsByKind[0] != (Count{"offline", 1}) {
		t.Errorf("main: %+v", main)
	}
	// A site out of scope gives nothing; so does the empty scope.
	if out, err := s.Report(ctx, f.hqScope, ReportFilter{SiteID: f.main.ID, From: from, To: to}); err != nil || out.IncidentsOpened != 0 || len(out.AgentsByOS) != 0 {
		t.Errorf("out of scope: %+v %v", out, err)
	}
	if _, err := s.Report(ctx, f.hqScope, ReportFilter{From: to, To: from}); err == nil {
		t.Error("empty period accepted")
	}
}
