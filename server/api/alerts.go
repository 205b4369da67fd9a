package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// Alerts (server/alerts): listed by whoever reaches their site, acknowledged
// and resolved by technicians; routes are the admins'.

// Alerts is what the API needs of server/alerts.
type Alerts interface {
	SetState(ctx context.Context, scope store.Scope, id, state, actor, note string) (store.Alert, error)
	Wake()
}

func (a *API) registerAlerts(mux *http.ServeMux) {
	mux.Handle("GET /v1/alerts", a.auth(apiv1.RoleViewer, a.handleAlertList))
	mux.Handle("GET /v1/alerts/{id}", a.auth(apiv1.RoleViewer, a.handleAlertShow))
	mux.Handle("POST /v1/alerts/{id}/ack", a.auth(apiv1.RoleTechnician, a.handleAlertChange(store.AlertAcknowledged)))
	mux.Handle("POST /v1/alerts/{id}/resolve", a.auth(apiv1.RoleTechnician, a.handleAlertChange(store.AlertResolved)))
	mux.Handle("GET /v1/alert-routes", a.auth(apiv1.RoleAdmin, a.handleAlertRouteList))
	mux.Handle("POST /v1/alert-routes", a.auth(apiv1.RoleAdmin, a.handleAlertRouteCreate))
	mux.Handle("DELETE /v1/alert-routes/{id}", a.auth(apiv1.RoleAdmin, a.handleAlertRouteDelete))
}

func alertOut(x store.Alert, names siteNames) apiv1.Alert {
	out := apiv1.Alert{ID: x.ID, Kind: x.Kind, AgentID: x.AgentID, Hostname: x.Hostname, Check: x.Check, Severity: x.Severity,
		State: x.State, Summary: x.Summary, Details: x.Details, Count: x.Count, OpenedAt: x.OpenedAt, LastSeen: x.LastSeen,
		AckedAt: x.AckedAt, AckedBy: x.AckedBy, ResolvedAt: x.ResolvedAt, ResolvedBy: x.ResolvedBy, Note: x.Note}
	if x.SiteID != "" {
		out.Site = names.name(x.SiteID)
	}
	return out
}

func (a *API) handleAlertList(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	f := store.AlertFilter{State: q.Get("state"), Kind: q.Get("kind")}
	switch f.State {
	case "", store.AlertOpen, store.AlertAcknowledged, store.AlertResolved:
	default:
		WriteError(w, http.StatusBadRequest, "state %q: use open, acknowledged or resolved", f.State)
		return
	}
	if ref := q.Get("site"); ref != "" {
		site, ok := a.siteRef(w, r, c.scope(), ref, "")
		if !ok {
			return
		}
		f.SiteID = site.ID
	}
	if ref := q.Get("agent"); ref != "" {
		found, err := a.Store.FindAgents(r.Context(), c.scope(), ref, 2)
		if err != nil {
			a.internal(w, r, "look up agent", err)
			return
		}
		if len(found) != 1 {
			WriteError(w, http.StatusBadRequest, "agent %q: names %d agents: use its ID (patchbay agents list)", ref, len(found))
			return
		}
		f.AgentID = found[0].ID
	}
	list, err := a.Store.ListAlerts(r.Context(), c.scope(), f, 1000)
	if err != nil {
		a.internal(w, r, "list alerts", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "site names", err)
		return
	}
	fixes, err := a.Store.ListKnownFixes(r.Context())
	if err != nil {
		a.internal(w, r, "list known fixes", err)
		return
	}
	out := apiv1.AlertList{Alerts: make([]apiv1.Alert, 0, len(list))}
	for _, x := range list {
		out.Alerts = append(out.Alerts, alertWithFixes(x, names, fixes))
	}
	writeJSON(w, http.StatusOK, out)
}

// findAlert resolves {id}: an alert ID or a unique prefix of one the
// caller reaches. On failure it has answered.
func (a *API) findAlert(w http.ResponseWriter, r *http.Request, c caller) (store.Alert, bool) {
	return findOne(a, w, r, c, "alert", "patchbay alerts list", a.Store.FindAlerts, func(x store.Alert) string { return x.ID })
}

func (a *API) handleAlertShow(w http.ResponseWriter, r *http.Request, c caller) {
	x, ok := a.findAlert(w, r, c)
	if !ok {
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "site names", err)
		return
	}
	fixes, err := a.Store.ListKnownFixes(r.Context())
	if err != nil {
		a.internal(w, r, "list known fixes", err)
		return
	}
	writeJSON(w, http.StatusOK, alertWithFixes(x, names, fixes))
}

// alertWithFixes is alertOut with the known fixes whose symptom the alert
// shows (its check or kind, its summary), offered to run on its agent.
func alertWithFixes(x store.Alert, names siteNames, fixes []store.KnownFix) apiv1.Alert {
	out := alertOut(x, names)
	if x.State != store.AlertResolved {
		target := "'id=AGENT'"
		if x.AgentID != "" {
			target = "id=" + x.AgentID
		}
		out.KnownFixes = knownFixHints(fixes, []string{x.Check, x.Kind}, []string{x.Summary}, target)
	}
	return out
}

func (a *API) handleAlertChange(state string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c caller) {
		if a.Alerts == nil {
			WriteError(w, http.StatusServiceUnavailable, "alerts are not available on this relay")
			return
		}
		var req apiv1.AlertChange
		if !decode(w, r, &req) {
			return
		}
		if len(req.Note) > 2000 {
			WriteError(w, http.StatusBadRequest, "note: %d bytes, at most 2000", len(req.Note))
			return
		}
		x, ok := a.findAlert(w, r, c)
		if !ok {
			return
		}
		got, err := a.Alerts.SetState(r.Context(), c.scope(), x.ID, state, c.actor(), req.Note)
		switch {
		case errors.Is(err, store.ErrNotFound):
			WriteError(w, http.StatusNotFound, "no alert %s: patchbay alerts list shows them", x.ID)
			return
		case errors.Is(err, store.ErrAlertState):
			WriteError(w, http.StatusConflict, "alert %s is resolved already", x.ID)
			return
		case err != nil:
			a.internal(w, r, "change alert", err)
			return
		}
		names, err := a.siteNames(r.Context())
		if err != nil {
			a.internal(w, r, "site names", err)
			return
		}
		writeJSON(w, http.StatusOK, alertOut(got, names))
	}
}

func routeOut(rt store.AlertRoute, names siteNames) apiv1.AlertRoute {
	return apiv1.AlertRoute{ID: rt.ID, Site: names.name(rt.SiteID), MinSeverity: rt.MinSeverity, Kind: rt.Kind, Target: rt.Target,
		From: rt.From, To: rt.To, User: rt.User, CreatedAt: rt.CreatedAt, CreatedBy: rt.CreatedBy}
}

func (a *API) handleAlertRouteList(w http.ResponseWriter, r *http.Request, c caller) {
	list, err := a.Store.ListAlertRoutes(r.Context())
	if err != nil {
		a.internal(w, r, "list alert routes", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "site names", err)
		return
	}
	out := apiv1.AlertRouteList{Routes: make([]apiv1.AlertRoute, 0, len(list))}
	for _, rt := range list {
		out.Routes = append(out.Routes, routeOut(rt, names))
	}
	writeJSON(w, http.StatusOK, out)
}

// checkRoute validates a route request; the error is the 400's text.
func checkRoute(req apiv1.AlertRoute) error {
	if store.SeverityRank(req.MinSeverity) == 0 {
		return fmt.Errorf("min severity %q: use info, warning or critical", req.MinSeverity)
	}
	u, err := url.Parse(req.Target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("target %q: not a URL", req.Target)
	}
	switch req.Kind {
	case store.RouteWebhook:
		if u.Scheme != "https" && u.Scheme != "http" {
			return fmt.Errorf("webhook %q: use an https:// URL", req.Target)
		}
		if req.Secret == "" {
			return errors.New("webhook: a secret is required (--secret-file): receivers check the signature with it")
		}
	case store.RouteSMTP:
		if u.Scheme != "smtp" {
			return fmt.Errorf("smtp %q: use smtp://HOST:PORT (STARTTLS is required except to a loopback server)", req.Target)
		}
		if req.From == "" || len(req.To) == 0 {
			return errors.New("smtp: --from and at least one --to are required")
		}
		for _, addr := range append([]string{req.From}, req.To...) {
			if !strings.Contains(addr, "@") || strings.ContainsAny(addr, "\r\n<> ") {
				return fmt.Errorf("smtp: %q is not an e-mail address", addr)
			}
		}
		if req.User != "" && req.Secret == "" {
			return errors.New("smtp: --smtp-user needs --smtp-password-file")
		}
	default:
		return fmt.Errorf("kind %q: use webhook or smtp", req.Kind)
	}
	return nil
}

func (a *API) handleAlertRouteCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.AlertRoute
	if !decode(w, r, &req) {
		return
	}
	if err := checkRoute(req); err != nil {
		WriteError(w, http.StatusBadRequest, "alert route: %v", err)
		return
	}
	siteID := store.AllSites
	if !strings.EqualFold(req.Site, apiv1.AllSitesName) && req.Site != store.AllSites {
		site, ok := a.siteRef(w, r, store.Scope{All: true}, req.Site, "alert route: ")
		if !ok {
			return
		}
		siteID = site.ID
	}
	rt, err := a.Store.CreateAlertRoute(r.Context(), store.AlertRoute{SiteID: siteID, MinSeverity: req.MinSeverity, Kind: req.Kind,
		Target: req.Target, Secret: req.Secret, From: req.From, To: req.To, User: req.User, CAPEM: req.CAPEM, CreatedBy: c.actor()}, a.now())
	if err != nil {
		a.internal(w, r, "create alert route", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "alert-route.create", rt.ID, map[string]string{"kind": rt.Kind, "target": rt.Target,
		"min_severity": rt.MinSeverity, "route_site": rt.SiteID}); err != nil {
		a.internal(w, r, "audit", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "site names", err)
		return
	}
	writeJSON(w, http.StatusCreated, routeOut(rt, names))
}

func (a *API) handleAlertRouteDelete(w http.ResponseWriter, r *http.Request, c caller) {
	ref := r.PathValue("id")
	list, err := a.Store.ListAlertRoutes(r.Context())
	if err != nil {
		a.internal(w, r, "list alert routes", err)
		return
	}
	var found []store.AlertRoute
	for _, rt := range list {
		if rt.ID == ref || (len(ref) >= 4 && strings.HasPrefix(rt.ID, ref)) {
			found = append(found, rt)
		}
	}
	if len(found) != 1 {
		WriteError(w, http.StatusNotFound, "alert route %q names %d routes: patchbay alert-routes list shows them", ref, len(found))
		return
	}
	if err := a.Store.DeleteAlertRoute(r.Context(), found[0].ID); err != nil {
		a.internal(w, r, "delete alert route", err)
		return
	}
	if err := a.audit(r.Context(), c.actor(), "alert-route.delete", found[0].ID, map[string]string{"target": found[0].Target}); err != nil {
		a.internal(w, r, "audit", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
