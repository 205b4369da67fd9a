package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// Incidents and known fixes (issue 17, part 5): incidents are read by
// whoever reaches their site and changed by technicians of that site;
// known fixes are the whole team's knowledge base.

// Limits on what an incident holds.
const (
	maxIncidentTitle = 200
	maxTicket        = 100
	maxIncidentNote  = 32 << 10
	maxResolution    = 8 << 10
	maxIncidentAgent = 100
)

func (a *API) registerIncidents(mux *http.ServeMux) {
	mux.Handle("GET /v1/incidents", a.auth(apiv1.RoleViewer, a.handleIncidentList))
	mux.Handle("POST /v1/incidents", a.auth(apiv1.RoleTechnician, a.handleIncidentCreate))
	mux.Handle("GET /v1/incidents/{id}", a.auth(apiv1.RoleViewer, a.handleIncidentShow))
	mux.Handle("POST /v1/incidents/{id}/notes", a.auth(apiv1.RoleTechnician, a.handleIncidentNote))
	mux.Handle("POST /v1/incidents/{id}/links", a.auth(apiv1.RoleTechnician, a.handleIncidentLink))
	mux.Handle("POST /v1/incidents/{id}/resolve", a.auth(apiv1.RoleTechnician, a.handleIncidentResolve))
	a.registerKnownFixes(mux)
}

// incidentOut converts x for the API; hosts caches agent hostnames across
// the incidents of one answer.
func (a *API) incidentOut(ctx context.Context, x store.Incident, names siteNames, hosts map[string]string) apiv1.Incident {
	out := apiv1.Incident{ID: x.ID, Title: x.Title, Ticket: x.Ticket, Site: names.name(x.SiteID), Agents: x.Agents, Severity: x.Severity,
		State: x.State, Resolution: x.Resolution, KnownFix: x.KnownFix, CreatedAt: x.CreatedAt, CreatedBy: x.CreatedBy,
		ResolvedAt: x.ResolvedAt, ResolvedBy: x.ResolvedBy}
	for _, id := range x.Agents {
		host, ok := hosts[id]
		if !ok {
			host = id
			if ag, err := a.Store.FindAgents(ctx, store.Scope{All: true}, id, 1); err == nil && len(ag) == 1 {
				host = ag[0].Hostname
			}
			hosts[id] = host
		}
		out.Hostnames = append(out.Hostnames, host)
	}
	for _, n := range x.Notes {
		out.Notes = append(out.Notes, apiv1.IncidentNote{Author: n.Author, Body: n.Body, CreatedAt: n.CreatedAt})
	}
	for _, l := range x.Links {
		out.Links = append(out.Links, apiv1.IncidentLink{Kind: l.Kind, ID: l.RefID, CreatedAt: l.CreatedAt, CreatedBy: l.CreatedBy})
	}
	return out
}

func (a *API) handleIncidentList(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	f := store.IncidentFilter{State: q.Get("state")}
	switch f.State {
	case "", store.IncidentOpen, store.IncidentResolved:
	default:
		WriteError(w, http.StatusBadRequest, "state %q: use open or resolved", f.State)
		return
	}
	if ref := q.Get("site"); ref != "" {
		site, ok := a.siteRef(w, r, c.scope(), ref, "")
		if !ok {
			return
		}
		f.SiteID = site.ID
	}
	list, err := a.Store.ListIncidents(r.Context(), c.scope(), f, 1000)
	if err != nil {
		a.internal(w, r, "list incidents", err)
		return
	}
	names, err := a.siteNames(r.Context())
	if err != nil {
		a.internal(w, r, "site names", err)
		return
	}
	out := apiv1.IncidentList{Incidents: make([]apiv1.Incident, 0, len(list))}
	hosts := map[string]string{}
	for _, x := range list {
		out.Incidents = append(out.Incidents, a.incidentOut(r.Context(), x, names, hosts))
	}
	writeJSON(w, http.StatusOK, out)
}

// checkText refuses text over max bytes, or with control characters other
// than newlines and tabs (when multiline) or any (when not).
func checkText(what, s string, max int, multiline bool) error {
	if len(s) > max {
		return fmt.Errorf("%s: %d bytes, at most %d", what, len(s), max)
	}
	for _, r := range s {
		if r < 0x20 && !(multiline && (r == '\n' || r == '\t' || r == '\r')) || r == 0x7f {
			return fmt.Errorf("%s: control character %U: plain text only", what, r)
		}
	}
	return nil
}

func (a *API) handleIncidentCreate(w http.ResponseWriter, r *http.Request, c caller) {
	ctx := r.Context()
	var req apiv1.IncidentCreate
	if !decode(w, r, &req) {
		return
	}
	bad := func(format string, args ...any) { WriteError(w, http.StatusBadRequest, "incident: "+format, args...) }
	if err := checkText("title", req.Title, maxIncidentTitle, false); err != nil {
		bad("%v", err)
		return
	}
	x := store.Incident{Title: strings.TrimSpace(req.Title), Ticket: strings.TrimSpace(req.Ticket), Severity: req.Severity}
	var links []store.IncidentLink
	var agentRefs []string
	switch {
	case req.FromAlert != "" && req.FromSession != "":
		bad("give --from-alert or --from-session, not both: link the other with patchbay incidents link")
		return
	case req.FromAlert != "":
		found, err := a.Store.FindAlerts(ctx, c.scope(), req.FromAlert, 2)
		if err != nil {
			a.internal(w, r, "look up alert", err)
			return
		}
		if len(found) != 1 {
			bad("alert %q names %d alerts you reach: patchbay alerts list shows them", req.FromAlert, len(found))
			return
		}
		al := found[0]
		links = append(links, store.IncidentLink{Kind: store.LinkAlert, RefID: al.ID})
		x.SiteID = al.SiteID
		if x.Title == "" {
			x.Title = al.Summary
		}
		if x.Severity == "" {
			x.Severity = al.Severity
		}
		if al.AgentID != "" {
			agentRefs = append(agentRefs, al.AgentID)
		}
	case req.FromSession != "":
		found, err := a.Store.FindSessions(ctx, c.scope(), req.FromSession, 2)
		if err != nil {
			a.internal(w, r, "look up session", err)
			return
		}
		if len(found) != 1 {
			bad("session %q names %d sessions you reach: patchbay sessions list shows them", req.FromSession, len(found))
			return
		}
		s := found[0]
		links = append(links, store.IncidentLink{Kind: store.LinkSession, RefID: s.ID})
		x.SiteID = s.SiteID
		if x.Title == "" {
			x.Title = strings.TrimSpace(s.Reason)
		}
		agentRefs = append(agentRefs, s.AgentID)
	}
	if req.Site != "" {
		site, err := a.resolveSite(ctx, c.scope(), req.Site)
		if errors.Is(err, errNoSite) || errors.Is(err, errAmbiguousSite) {
			bad("%v", err)
			return
		} else if err != nil {
			a.internal(w, r, "resolve site", err)
			return
		}
		x.SiteID = site.ID
	}
	for _, ref := range req.Agents {
		if !slices.Contains(agentRefs, ref) {
			agentRefs = append(agentRefs, ref)
		}
	}
	if len(agentRefs) > maxIncidentAgent {
		bad("%d agents, at most %d", len(agentRefs), maxIncidentAgent)
		return
	}
	for _, ref := range agentRefs {
		found, err := a.Store.FindAgents(ctx, c.scope(), ref, 2)
		if err != nil {
			a.internal(w, r, "look up agent", err)
			return
		}
		if len(found) != 1 {
			bad("agent %q names %d agents you reach: use its ID (patchbay agents list)", ref, len(found))
			return
		}
		ag := found[0]
		if x.SiteID == "" {
			x.SiteID = ag.SiteID
		}
		if ag.SiteID != x.SiteID {
			bad("agent %s (%s) is not in the incident's site: open one incident per site", ag.ID, ag.Hostname)
			return
		}
		if !slices.Contains(x.Agents, ag.ID) {
			x.Agents = append(x.Agents, ag.ID)
		}
	}
	if x.Severity == "" {
		x.Severity = store.SeverityWarning
	}
	switch {
	case x.Title == "":
		bad("a title is required (--title; a session without a reason gives none)")
		return
	case x.SiteID == "":
		bad("a site is required (--site ORG/SITE, or an --agent of that site)")
		return
	case !c.scope().Has(x.SiteID):
		WriteError(w, http.StatusNotFound, "incident: no site %s among yours: patchbay sites list shows them", x.SiteID)
		return
	case store.SeverityRank(x.Severity) == 0:
		bad("severity %q: use info, warning or critical", x.Severity)
		return
	}
	if len(x.Title) > maxIncidentTitle {
		x.Title = x.Title[:maxIncidentTitle] // an alert's summary or a session's reason may be longer
		x.Title = strings.ToValidUTF8(x.Title, "")
	}
	for _, err := range []error{checkText("title", x.Title, maxIncidentTitle, false), checkText("ticket", x.Ticket, maxTicket, false),
		checkText("note", req.Note, maxIncidentNote, true)} {
		if err != nil {
			bad("%v", err)
			return
		}
	}
	got, err := a.Store.CreateIncident(ctx, x, links, req.Note, c.actor(), a.now())
	if err != nil {
		a.internal(w, r, "create incident", err)
		return
	}
	a.writeIncident(w, r, c, got, http.StatusCreated)
}

// findIncident resolves {id}: an incident ID or a unique prefix of one the
// caller reaches. On failure it has answered.
func (a *API) findIncident(w http.ResponseWriter, r *http.Request, c caller) (store.Incident, bool) {
	return findOne(a, w, r, c, "incident", "patchbay incidents list", a.Store.FindIncidents,
		func(x store.Incident) string { return x.ID + " (" + x.Title + ")" })
}

// writeIncident answers with incident x in full: notes, links and the
// known fixes whose symptom it shows.
func (a *API) writeIncident(w http.ResponseWriter, r *http.Request, c caller, x store.Incident, status int) {
	ctx := r.Context()
	x, err := a.Store.GetIncident(ctx, c.scope(), x.ID)
	if err != nil {
		a.internal(w, r, "read incident", err)
		return
	}
	names, err := a.siteNames(ctx)
	if err != nil {
		a.internal(w, r, "site names", err)
		return
	}
	fixes, err := a.Store.ListKnownFixes(ctx)
	if err != nil {
		a.internal(w, r, "list known fixes", err)
		return
	}
	out := a.incidentOut(ctx, x, names, map[string]string{})
	texts := []string{x.Title}
	for _, n := range x.Notes {
		texts = append(texts, n.Body)
	}
	checks := []string{""}
	for _, l := range x.Links {
		if l.Kind != store.LinkAlert {
			continue
		}
		if al, err := a.Store.FindAlerts(ctx, c.scope(), l.RefID, 1); err == nil && len(al) == 1 {
			checks = append(checks, al[0].Check, al[0].Kind)
			texts = append(texts, al[0].Summary)
		}
	}
	target := "'id=AGENT'"
	if len(x.Agents) == 1 {
		target = "id=" + x.Agents[0]
	}
	out.KnownFixes = knownFixHints(fixes, checks, texts, target)
	writeJSON(w, status, out)
}

// knownFixHints returns the known fixes whose symptom checks (any of
// them) and texts show, with the command that runs each on target.
func knownFixHints(fixes []store.KnownFix, checks, texts []string, target string) []apiv1.KnownFixHint {
	var out []apiv1.KnownFixHint
	seen := map[string]bool{}
	for _, check := range checks {
		for _, k := range store.MatchKnownFixes(fixes, check, texts...) {
			if seen[k.ID] {
				continue
			}
			seen[k.ID] = true
			out = append(out, apiv1.KnownFixHint{Name: k.Name, Title: k.Title, Command: runCommand(k, target)})
		}
	}
	return out
}

// runCommand is the patchbay command that runs fix k on target.
func runCommand(k store.KnownFix, target string) string {
	parts := []string{"patchbay", "run", shellQuote(k.Plugin), "--target", target}
	keys := make([]string, 0, len(k.Params))
	for key := range k.Params {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		parts = append(parts, "--param", shellQuote(key+"="+k.Params[key]))
	}
	return strings.Join(parts, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_=.,:/@%+-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (a *API) handleIncidentShow(w http.ResponseWriter, r *http.Request, c caller) {
	x, ok := a.findIncident(w, r, c)
	if !ok {
		return
	}
	a.writeIncident(w, r, c, x, http.StatusOK)
}

func (a *API) handleIncidentNote(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.IncidentNoteAdd
	if !decode(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Body) == "" {
		WriteError(w, http.StatusBadRequest, "incident note: empty: give the text (or --file)")
		return
	}
	if err := checkText("incident note", req.Body, maxIncidentNote, true); err != nil {
		WriteError(w, http.StatusBadRequest, "%v: put long logs in a file and link or attach it elsewhere", err)
		return
	}
	x, ok := a.findIncident(w, r, c)
	if !ok {
		return
	}
	err := a.Store.AddIncidentNote(r.Context(), c.scope(), x.ID, req.Body, c.actor(), a.now())
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "no incident %s: patchbay incidents list shows them", x.ID)
		return
	} else if err != nil {
		a.internal(w, r, "add incident note", err)
		return
	}
	a.writeIncident(w, r, c, x, http.StatusOK)
}

func (a *API) handleIncidentLink(w http.ResponseWriter, r *http.Request, c caller) {
	ctx := r.Context()
	var req apiv1.IncidentLinkAdd
	if !decode(w, r, &req) {
		return
	}
	n := 0
	for _, v := range []string{req.Job, req.Session, req.Alert} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		WriteError(w, http.StatusBadRequest, "incident link: give one of --job, --session or --alert")
		return
	}
	x, ok := a.findIncident(w, r, c)
	if !ok {
		return
	}
	var link store.IncidentLink
	switch {
	case req.Job != "":
		found, err := a.Store.FindJobs(ctx, c.scope(), req.Job, 2)
		if err != nil {
			a.internal(w, r, "look up job", err)
			return
		}
		if len(found) != 1 {
			WriteError(w, http.StatusBadRequest, "incident link: job %q names %d jobs you reach: patchbay jobs list shows them", req.Job, len(found))
			return
		}
		link = store.IncidentLink{Kind: store.LinkJob, RefID: found[0].ID}
	case req.Session != "":
		found, err := a.Store.FindSessions(ctx, c.scope(), req.Session, 2)
		if err != nil {
			a.internal(w, r, "look up session", err)
			return
		}
		if len(found) != 1 {
			WriteError(w, http.StatusBadRequest, "incident link: session %q names %d sessions you reach: patchbay sessions list shows them", req.Session, len(found))
			return
		}
		link = store.IncidentLink{Kind: store.LinkSession, RefID: found[0].ID}
	default:
		found, err := a.Store.FindAlerts(ctx, c.scope(), req.Alert, 2)
		if err != nil {
			a.internal(w, r, "look up alert", err)
			return
		}
		if len(found) != 1 {
			WriteError(w, http.StatusBadRequest, "incident link: alert %q names %d alerts you reach: patchbay alerts list shows them", req.Alert, len(found))
			return
		}
		link = store.IncidentLink{Kind: store.LinkAlert, RefID: found[0].ID}
	}
	_, err := a.Store.LinkIncident(ctx, c.scope(), x.ID, link, c.actor(), a.now())
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "no incident %s: patchbay incidents list shows them", x.ID)
		return
	} else if err != nil {
		a.internal(w, r, "link incident", err)
		return
	}
	a.writeIncident(w, r, c, x, http.StatusOK)
}

func (a *API) handleIncidentResolve(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.IncidentResolve
	if !decode(w, r, &req) {
		return
	}
	req.Resolution = strings.TrimSpace(req.Resolution)
	if req.Resolution == "" {
		WriteError(w, http.StatusBadRequest, "incident resolve: say what fixed it (--resolution TEXT)")
		return
	}
	if err := checkText("resolution", req.Resolution, maxResolution, true); err != nil {
		WriteError(w, http.StatusBadRequest, "incident resolve: %v", err)
		return
	}
	x, ok := a.findIncident(w, r, c)
	if !ok {
		return
	}
	if req.KnownFix != "" {
		found, err := a.Store.FindKnownFix(r.Context(), req.KnownFix, 2)
		if err != nil {
			a.internal(w, r, "look up known fix", err)
			return
		}
		if len(found) != 1 {
			WriteError(w, http.StatusBadRequest, "incident resolve: no known fix %q: patchbay known-fixes list shows them (create it first)", req.KnownFix)
			return
		}
		req.KnownFix = found[0].Name
	}
	err := a.Store.ResolveIncident(r.Context(), c.scope(), x.ID, req.Resolution, req.KnownFix, c.actor(), a.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, http.StatusNotFound, "no incident %s: patchbay incidents list shows them", x.ID)
		return
	case errors.Is(err, store.ErrIncidentResolved):
		WriteError(w, http.StatusConflict, "incident %s is resolved already", x.ID)
		return
	case err != nil:
		a.internal(w, r, "resolve incident", err)
		return
	}
	a.writeIncident(w, r, c, x, http.StatusOK)
}
