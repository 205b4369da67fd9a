package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An agent's pending updates are replaced by each report (an older one is
// ignored), and patch compliance sorts the agents of the caller's sites into
// patched, security pending, other pending and never checked.
func TestPendingUpdatesAndCompliance(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	s := f.s
	tok := mkToken(t, s, "tok-hq-2", func(e *EnrollToken) { e.SiteID = f.hq.ID })
	hq2, _, err := s.EnrollAgent(ctx, tok.Hash, Agent{ID: NewID(), Hostname: "pc-02"}, ts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PendingUpdates(ctx, f.hqAgent.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("never checked: %v", err)
	}
	t1 := ts.Add(time.Hour)
	put := func(agentID string, at time.Time, sec int, ups ...PendingUpdate) bool {
		t.Helper()
		ok, err := s.PutPendingUpdates(ctx, UpdateCheck{AgentID: agentID, CheckedAt: at, RunID: "r-" + at.Format("150405"), Manager: "apt", Security: sec}, ups)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	ssl := PendingUpdate{Name: "openssl", Arch: "amd64", From: "3.0.11", Version: "3.0.15", Security: true, Category: "Debian-Security"}
	tz := PendingUpdate{Name: "tzdata", Version: "2024b"}
	if !put(f.hqAgent.ID, t1, 1, tz, ssl, ssl) {
		t.Fatal("first report not stored")
	}
	c, ups, err := s.PendingUpdates(ctx, f.hqAgent.ID)
	if err != nil || c.Pending != 2 || c.Security != 1 || c.Manager != "apt" || !c.CheckedAt.Equal(t1) || len(ups) != 2 || ups[0] != ssl || ups[1] != tz {
		t.Fatalf("stored = %+v %+v %v", c, ups, err)
	}
	// An older report (a result resent after a reconnect) changes nothing;
	// a newer one replaces the list.
	if put(f.hqAgent.ID, ts, 0) {
		t.Fatal("older report stored")
	}
	if !put(hq2.ID, t1, 0, tz) || !put(f.mainAgent.ID, t1, 0) {
		t.Fatal("reports not stored")
	}
	c, ups, _ = s.PendingUpdates(ctx, f.hqAgent.ID)
	if c.Pending != 2 || len(ups) != 2 {
		t.Fatalf("after an older report: %+v %+v", c, ups)
	}
	if !put(f.hqAgent.ID, t1.Add(time.Hour), 0) {
		t.Fatal("newer report not stored")
	}
	if c, ups, _ = s.PendingUpdates(ctx, f.hqAgent.ID); c.Pending != 0 || len(ups) != 0 {
		t.Fatalf("after install: %+v %+v", c, ups)
	}
	if !put(f.hqAgent.ID, t1.Add(2*time.Hour), 1, ssl) {
		t.Fatal("report not stored")
	}

	// A third HQ agent never checked.
	tok3 := mkToken(t, s, "tok-hq-3", func(e *EnrollToken) { e.SiteID = f.hq.ID })
	if _, _, err := s.EnrollAgent(ctx, tok3.Hash, Agent{ID: NewID(), Hostname: "pc-03"}, ts); err != nil {
		t.Fatal(err)
	}
	got, err := s.PatchCompliance(ctx, f.hqScope, "")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, p := range got {
		if p.SiteID != f.hq.ID {
			t.Errorf("agent %s of site %s outside the scope", p.Hostname, p.SiteID)
		}
		states[p.Hostname] = p.State
	}
	want := map[string]string{"kiosk-01": PatchSecurity, "pc-02": PatchOther, "pc-03": PatchNeverChecked}
	if len(states) != 3 || states["kiosk-01"] != want["kiosk-01"] || states["pc-02"] != want["pc-02"] || states["pc-03"] != want["pc-03"] {
		t.Fatalf("HQ compliance = %v, want %v", states, want)
	}
	main, err := s.PatchCompliance(ctx, f.anyScope, f.main.ID)
	if err != nil || len(main) != 1 || main[0].State != PatchCurrent || main[0].Manager != "apt" {
		t.Fatalf("Main compliance = %+v %v", main, err)
	}
	if _, err := s.PutPendingUpdates(ctx, UpdateCheck{AgentID: hq2.ID, CheckedAt: t1}, make([]PendingUpdate, MaxPendingUpdates+1)); err == nil {
		t.Fatal("an oversized list was stored")
	}
}
