package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// The policy states and an agent's checks count only the caller's agents,
// and a policy of a site the caller does not reach is not listed.
func TestPolicyStatesAndAgentChecks(t *testing.T) {
	ctx := context.Background()
	a, h, tokens := testAPI(t)
	now := time.Now().UTC()
	org := store.Organisation{ID: store.NewID(), Name: "Acme", CreatedAt: now}
	lyon := store.Site{ID: store.NewID(), OrgID: org.ID, Name: "Lyon", CreatedAt: now}
	if err := a.Store.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateSite(ctx, lyon); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateEnrollToken(ctx, store.EnrollToken{ID: store.NewID(), Hash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour), CreatedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, host := range []string{"pc-1", "pc-2", "lyon-1"} {
		ag, _, err := a.Store.EnrollAgent(ctx, "h", store.Agent{ID: store.NewID(), Hostname: host}, now)
		if err != nil {
			t.Fatal(err)
		}
		ids[host] = ag.ID
	}
	if err := a.Store.SetAgentSite(ctx, ids["lyon-1"], lyon.ID); err != nil {
		t.Fatal(err)
	}
	disk := store.Policy{ID: store.NewID(), Name: "disk", Target: "os=linux", Check: "builtin:disk-space", Interval: time.Minute, CreatedAt: now}
	lyonOnly := store.Policy{ID: store.NewID(), Name: "lyon-spool", SiteID: lyon.ID, Check: "builtin:service-down", Interval: time.Minute, CreatedAt: now}
	for _, p := range []store.Policy{disk, lyonOnly} {
		if err := a.Store.CreatePolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for host, state := range map[string]string{"pc-1": "passed", "pc-2": "failed", "lyon-1": "failed"} {
		if _, err := a.Store.SaveCheckEvent(ctx, store.CheckEvent{ID: store.NewID(), AgentID: ids[host], PolicyID: disk.ID, State: state, Summary: "3% free", At: now}); err != nil {
			t.Fatal(err)
		}
	}
	tech, _, err := mintUserToken(ctx, a.Store, "test", "", []string{store.DefaultSiteID}, apiv1.RoleTechnician, "scoped-tech", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	var list apiv1.PolicyStateList
	rec := do(h, "GET", "/v1/policy-states", tech, "")
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Policies) != 1 {
		t.Fatalf("scoped policy states: %d %s", rec.Code, rec.Body)
	}
	if p := list.Policies[0]; p.Policy != "disk" || p.Passed != 1 || p.Failed != 1 || p.Error != 0 || len(p.Failing) != 1 || p.Failing[0].Hostname != "pc-2" || p.Failing[0].Summary != "3% free" {
		t.Fatalf("scoped disk states: %+v", p)
	}
	list = apiv1.PolicyStateList{}
	rec = do(h, "GET", "/v1/policy-states?failing=0", tokens[apiv1.RoleAdmin], "")
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Policies) != 2 {
		t.Fatalf("admin policy states: %d %s", rec.Code, rec.Body)
	}
	for _, p := range list.Policies {
		if p.Policy == "disk" && (p.Failed != 2 || p.Failing != nil) || p.Policy == "lyon-spool" && p.Passed+p.Failed+p.Error != 0 {
			t.Fatalf("admin states: %+v", p)
		}
	}
	if rec := do(h, "GET", "/v1/policy-states?failing=lots", tech, ""); rec.Code != 400 {
		t.Fatalf("bad failing: %d %s", rec.Code, rec.Body)
	}

	var checks apiv1.AgentCheckList
	rec = do(h, "GET", "/v1/agents/"+ids["pc-2"]+"/checks", tokens[apiv1.RoleViewer], "")
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &checks) != nil || len(checks.Checks) != 1 {
		t.Fatalf("agent checks: %d %s", rec.Code, rec.Body)
	}
	if c := checks.Checks[0]; c.Policy != "disk" || c.Check != "builtin:disk-space" || c.State != "failed" || c.Summary != "3% free" {
		t.Fatalf("agent check: %+v", c)
	}
	if rec := do(h, "GET", "/v1/agents/"+ids["lyon-1"]+"/checks", tech, ""); rec.Code != 404 {
		t.Fatalf("checks of an agent out of scope: %d %s", rec.Code, rec.Body)
	}

	// policies show: a global policy's states and events on other sites'
	// agents are not the scoped caller's to see.
	for tok, want := range map[string]int{tech: 2, tokens[apiv1.RoleAdmin]: 3} {
		var show apiv1.Policy
		rec = do(h, "GET", "/v1/policies/disk", tok, "")
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &show) != nil || len(show.States) != want || len(show.Events) != want {
			t.Fatalf("policies show, want %d agents: %d %s", want, rec.Code, rec.Body)
		}
		for _, st := range show.States {
			if want == 2 && st.AgentID == ids["lyon-1"] {
				t.Fatalf("a Lyon agent's state shown to a caller without Lyon: %+v", show.States)
			}
		}
	}
}
