package api

import (
	"context"
	"errors"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// pendingUpdates is an agent's pending updates for its inventory; nil when
// no patchinstall run reported them.
func (a *API) pendingUpdates(ctx context.Context, agentID string) (*apiv1.Updates, error) {
	c, ups, err := a.Store.PendingUpdates(ctx, agentID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &apiv1.Updates{CheckedAt: c.CheckedAt, RunID: c.RunID, Manager: c.Manager, SecurityOnly: c.SecurityOnly,
		Pending: c.Pending, Security: securityCount(c.Security), List: make([]apiv1.PendingUpdate, len(ups))}
	for i, u := range ups {
		out.List[i] = apiv1.PendingUpdate{Name: u.Name, Arch: u.Arch, From: u.From, Version: u.Version, Security: u.Security, Category: u.Category}
	}
	return out, nil
}

// securityCount is nil for -1 (the manager does not classify updates).
func securityCount(n int) *int {
	if n < 0 {
		return nil
	}
	return &n
}

// patchCompliance is the patch compliance of the agents scope reaches (in
// siteID when set): per site, and per agent. siteName names a site ID.
func (a *API) patchCompliance(ctx context.Context, scope store.Scope, siteID string, siteName func(string) string) ([]apiv1.PatchSite, []apiv1.PatchAgent, error) {
	rows, err := a.Store.PatchCompliance(ctx, scope, siteID)
	if err != nil {
		return nil, nil, err
	}
	sites := []apiv1.PatchSite{}
	agents := make([]apiv1.PatchAgent, 0, len(rows))
	for _, p := range rows {
		name := siteName(p.SiteID)
		if len(sites) == 0 || sites[len(sites)-1].Site != name {
			sites = append(sites, apiv1.PatchSite{Site: name})
		}
		s := &sites[len(sites)-1]
		s.Agents++
		switch p.State {
		case store.PatchCurrent:
			s.Patched++
		case store.PatchSecurity:
			s.SecurityPending++
		case store.PatchOther:
			s.UpdatesPending++
		default:
			s.NeverChecked++
		}
		pa := apiv1.PatchAgent{AgentID: p.AgentID, Hostname: p.Hostname, Site: name, State: p.State,
			CheckedAt: timePtr(p.CheckedAt), Manager: p.Manager, Pending: p.Pending}
		if p.State != store.PatchNeverChecked {
			pa.Security = securityCount(p.Security)
		}
		agents = append(agents, pa)
	}
	return sites, agents, nil
}
