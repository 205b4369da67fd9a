package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// Sites: every agent belongs to one site of an organisation; a caller
// reaches the sites of its scope (admins every one). Everything about an
// agent (the agent itself, its sessions and recordings, the jobs over it,
// the audit records about it) is filtered by the caller's scope here, on
// the relay. What a caller cannot reach answers 404 like what does not
// exist, so that another customer's machines are not even confirmed to
// exist.

func (a *API) registerSites(mux *http.ServeMux) {
	mux.Handle("GET /v1/organisations", a.auth(apiv1.RoleAdmin, a.handleOrgList))
	mux.Handle("POST /v1/organisations", a.auth(apiv1.RoleAdmin, a.handleOrgCreate))
	mux.Handle("GET /v1/sites", a.auth(apiv1.RoleViewer, a.handleSiteList))
	mux.Handle("POST /v1/sites", a.auth(apiv1.RoleAdmin, a.handleSiteCreate))
	mux.Handle("DELETE /v1/sites/{id}", a.auth(apiv1.RoleAdmin, a.handleSiteDelete))
	mux.Handle("POST /v1/agents/{id}/site", a.auth(apiv1.RoleAdmin, a.handleAgentMove))
}

// scope is what the caller reaches: admins every site, others their grants
// (a user's token its user's).
func (c caller) scope() store.Scope {
	sc := store.ScopeOf(c.tok.Sites)
	if c.tok.Role == apiv1.RoleAdmin {
		sc = store.Scope{All: true}
	}
	if c.site != "" {
		if !sc.Has(c.site) {
			return store.Scope{Sites: []string{}}
		}
		return store.Scope{Sites: []string{c.site}}
	}
	return sc
}

// siteNames maps site IDs to "ORG/SITE".
type siteNames map[string]string

func (n siteNames) name(id string) string {
	if id == store.AllSites {
		return apiv1.AllSitesName
	}
	if s, ok := n[id]; ok {
		return s
	}
	return id // a site deleted since: its ID
}

func (n siteNames) names(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, n.name(id))
	}
	return out
}

func (a *API) siteNames(ctx context.Context) (siteNames, error) {
	m, err := a.Store.SiteNames(ctx)
	return siteNames(m), err
}

// Errors of resolveSite: no site the caller reaches fits the reference, or
// several do.
var (
	errNoSite        = errors.New("no such site")
	errAmbiguousSite = errors.New("ambiguous site")
)

// siteRef resolves a site named in a request (ORG/SITE, a unique name or
// an ID) within scope. On failure it has answered: 400 with prefix and why
// for a site that is not there or is ambiguous, 500 otherwise.
func (a *API) siteRef(w http.ResponseWriter, r *http.Request, scope store.Scope, ref, prefix string) (store.Site, bool) {
	site, err := a.resolveSite(r.Context(), scope, ref)
	switch {
	case errors.Is(err, errNoSite) || errors.Is(err, errAmbiguousSite):
		WriteError(w, http.StatusBadRequest, "%s%v", prefix, err)
		return store.Site{}, false
	case err != nil:
		a.internal(w, r, "resolve site", err)
		return store.Site{}, false
	}
	return site, true
}

// resolveSite finds the site ref names among those scope reaches: an ID, a
// unique ID prefix, "ORG/SITE" or a site name that only one site has
// (names ignore case). The error says what fits.
func (a *API) resolveSite(ctx context.Context, scope store.Scope, ref string) (store.Site, error) {
	sites, err := a.Store.ListSites(ctx, scope)
	if err != nil {
		return store.Site{}, err
	}
	ref = strings.TrimSpace(ref)
	var byPrefix, byName []store.Site
	for _, s := range sites {
		switch {
		case s.ID == ref, strings.EqualFold(s.FullName(), ref):
			return s, nil
		case len(ref) >= 4 && strings.HasPrefix(s.ID, ref):
			byPrefix = append(byPrefix, s)
		case strings.EqualFold(s.Name, ref):
			byName = append(byName, s)
		}
	}
	found := byPrefix
	if len(found) == 0 {
		found = byName
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return store.Site{}, fmt.Errorf("site %q: %w: patchbay sites list shows the sites you reach", ref, errNoSite)
	}
	list := make([]string, len(found))
	for i, s := range found {
		list[i] = s.FullName()
	}
	return store.Site{}, fmt.Errorf("site %q: %w: it names %s: write ORG/SITE", ref, errAmbiguousSite, strings.Join(list, ", "))
}

// resolveGrants turns site references (or "all") into grants for a new
// user or token; none means the default site.
func (a *API) resolveGrants(ctx context.Context, refs []string) ([]string, error) {
	if len(refs) == 0 {
		return []string{store.DefaultSiteID}, nil
	}
	if len(refs) > 1000 {
		return nil, fmt.Errorf("%d sites: %w: at most 1000 (or \"all\")", len(refs), errAmbiguousSite)
	}
	var out []string
	for _, ref := range refs {
		if strings.EqualFold(ref, apiv1.AllSitesName) || ref == store.AllSites {
			return []string{store.AllSites}, nil
		}
		s, err := a.resolveSite(ctx, store.Scope{All: true}, ref)
		if err != nil {
			return nil, err
		}
		out = append(out, s.ID)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// siteError answers an error of resolveSite: 404 or 400 for what the
// caller got wrong, 500 otherwise.
func (a *API) siteError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNoSite):
		WriteError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, errAmbiguousSite):
		WriteError(w, http.StatusBadRequest, "%v", err)
	default:
		a.internal(w, r, "look up site", err)
	}
}

func (a *API) handleOrgList(w http.ResponseWriter, r *http.Request, _ caller) {
	orgs, err := a.Store.ListOrganisations(r.Context())
	if err != nil {
		a.internal(w, r, "list organisations", err)
		return
	}
	sites, err := a.Store.ListSites(r.Context(), store.Scope{All: true})
	if err != nil {
		a.internal(w, r, "list organisations", err)
		return
	}
	out := make([]apiv1.Organisation, 0, len(orgs))
	for _, o := range orgs {
		n := 0
		for _, s := range sites {
			if s.OrgID == o.ID {
				n++
			}
		}
		out = append(out, apiv1.Organisation{ID: o.ID, Name: o.Name, Sites: n, CreatedAt: o.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// validSiteName: 1-64 of letters, digits, space and _.-, not starting with
// a space, and no "/" (it separates ORG/SITE).
func validSiteName(s string) bool {
	if s == "" || len(s) > 64 || s != strings.TrimSpace(s) || strings.EqualFold(s, apiv1.AllSitesName) {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" _.-", c)) {
			return false
		}
	}
	return true
}

func (a *API) handleOrgCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.OrganisationRequest
	if !decode(w, r, &req) {
		return
	}
	if !validSiteName(req.Name) {
		WriteError(w, http.StatusBadRequest, "organisation name %q: want 1-64 of letters, digits, space and _.- (no \"/\", not \"all\")", req.Name)
		return
	}
	o := store.Organisation{ID: store.NewID(), Name: req.Name, CreatedAt: a.now()}
	err := a.Store.CreateOrganisation(r.Context(), o)
	if errors.Is(err, store.ErrNameTaken) {
		WriteError(w, http.StatusConflict, "an organisation named %q exists: patchbay orgs list shows them", req.Name)
		return
	}
	if err != nil {
		a.internal(w, r, "create organisation", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "organisation.create", o.ID, map[string]string{"name": o.Name}); err != nil {
		a.internal(w, r, "create organisation", err)
		return
	}
	writeJSON(w, http.StatusCreated, apiv1.Organisation{ID: o.ID, Name: o.Name, CreatedAt: o.CreatedAt})
}

func (a *API) handleSiteList(w http.ResponseWriter, r *http.Request, c caller) {
	sites, err := a.Store.ListSites(r.Context(), c.scope())
	if err != nil {
		a.internal(w, r, "list sites", err)
		return
	}
	agents, err := a.Store.ListAgents(r.Context())
	if err != nil {
		a.internal(w, r, "list sites", err)
		return
	}
	count := map[string]int{}
	for _, ag := range agents {
		if ag.RevokedAt.IsZero() {
			count[ag.SiteID]++
		}
	}
	out := make([]apiv1.Site, 0, len(sites))
	for _, s := range sites {
		out = append(out, siteJSON(s, count[s.ID]))
	}
	writeJSON(w, http.StatusOK, out)
}

func siteJSON(s store.Site, agents int) apiv1.Site {
	return apiv1.Site{ID: s.ID, Name: s.Name, Organisation: s.OrgName, FullName: s.FullName(), Agents: agents, CreatedAt: s.CreatedAt}
}

func (a *API) handleSiteCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.SiteRequest
	if !decode(w, r, &req) {
		return
	}
	if !validSiteName(req.Name) {
		WriteError(w, http.StatusBadRequest, "site name %q: want 1-64 of letters, digits, space and _.- (no \"/\", not \"all\")", req.Name)
		return
	}
	orgs, err := a.Store.ListOrganisations(r.Context())
	if err != nil {
		a.internal(w, r, "create site", err)
		return
	}
	var org *store.Organisation
	for i, o := range orgs {
		if o.ID == req.Organisation || strings.EqualFold(o.Name, req.Organisation) {
			org = &orgs[i]
			break
		}
	}
	if org == nil {
		WriteError(w, http.StatusNotFound, "no organisation %q: create it first (patchbay orgs create NAME)", req.Organisation)
		return
	}
	site := store.Site{ID: store.NewID(), OrgID: org.ID, OrgName: org.Name, Name: req.Name, CreatedAt: a.now()}
	err = a.Store.CreateSite(r.Context(), site)
	if errors.Is(err, store.ErrNameTaken) {
		WriteError(w, http.StatusConflict, "organisation %s has a site named %q: patchbay sites list shows them", org.Name, req.Name)
		return
	}
	if err != nil {
		a.internal(w, r, "create site", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "site.create", site.ID,
		map[string]string{"name": site.FullName(), "site": site.ID}); err != nil {
		a.internal(w, r, "create site", err)
		return
	}
	writeJSON(w, http.StatusCreated, siteJSON(site, 0))
}

func (a *API) handleSiteDelete(w http.ResponseWriter, r *http.Request, c caller) {
	site, err := a.resolveSite(r.Context(), store.Scope{All: true}, r.PathValue("id"))
	if err != nil {
		a.siteError(w, r, err)
		return
	}
	err = a.Store.DeleteSite(r.Context(), site.ID)
	if errors.Is(err, store.ErrSiteInUse) {
		WriteError(w, http.StatusConflict, "site %s cannot be deleted: %v: move its agents (patchbay agents move) and revoke its enrollment tokens first", site.FullName(), err)
		return
	}
	if err != nil {
		a.internal(w, r, "delete site", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "site.delete", site.ID,
		map[string]string{"name": site.FullName(), "site": site.ID}); err != nil {
		a.internal(w, r, "delete site", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleAgentMove moves an agent to another site (admins only). Its
// sessions, recordings and jobs stay with the site they were in.
func (a *API) handleAgentMove(w http.ResponseWriter, r *http.Request, c caller) {
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	var req apiv1.AgentSiteRequest
	if !decode(w, r, &req) {
		return
	}
	site, err := a.resolveSite(r.Context(), store.Scope{All: true}, req.Site)
	if err != nil {
		a.siteError(w, r, err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "move agent", err)
		return
	}
	from := ag.SiteID
	if from != site.ID {
		if err := a.Store.SetAgentSite(r.Context(), ag.ID, site.ID); err != nil {
			a.internal(w, r, "move agent", err)
			return
		}
		// Recorded in both sites' audit: the one it left and the one it joined.
		for _, s := range []string{from, site.ID} {
			if err := a.audit(r.Context(), c.actor(), "agent.move", ag.ID, map[string]string{
				"hostname": ag.Hostname, "from": names.name(from), "to": site.FullName(), "site": s,
			}); err != nil {
				a.internal(w, r, "move agent", err)
				return
			}
		}
	}
	ag.SiteID = site.ID
	writeJSON(w, http.StatusOK, a.agentJSON(ag, names))
}

// publishSites reads the sites a catalog upload is published to: ?site=REF,
// repeatable, or "all"; none means every site.
func (a *API) publishSites(r *http.Request) ([]string, error) {
	refs := r.URL.Query()["site"]
	if len(refs) == 0 {
		return []string{store.AllSites}, nil
	}
	return a.resolveGrants(r.Context(), refs)
}
