package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// Alerts: dedup per key, scope, state changes audited and queued for the
// routes that match, claims owned by one claimer.
func TestAlertsLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newSiteFixture(t)
	s := f.s
	now := ts.Add(time.Hour)
	hqRoute, err := s.CreateAlertRoute(ctx, AlertRoute{SiteID: f.hq.ID, MinSeverity: SeverityWarning, Kind: RouteWebhook, Target: "http://x", Secret: "k"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAlertRoute(ctx, AlertRoute{SiteID: AllSites, MinSeverity: SeverityCritical, Kind: RouteSMTP, Target: "smtp://x:25", To: []string{"a@b"}}, now); err != nil {
		t.Fatal(err)
	}
	head0, _, _ := s.AuditHead(ctx)
	a, opened, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.hqAgent.ID, Check: "disk", Severity: SeverityWarning, Summary: "disk full",
		Details: map[string]string{"free": "1%"}}, "system", now)
	if err != nil || !opened || a.State != AlertOpen || a.SiteID != f.hq.ID || a.Count != 1 || a.Hostname != "kiosk-01" {
		t.Fatalf("raise: %+v %v %v", a, opened, err)
	}
	b, opened, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.hqAgent.ID, Check: "disk", Severity: SeverityWarning, Summary: "disk still full"}, "system", now.Add(time.Minute))
	if err != nil || opened || b.ID != a.ID || b.Count != 2 || b.Summary != "disk still full" || !b.LastSeen.Equal(now.Add(time.Minute)) {
		t.Fatalf("raise again: %+v %v %v", b, opened, err)
	}
	// Another check is another alert; another agent too.
	if c, opened, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.mainAgent.ID, Check: "disk", Severity: SeverityInfo, Summary: "x"}, "system", now); err != nil || !opened || c.ID == a.ID {
		t.Fatalf("other agent: %+v %v", c, err)
	}
	// Scope: hq sees one, main one, all two; an alert about no agent only all.
	if _, _, err := s.RaiseAlert(ctx, Alert{Kind: "job_halted", Check: "job-1", Severity: SeverityCritical, Summary: "halted"}, "system", now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sc   Scope
		want int
	}{{f.hqScope, 1}, {f.mainScope, 1}, {f.anyScope, 3}, {Scope{}, 0}} {
		if l, err := s.ListAlerts(ctx, tc.sc, AlertFilter{}, 0); err != nil || len(l) != tc.want {
			t.Errorf("scope %+v: %d alerts (%v), want %d", tc.sc, len(l), err, tc.want)
		}
	}
	if _, err := s.SetAlertState(ctx, f.mainScope, a.ID, AlertAcknowledged, "bob", "", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ack out of scope: %v", err)
	}
	if found, err := s.FindAlerts(ctx, f.hqScope, a.ID[:13], 5); err != nil || len(found) != 1 || found[0].ID != a.ID {
		t.Fatalf("find by prefix: %v %v", found, err)
	}
	ack, err := s.SetAlertState(ctx, f.hqScope, a.ID, AlertAcknowledged, "alice", "looking", now)
	if err != nil || ack.State != AlertAcknowledged || ack.AckedBy != "alice" {
		t.Fatalf("ack: %+v %v", ack, err)
	}
	// Raising an acknowledged alert bumps it, it stays acknowledged.
	if b, opened, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.hqAgent.ID, Check: "disk", Severity: SeverityWarning}, "system", now); err != nil || opened || b.State != AlertAcknowledged || b.Count != 3 {
		t.Fatalf("raise acknowledged: %+v %v", b, err)
	}
	if ok, err := s.ClearAlert(ctx, a.Key(), "system", "check passed", now); err != nil || !ok {
		t.Fatalf("clear: %v %v", ok, err)
	}
	if ok, err := s.ClearAlert(ctx, a.Key(), "system", "", now); err != nil || ok {
		t.Fatalf("clear twice: %v %v", ok, err)
	}
	if _, err := s.SetAlertState(ctx, f.hqScope, a.ID, AlertAcknowledged, "alice", "", now); !errors.Is(err, ErrAlertState) {
		t.Fatalf("ack resolved: %v", err)
	}
	// Raised again after resolving: a new alert.
	if n, opened, err := s.RaiseAlert(ctx, Alert{Kind: "check", AgentID: f.hqAgent.ID, Check: "disk", Severity: SeverityWarning}, "system", now); err != nil || !opened || n.ID == a.ID {
		t.Fatalf("reopen: %+v %v", n, err)
	}
	// Audit: open x4 (a, main, job, reopen), ack, resolve.
	recs, err := s.ListAudit(ctx, head0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	want := []string{"alert.open", "alert.open", "alert.open", "alert.ack", "alert.resolve", "alert.open"}
	if len(actions) != len(want) {
		t.Fatalf("audit %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("audit %v, want %v", actions, want)
		}
	}
	if recs[0].Detail["site"] != f.hq.ID || recs[0].Actor != "system" || recs[3].Actor != "alice" {
		t.Fatalf("audit record: %+v / %+v", recs[0], recs[3])
	}
	// Outbox: the hq route got a's open, ack, resolve and the reopen; the
	// critical route only the halted job.
	ds, err := s.ListDeliveries(ctx, "")
	if err != nil || len(ds) != 5 {
		t.Fatalf("deliveries: %+v %v", ds, err)
	}
	// Claims: one owner per attempt.
	d, ok, err := s.ClaimDelivery(ctx, time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	var ev AlertEvent
	if err := json.Unmarshal([]byte(d.Body), &ev); err != nil || ev.Alert.ID == "" || d.Attempts != 1 {
		t.Fatalf("body %q: %v", d.Body, err)
	}
	seen := map[string]bool{d.ID: true}
	for range 4 {
		d2, ok, err := s.ClaimDelivery(ctx, time.Minute)
		if err != nil || !ok || seen[d2.ID] {
			t.Fatalf("claim 2: %+v %v %v", d2, ok, err)
		}
		seen[d2.ID] = true
	}
	if _, ok, _ := s.ClaimDelivery(ctx, time.Minute); ok {
		t.Fatal("claimed a row twice")
	}
	stale := d
	stale.Token = "not-mine"
	if ok, err := s.FinishDelivery(ctx, stale, true, "", 0); err != nil || ok {
		t.Fatalf("finish without the claim: %v %v", ok, err)
	}
	if ok, err := s.FinishDelivery(ctx, d, false, "connection refused", 0); err != nil || !ok {
		t.Fatalf("finish retry: %v %v", ok, err)
	}
	d3, ok, err := s.ClaimDelivery(ctx, time.Minute)
	if err != nil || !ok || d3.ID != d.ID || d3.Attempts != 2 {
		t.Fatalf("reclaim: %+v %v %v", d3, ok, err)
	}
	if ok, err := s.FinishDelivery(ctx, d3, true, "", 0); err != nil || !ok {
		t.Fatalf("finish: %v %v", ok, err)
	}
	if err := s.DeleteAlertRoute(ctx, hqRoute.ID); err != nil {
		t.Fatal(err)
	}
	if rs, _ := s.ListAlertRoutes(ctx); len(rs) != 1 {
		t.Fatalf("routes after delete: %+v", rs)
	}
	// Offline agents: those last seen before a time.
	if err := s.TouchLastSeen(ctx, []string{f.hqAgent.ID}, now); err != nil {
		t.Fatal(err)
	}
	if off, err := s.AgentsSeenBefore(ctx, now.Add(time.Second)); err != nil || len(off) != 1 || off[0].ID != f.hqAgent.ID || off[0].SiteID != f.hq.ID {
		t.Fatalf("offline: %+v %v", off, err)
	}
	if off, _ := s.AgentsSeenBefore(ctx, now.Add(-time.Second)); len(off) != 0 {
		t.Fatalf("offline before: %+v", off)
	}
}

func TestNextDeliveryIn(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, any, err := s.NextDeliveryIn(ctx); err != nil || any {
		t.Fatalf("empty outbox: %v %v", any, err)
	}
	if _, err := s.CreateAlertRoute(ctx, AlertRoute{SiteID: AllSites, MinSeverity: SeverityInfo, Kind: RouteWebhook, Target: "http://x"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RaiseAlert(ctx, Alert{Kind: "check", Check: "c", Severity: SeverityInfo}, "system", time.Now()); err != nil {
		t.Fatal(err)
	}
	d, ok, err := s.ClaimDelivery(ctx, time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := s.FinishDelivery(ctx, d, false, "down", time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if in, any, err := s.NextDeliveryIn(ctx); err != nil || !any || in < 59*time.Minute || in > time.Hour {
		t.Fatalf("next in %v %v %v", in, any, err)
	}
}
