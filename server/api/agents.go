package api

import (
	"net/http"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/patchbay/patchbay/server/store"
)

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// agentJSON converts a stored agent; online agents are last seen now.
func (a *API) agentJSON(ag store.Agent, names siteNames) apiv1.Agent {
	out := apiv1.Agent{
		ID: ag.ID, Hostname: ag.Hostname, OS: ag.OS, Arch: ag.Arch, Version: ag.Version,
		Tags: ag.Tags, Online: a.Hub.Online(ag.ID), LastSeen: timePtr(ag.LastSeen),
		OSVersion: ag.OSVersion, Users: ag.Users, IPs: ag.IPs, ScopedTags: ag.ScopedTags,
		EnrolledAt: ag.EnrolledAt, FirstSeen: timePtr(ag.FirstSeen),
		Revoked: !ag.RevokedAt.IsZero(), RevokedAt: timePtr(ag.RevokedAt),
		SiteID: ag.SiteID, Site: names.name(ag.SiteID),
	}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	if out.Online {
		out.LastSeen = timePtr(a.now())
	}
	return out
}

func attrs(ag store.Agent) selector.Attrs {
	return selector.Attrs{ID: ag.ID, Hostname: ag.Hostname, OS: ag.OS, Arch: ag.Arch, Tags: ag.Tags}
}

func (a *API) handleAgentsList(w http.ResponseWriter, r *http.Request, c caller) {
	sel, err := selector.Parse(r.URL.Query().Get("target"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	q, err := parseAgentQuery(r.URL.Query()) // q, sort, limit, offset: agentquery.go
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	scope := c.scope()
	site := ""
	if ref := r.URL.Query().Get("site"); ref != "" {
		s, err := a.resolveSite(r.Context(), scope, ref)
		if err != nil {
			a.siteError(w, r, err)
			return
		}
		site = s.ID
	}
	agents, err := a.Store.ListAgents(r.Context())
	if err != nil {
		a.internal(w, r, "list agents", err)
		return
	}
	inv, err := a.inventoryFilter(r.Context(), sel)
	if err != nil {
		a.internal(w, r, "list agents", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "list agents", err)
		return
	}
	out := []apiv1.Agent{}
	for _, ag := range agents {
		if scope.Has(ag.SiteID) && (site == "" || ag.SiteID == site) && sel.Match(attrs(ag)) && inInventory(inv, ag.ID) && q.match(ag) {
			out = append(out, a.agentJSON(ag, names))
		}
	}
	writeJSON(w, http.StatusOK, q.page(w, out))
}

func (a *API) handleAgentShow(w http.ResponseWriter, r *http.Request, c caller) {
	if ag, ok := a.findAgent(w, r, c); ok {
		names, err := a.siteNames(r.Context())
		if err != nil {
			a.internal(w, r, "show agent", err)
			return
		}
		writeJSON(w, http.StatusOK, a.agentJSON(ag, names))
	}
}

// handleAgentRevoke stores the revocation, audits it, then tells every relay
// node, which closes the agent's link at once and refuses its handshakes.
func (a *API) handleAgentRevoke(w http.ResponseWriter, r *http.Request, c caller) {
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	ctx := r.Context()
	if err := a.Store.RevokeAgent(ctx, ag.ID, a.now()); err != nil {
		a.internal(w, r, "revoke agent", err)
		return
	}
	if err := a.audit(ctx, c.actor(), "agent.revoke", ag.ID, map[string]string{"hostname": ag.Hostname, "site": ag.SiteID}); err != nil {
		a.internal(w, r, "revoke agent", err)
		return
	}
	if err := a.Hub.Revoke(ctx, ag.ID); err != nil {
		a.Log.Warn().Err(err).Str("agent_id", ag.ID).Msg("agent revoked and stored; the other relays learn it when the bus is back")
		WriteError(w, http.StatusServiceUnavailable, "agent %s (%s) is revoked and this relay refuses it, but the other relays "+
			"could not be told now (%v): they close its link when they reach NATS again", ag.ID, ag.Hostname, err)
		return
	}
	a.Log.Info().Str("agent_id", ag.ID).Str("by", c.tok.Name).Msg("agent revoked")
	ag, err := a.Store.GetAgent(ctx, ag.ID)
	if err != nil {
		a.internal(w, r, "revoke agent", err)
		return
	}
	names, err := a.siteNames(ctx)
	if err != nil {
		a.internal(w, r, "revoke agent", err)
		return
	}
	writeJSON(w, http.StatusOK, a.agentJSON(ag, names))
}
