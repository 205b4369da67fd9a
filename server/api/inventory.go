package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/selector"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/store"
)

// Inventory routes (issue 17): what agents report about their hardware and
// software, who has which package, and the software history.
func (a *API) registerInventory(mux *http.ServeMux) {
	mux.Handle("GET /v1/agents/{id}/inventory", a.auth(apiv1.RoleViewer, a.handleInventoryShow))
	mux.Handle("GET /v1/agents/{id}/inventory/history", a.auth(apiv1.RoleViewer, a.handleInventoryHistory))
	mux.Handle("POST /v1/agents/{id}/inventory/refresh", relayedFrom(a.auth(apiv1.RoleTechnician, a.handleInventoryRefresh)))
	mux.Handle("GET /v1/software", a.auth(apiv1.RoleViewer, a.handleSoftwareHolders))
}

// inventoryFilter returns what sel's inventory terms select (nil when it
// has none, meaning every agent): the store answers them, not Attrs.
func (a *API) inventoryFilter(ctx context.Context, sel *selector.Selector) (map[string]bool, error) {
	if !sel.UsesInventory() {
		return nil, nil
	}
	var conds []store.InvCond
	for _, c := range sel.Inventory() {
		sc := store.InvCond{Kind: c.Kind, Names: c.Names, Negate: c.Negate, Op: c.Op, Value: c.Value, PPM: c.PPM}
		for _, v := range c.Versions {
			sc.Versions = append(sc.Versions, store.VersionCmp{Op: v.Op, Version: v.Version})
		}
		conds = append(conds, sc)
	}
	return a.Store.InventoryMatch(ctx, conds)
}

// inInventory reports whether id passes an inventoryFilter result.
func inInventory(set map[string]bool, id string) bool { return set == nil || set[id] }

func (a *API) handleInventoryShow(w http.ResponseWriter, r *http.Request, c caller) {
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	ctx := r.Context()
	out := apiv1.Inventory{AgentID: ag.ID, Hostname: ag.Hostname, OS: ag.OS, OSVersion: ag.OSVersion}
	inv, err := a.Store.GetInventory(ctx, ag.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Nothing reported yet (an agent older than inventory, or never connected).
	case err != nil:
		a.internal(w, r, "show inventory", err)
		return
	default:
		h := inv.Hardware
		out.Hardware = apiv1.Hardware{CPUModel: h.CPUModel, CPUCount: h.CPUCount, MemoryBytes: h.MemoryBytes,
			Vendor: h.Vendor, Model: h.Model, Serial: h.Serial, Firmware: h.Firmware}
		for _, d := range h.Disks {
			out.Hardware.Disks = append(out.Hardware.Disks, apiv1.Disk{Mount: d.Mount, Size: d.Size, Free: d.Free})
		}
		out.BootTime, out.UpdatedAt, out.SoftwareAt = timePtr(inv.BootTime), timePtr(inv.UpdatedAt), timePtr(inv.SoftwareAt)
		out.SoftwareCount, out.SoftwareHash = inv.SoftwareCount, inv.SoftwareHash
	}
	if out.Updates, err = a.pendingUpdates(ctx, ag.ID); err != nil {
		a.internal(w, r, "show inventory", err)
		return
	}
	if r.URL.Query().Get("software") == "1" {
		pkgs, err := a.Store.ListSoftware(ctx, ag.ID)
		if err != nil {
			a.internal(w, r, "show inventory", err)
			return
		}
		out.Software = make([]apiv1.Package, len(pkgs))
		for i, p := range pkgs {
			out.Software[i] = apiv1.Package{Name: p.Name, Version: p.Version, Source: p.Source}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleInventoryHistory(w http.ResponseWriter, r *http.Request, c caller) {
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			WriteError(w, http.StatusBadRequest, "limit %q: want 1 to 100000", v)
			return
		}
		limit = n
	}
	changes, err := a.Store.SoftwareHistory(r.Context(), ag.ID, limit)
	if err != nil {
		a.internal(w, r, "software history", err)
		return
	}
	out := make([]apiv1.SoftwareChange, len(changes))
	for i, ch := range changes {
		out[i] = apiv1.SoftwareChange{At: ch.At, Change: ch.Change, Name: ch.Name, OldVersion: ch.OldVersion, NewVersion: ch.NewVersion, Source: ch.Source}
	}
	writeJSON(w, http.StatusOK, out)
}

// handleInventoryRefresh asks the agent, through the relay it is connected
// to, to report its inventory now. The report arrives asynchronously. When
// another relay of the tier holds the agent, the request goes on to that
// relay (as a session's does), which authorises and audits it again and
// asks the agent; a forwarded request is never forwarded again.
func (a *API) handleInventoryRefresh(w http.ResponseWriter, r *http.Request, c caller) {
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	if a.Refresh == nil {
		WriteError(w, http.StatusServiceUnavailable, "inventory refresh is not available on this relay")
		return
	}
	if h, ok := a.Hub.(interface{ Here(id string) bool }); ok && !h.Here(ag.ID) && a.Hub.Online(ag.ID) &&
		a.Forward != nil && r.Header.Get(HeaderRelay) == "" {
		a.Forward.ForwardSession(w, r, ag.ID)
		return
	}
	if !a.Hub.Online(ag.ID) {
		WriteError(w, http.StatusConflict, "agent %s (%s) is not connected to any relay: it reports its inventory when it connects", ag.ID, ag.Hostname)
		return
	}
	detail := map[string]string{"hostname": ag.Hostname}
	if via := r.Header.Get(HeaderRelay); via != "" {
		detail["via_relay"] = via
	}
	if err := a.audit(r.Context(), c.actor(), "agent.inventory_refresh", ag.ID, detail); err != nil {
		a.internal(w, r, "refresh inventory", err)
		return
	}
	err := a.Refresh(r.Context(), ag.ID)
	if errors.Is(err, hub.ErrOffline) {
		WriteError(w, http.StatusConflict, "agent %s (%s) went offline or moved to another relay of the tier while asked: try again", ag.ID, ag.Hostname)
		return
	}
	if err != nil {
		a.internal(w, r, "refresh inventory", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"agent_id": ag.ID, "status": "requested"})
}

// handleSoftwareHolders answers GET /v1/software?name=N[&version_lt=V]: the
// agents in the caller's sites that have package N, and which version.
func (a *API) handleSoftwareHolders(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	name, lt := q.Get("name"), q.Get("version_lt")
	if name == "" || len(name) > 128 || len(lt) > 128 {
		WriteError(w, http.StatusBadRequest, "name is required (at most 128 characters): GET /v1/software?name=openssl[&version_lt=3.0.14]")
		return
	}
	holders, err := a.Store.SoftwareHolders(r.Context(), c.scope(), name, lt)
	if err != nil {
		a.internal(w, r, "software holders", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "software holders", err)
		return
	}
	out := make([]apiv1.SoftwareHolding, len(holders))
	for i, h := range holders {
		out[i] = apiv1.SoftwareHolding{AgentID: h.AgentID, Hostname: h.Hostname, Site: names.name(h.SiteID), Name: h.Name, Version: h.Version, Source: h.Source}
	}
	writeJSON(w, http.StatusOK, out)
}
