package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Incidents: created with links and a note, scoped by site, notes
// appended, links once, resolved once, every change audited.
func TestIncidentsLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	s := f.s
	now := ts.Add(time.Hour)
	head0, _, _ := s.AuditHead(ctx)
	al, _, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.hqAgent.ID, Check: "disk", Severity: SeverityWarning, Summary: "disk full"}, "system", now)
	if err != nil {
		t.Fatal(err)
	}
	x, err := s.CreateIncident(ctx, Incident{Title: "disk full", Ticket: "INC-1", SiteID: f.hq.ID, Agents: []string{f.hqAgent.ID}, Severity: SeverityWarning},
		[]IncidentLink{{Kind: LinkAlert, RefID: al.ID}}, "first look", "alice", now)
	if err != nil || x.State != IncidentOpen || len(x.Links) != 1 || len(x.Notes) != 1 || x.Agents[0] != f.hqAgent.ID || x.CreatedBy != "alice" {
		t.Fatalf("create: %+v %v", x, err)
	}
	if _, err := s.CreateIncident(ctx, Incident{Title: "other", SiteID: f.main.ID, Severity: SeverityInfo}, nil, "", "bob", now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sc   Scope
		want int
	}{{f.hqScope, 1}, {f.mainScope, 1}, {f.anyScope, 2}, {Scope{}, 0}} {
		if l, err := s.ListIncidents(ctx, tc.sc, IncidentFilter{}, 0); err != nil || len(l) != tc.want {
			t.Errorf("scope %+v: %d incidents (%v), want %d", tc.sc, len(l), err, tc.want)
		}
	}
	if l, err := s.ListIncidents(ctx, f.anyScope, IncidentFilter{SiteID: f.main.ID, State: IncidentOpen}, 0); err != nil || len(l) != 1 || l[0].Title != "other" {
		t.Fatalf("filter: %+v %v", l, err)
	}
	// Out of scope: not found, for reading and every change.
	if _, err := s.GetIncident(ctx, f.mainScope, x.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get out of scope: %v", err)
	}
	if err := s.AddIncidentNote(ctx, f.mainScope, x.ID, "x", "eve", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("note out of scope: %v", err)
	}
	if err := s.ResolveIncident(ctx, f.mainScope, x.ID, "x", "", "eve", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve out of scope: %v", err)
	}
	if found, err := s.FindIncidents(ctx, f.hqScope, x.ID[:13], 5); err != nil || len(found) != 1 || found[0].ID != x.ID {
		t.Fatalf("find by prefix: %v %v", found, err)
	}
	if found, err := s.FindIncidents(ctx, f.mainScope, x.ID[:13], 5); err != nil || len(found) != 0 {
		t.Fatalf("find out of scope: %v %v", found, err)
	}
	if err := s.AddIncidentNote(ctx, f.hqScope, x.ID, "## found\nthe `tmp` dir", "alice", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if added, err := s.LinkIncident(ctx, f.hqScope, x.ID, IncidentLink{Kind: LinkJob, RefID: "job-1"}, "alice", now); err != nil || !added {
		t.Fatalf("link: %v %v", added, err)
	}
	if added, err := s.LinkIncident(ctx, f.hqScope, x.ID, IncidentLink{Kind: LinkJob, RefID: "job-1"}, "alice", now); err != nil || added {
		t.Fatalf("link twice: %v %v", added, err)
	}
	if err := s.ResolveIncident(ctx, f.hqScope, x.ID, "cleared tmp", "tmp-clean", "alice", now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveIncident(ctx, f.hqScope, x.ID, "again", "", "alice", now); !errors.Is(err, ErrIncidentResolved) {
		t.Fatalf("resolve twice: %v", err)
	}
	got, err := s.GetIncident(ctx, f.hqScope, x.ID)
	if err != nil || got.State != IncidentResolved || got.Resolution != "cleared tmp" || got.KnownFix != "tmp-clean" || got.ResolvedBy != "alice" ||
		len(got.Notes) != 2 || got.Notes[1].Body != "## found\nthe `tmp` dir" || len(got.Links) != 2 {
		t.Fatalf("after resolve: %+v %v", got, err)
	}
	recs, err := s.ListAudit(ctx, head0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		if strings.HasPrefix(r.Action, "incident.") {
			actions = append(actions, r.Action)
			if r.Target == x.ID && r.Detail["site"] != f.hq.ID {
				t.Errorf("%s: site %q", r.Action, r.Detail["site"])
			}
		}
	}
	if strings.Join(actions, " ") != "incident.create incident.create incident.note incident.link incident.resolve" {
		t.Fatalf("audit: %v", actions)
	}
}

// Known fixes: patterns checked, matched by check and text, searched,
// deleted; all audited.
func TestKnownFixes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	now := ts.Add(time.Hour)
	for _, bad := range []struct{ kind, pattern, want string }{
		{PatternRegexp, "(unclosed", "not a Go regexp"},
		{PatternRegexp, "((a{100}){100}){100}", "at most 1000"},
		{PatternRegexp, "a{1000}b{1000}c{1000}d{1000}e{1000}f{1000}", "too complex"},
		{PatternRegexp, strings.Repeat("a", MaxPatternLen+1), "at most 512"},
		{"glob", "x*", "use substring or regexp"},
	} {
		if _, err := s.CreateKnownFix(ctx, KnownFix{Name: "bad", Plugin: "script", Pattern: bad.pattern, PatternKind: bad.kind}, "alice", now); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("pattern %q (%s): %v, want %q", bad.pattern, bad.kind, err, bad.want)
		}
	}
	if l, _ := s.ListKnownFixes(ctx); len(l) != 0 {
		t.Fatalf("bad patterns stored: %+v", l)
	}
	disk, err := s.CreateKnownFix(ctx, KnownFix{Name: "tmp-clean", Title: "Clear temp files", Check: "disk", Plugin: "cacheclear",
		Params: map[string]string{"scopes": "temp"}, Description: "Frees **temp** space."}, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKnownFix(ctx, KnownFix{Name: "tmp-clean", Plugin: "x", Check: "y"}, "alice", now); !errors.Is(err, ErrKnownFixName) {
		t.Fatalf("same name: %v", err)
	}
	spool, err := s.CreateKnownFix(ctx, KnownFix{Name: "spooler", Title: "Restart the spooler", Pattern: `print(er)? queue.*stuck`, PatternKind: PatternRegexp,
		Plugin: "script", Params: map[string]string{"name": "restart-spooler"}}, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateKnownFix(ctx, KnownFix{Name: "offline", Pattern: "100%_OFF", PatternKind: PatternSubstring, Plugin: "script"}, "alice", now); err != nil {
		t.Fatal(err)
	}
	fixes, err := s.ListKnownFixes(ctx)
	if err != nil || len(fixes) != 3 || fixes[2].Params["scopes"] != "temp" {
		t.Fatalf("list: %+v %v", fixes, err)
	}
	names := func(l []KnownFix) string {
		var out []string
		for _, k := range l {
			out = append(out, k.Name)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		check string
		texts []string
		want  string
	}{
		{"disk", []string{"anything"}, "tmp-clean"},
		{"DISK", nil, "tmp-clean"},
		{"cpu", []string{"The Printer Queue is STUCK since 9:00"}, "spooler"},
		{"", []string{"nothing", "print queue stuck"}, "spooler"},
		{"", []string{"battery 100%_off now"}, "offline"},
		{"", []string{"battery 100% off"}, ""},
	} {
		if got := names(MatchKnownFixes(fixes, tc.check, tc.texts...)); got != tc.want {
			t.Errorf("match %q %q: %q, want %q", tc.check, tc.texts, got, tc.want)
		}
	}
	for q, want := range map[string]string{"TEMP": "tmp-clean", "spool": "spooler", "%": "offline", "_off": "offline", "nothing": ""} {
		if got, err := s.SearchKnownFixes(ctx, q); err != nil || names(got) != want {
			t.Errorf("search %q: %q %v, want %q", q, names(got), err, want)
		}
	}
	if found, err := s.FindKnownFix(ctx, spool.ID[:13], 5); err != nil || len(found) != 1 || found[0].Name != "spooler" {
		t.Fatalf("find by prefix: %+v %v", found, err)
	}
	if found, err := s.FindKnownFix(ctx, "tmp-clean", 5); err != nil || len(found) != 1 || found[0].ID != disk.ID {
		t.Fatalf("find by name: %+v %v", found, err)
	}
	if err := s.DeleteKnownFix(ctx, disk.ID, disk.Name, "alice", now); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKnownFix(ctx, disk.ID, disk.Name, "alice", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}
