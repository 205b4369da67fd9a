package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/reportfmt"
	"github.com/patchbay/patchbay/server/alerts"
	"github.com/patchbay/patchbay/server/schedule"
	"github.com/patchbay/patchbay/server/store"
)

// Report schedules (issue 17, part 6): a schedule of kind 'report' mails
// the report of the period before each fire time. Where the mail goes out:
// through the SMTP server, sender and credentials of an SMTP alert route
// (one place for the organisation's mail settings, already admin-only and
// write-only for the password), to the schedule's recipients or else the
// route's. Firing is schedule.Runner's (one relay per firing); the mail is
// queued in the alert outbox and delivered, retried and given up like an
// alert notification (server/alerts). Admins create and delete them
// (the report leaves the organisation by mail); viewers list them.

// reportSpec is a report schedule's Request.
type reportSpec struct {
	Period  string   `json:"period"`
	To      []string `json:"to,omitempty"`
	RouteID string   `json:"route_id"`
	Format  string   `json:"format"`
}

// Report attachment formats and their MIME types.
var reportFormats = map[string]string{"csv": "text/csv", "json": "application/json", "html": "text/html"}

func (a *API) registerReportSchedules(mux *http.ServeMux) {
	mux.Handle("POST /v1/reports/schedules", a.auth(apiv1.RoleAdmin, a.handleReportScheduleCreate))
	mux.Handle("GET /v1/reports/schedules", a.auth(apiv1.RoleViewer, a.handleReportScheduleList))
	mux.Handle("DELETE /v1/reports/schedules/{id}", a.auth(apiv1.RoleAdmin, a.handleReportScheduleDelete))
}

// periodStart returns the start of the period p ending at end: Nd (days),
// Nw (weeks), Nmo (calendar months), or a Go duration of at least an hour
// (24h); at most a year.
func periodStart(end time.Time, p string) (time.Time, error) {
	bad := fmt.Errorf("period %q: give days (7d), weeks (1w), months (1mo) or hours (24h), from 1h to a year", p)
	num := func(suffix string) (int, bool) {
		s, ok := strings.CutSuffix(p, suffix)
		n, err := strconv.Atoi(s)
		return n, ok && err == nil && n > 0
	}
	var from time.Time
	if n, ok := num("mo"); ok {
		from = end.AddDate(0, -n, 0)
	} else if n, ok := num("w"); ok {
		from = end.AddDate(0, 0, -7*n)
	} else if n, ok := num("d"); ok {
		from = end.AddDate(0, 0, -n)
	} else if d, err := time.ParseDuration(p); err == nil && d >= time.Hour {
		from = end.Add(-d)
	} else {
		return time.Time{}, bad
	}
	if end.Sub(from) > 366*24*time.Hour {
		return time.Time{}, bad
	}
	return from, nil
}

// smtpRoute finds the SMTP alert route ref names (an ID or a unique prefix),
// or without ref the one SMTP route that takes the alerts of siteID ("":
// one for every site).
func (a *API) smtpRoute(ctx context.Context, ref, siteID string) (store.AlertRoute, error) {
	routes, err := a.Store.ListAlertRoutes(ctx)
	if err != nil {
		return store.AlertRoute{}, err
	}
	var found []store.AlertRoute
	for _, rt := range routes {
		switch {
		case rt.Kind != store.RouteSMTP:
		case ref != "" && (rt.ID == ref || len(ref) >= 4 && strings.HasPrefix(rt.ID, ref)):
			found = append(found, rt)
		case ref == "" && (rt.SiteID == store.AllSites || siteID != "" && rt.SiteID == siteID):
			found = append(found, rt)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case ref != "" && len(found) == 0:
		return store.AlertRoute{}, fmt.Errorf("route %q: no such SMTP alert route: patchbay alert-routes list shows them", ref)
	case ref != "":
		return store.AlertRoute{}, fmt.Errorf("route %q is ambiguous: give more of its ID", ref)
	case len(found) == 0:
		return store.AlertRoute{}, errors.New("no SMTP alert route takes this site's alerts: create one (patchbay alert-routes create --kind smtp) or pass --route")
	}
	return store.AlertRoute{}, fmt.Errorf("%d SMTP alert routes could carry this report: pass --route ID", len(found))
}

func (a *API) handleReportScheduleCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.ReportScheduleCreate
	if !decode(w, r, &req) {
		return
	}
	bad := func(format string, args ...any) {
		WriteError(w, http.StatusBadRequest, "report schedule: "+format, args...)
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 {
		bad("a report schedule needs a name of 1 to 100 characters: pass --name")
		return
	}
	spec, err := schedule.Parse(req.Cron, req.TZ)
	if err != nil {
		bad("%v", err)
		return
	}
	rs := reportSpec{Period: strings.TrimSpace(req.Period), Format: strings.ToLower(strings.TrimSpace(req.Format))}
	if rs.Period == "" {
		rs.Period = "7d"
	}
	if _, err := periodStart(a.now(), rs.Period); err != nil {
		bad("%v", err)
		return
	}
	if rs.Format == "" {
		rs.Format = "csv"
	}
	if reportFormats[rs.Format] == "" {
		bad("format %q: use csv, json or html", req.Format)
		return
	}
	for _, to := range req.To {
		addr, err := mail.ParseAddress(strings.TrimSpace(to))
		if err != nil {
			bad("to %q: %v: give an address such as ops@example.com", to, err)
			return
		}
		rs.To = append(rs.To, addr.Address)
	}
	var siteID string
	if req.Site != "" {
		site, ok := a.siteRef(w, r, c.scope(), req.Site, "report schedule: ")
		if !ok {
			return
		}
		siteID = site.ID
	}
	rt, err := a.smtpRoute(r.Context(), req.Route, siteID)
	if err != nil {
		bad("%v", err)
		return
	}
	if len(rs.To) == 0 && len(rt.To) == 0 {
		bad("alert route %s has no recipients: pass --to", shortID(rt.ID))
		return
	}
	rs.RouteID = rt.ID
	b, err := json.Marshal(rs)
	if err != nil {
		a.internal(w, r, "create report schedule", err)
		return
	}
	now := a.now()
	sc := store.Schedule{ID: store.NewID(), Name: name, Kind: store.ScheduleReport, Cron: spec.Cron, TZ: spec.TZ, SiteID: siteID,
		Request: string(b), NextFire: spec.Next(now), CreatedBy: c.actor(), CreatedByToken: c.tok.ID, CreatedByUser: c.tok.UserID,
		OwnerRole: c.tok.Role, OwnerSites: c.tok.Sites, CreatedAt: now}
	err = a.Store.CreateSchedule(r.Context(), sc)
	if errors.Is(err, store.ErrNameTaken) {
		WriteError(w, http.StatusConflict, "a schedule named %q exists: choose another name or delete it", sc.Name)
		return
	}
	if err != nil {
		a.internal(w, r, "create report schedule", err)
		return
	}
	detail := map[string]string{"name": sc.Name, "kind": sc.Kind, "cron": sc.Cron, "tz": sc.TZ, "report": sc.Request}
	if siteID != "" {
		detail["site"] = siteID
	}
	if err := a.audit(r.Context(), c.actor(), "schedule.create", "schedule "+sc.ID, detail); err != nil {
		a.internal(w, r, "create report schedule", err)
		return
	}
	out, err := a.reportScheduleJSON(r.Context(), sc)
	if err != nil {
		a.internal(w, r, "create report schedule", err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// reportScheduleJSON is sc as the API shows it, with its last send.
func (a *API) reportScheduleJSON(ctx context.Context, sc store.Schedule) (apiv1.ReportSchedule, error) {
	var rs reportSpec
	_ = json.Unmarshal([]byte(sc.Request), &rs)
	out := apiv1.ReportSchedule{ID: sc.ID, Name: sc.Name, Cron: sc.Cron, TZ: sc.TZ, Period: rs.Period, To: rs.To, Route: rs.RouteID,
		Format: rs.Format, Paused: sc.Paused, LastFire: timePtr(sc.LastFire), LastError: sc.LastError, CreatedBy: sc.CreatedBy, CreatedAt: sc.CreatedAt}
	if !sc.Paused {
		out.NextFire = timePtr(sc.NextFire)
	}
	if sc.SiteID != "" {
		names, err := a.siteNames(ctx)
		if err != nil {
			return out, err
		}
		out.Site = names.name(sc.SiteID)
	}
	if sc.LastJob == "" {
		return out, nil
	}
	ds, err := a.Store.ListDeliveries(ctx, sc.ID)
	if err != nil {
		return out, err
	}
	for _, d := range ds {
		if d.ID != sc.LastJob {
			continue
		}
		s := &apiv1.MailSend{ID: d.ID, State: apiv1.MailQueued, Attempts: d.Attempts, Error: d.LastError}
		switch {
		case d.Done && d.LastError == "":
			s.State = apiv1.MailSent
		case d.Done:
			s.State = apiv1.MailFailed
		}
		out.LastSend = s
	}
	return out, nil
}

func (a *API) handleReportScheduleList(w http.ResponseWriter, r *http.Request, c caller) {
	all, err := a.Store.ListSchedules(r.Context(), store.ScheduleReport)
	if err != nil {
		a.internal(w, r, "list report schedules", err)
		return
	}
	out := []apiv1.ReportSchedule{}
	for _, sc := range all {
		if !c.sees(sc) {
			continue
		}
		rs, err := a.reportScheduleJSON(r.Context(), sc)
		if err != nil {
			a.internal(w, r, "list report schedules", err)
			return
		}
		out = append(out, rs)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) handleReportScheduleDelete(w http.ResponseWriter, r *http.Request, c caller) {
	sc, status, err := a.findSchedule(r.Context(), c, r.PathValue("id"))
	if err == nil && sc.Kind != store.ScheduleReport {
		status, err = http.StatusNotFound, fmt.Errorf("schedule %s is a %s schedule, not a report: patchbay schedules delete removes it", sc.Name, sc.Kind)
	}
	if err != nil {
		WriteError(w, status, "%v", err)
		return
	}
	if err := a.Store.DeleteSchedule(r.Context(), sc.ID); err != nil {
		a.internal(w, r, "delete report schedule", err)
		return
	}
	detail := map[string]string{"name": sc.Name, "kind": sc.Kind}
	if sc.SiteID != "" {
		detail["site"] = sc.SiteID
	}
	if err := a.audit(r.Context(), c.actor(), "schedule.delete", "schedule "+sc.ID, detail); err != nil {
		a.internal(w, r, "delete report schedule", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fireReport builds the report of schedule sc's firing at sc.NextFire (the
// period before it, as its owner sees it now) and queues the mail, claiming
// the firing in the same transaction (once across the tier). It returns the
// mail's delivery ID ("" when another relay claimed the firing).
func (a *API) fireReport(ctx context.Context, sc store.Schedule, next time.Time) (string, error) {
	var rs reportSpec
	if err := json.Unmarshal([]byte(sc.Request), &rs); err != nil {
		return a.fireFailed(ctx, sc, next, fmt.Errorf("report spec unreadable: %w", err))
	}
	c, err := a.ownerCaller(ctx, sc)
	if err != nil {
		return a.fireFailed(ctx, sc, next, err)
	}
	if sc.SiteID != "" && !c.scope().Has(sc.SiteID) {
		return a.fireFailed(ctx, sc, next, fmt.Errorf("the owner of report schedule %s no longer reaches its site: recreate it", sc.Name))
	}
	rt, err := a.smtpRouteByID(ctx, rs.RouteID)
	if err != nil {
		return a.fireFailed(ctx, sc, next, err)
	}
	end := sc.NextFire
	from, err := periodStart(end, rs.Period)
	if err != nil {
		return a.fireFailed(ctx, sc, next, err)
	}
	out := apiv1.ReportSummary{From: from.UTC(), To: end.UTC()}
	if sc.SiteID != "" {
		names, err := a.siteNames(ctx)
		if err != nil {
			return "", err
		}
		out.Site = names.name(sc.SiteID)
	}
	rep, err := a.reportSummary(ctx, c.scope(), store.ReportFilter{SiteID: sc.SiteID, From: from, To: end}, out)
	if err != nil {
		return "", err // the database: the next runner tick tries again
	}
	var att bytes.Buffer
	switch rs.Format {
	case "json":
		err = json.NewEncoder(&att).Encode(rep)
	case "html":
		err = reportfmt.WriteHTML(&att, rep)
	default:
		rs.Format = "csv"
		err = reportfmt.WriteCSV(&att, rep, "")
	}
	if err != nil {
		return a.fireFailed(ctx, sc, next, fmt.Errorf("render report: %w", err))
	}
	m := alerts.ReportMail{Subject: reportfmt.Subject(sc.Name, rep), Text: reportfmt.Text(rep), To: rs.To, Time: a.now(),
		File: fmt.Sprintf("patchbay-report-%s-%s.%s", reportFileName(sc.Name), end.UTC().Format("2006-01-02"), rs.Format),
		Type: reportFormats[rs.Format], Data: att.Bytes()}
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	detail := map[string]string{"name": sc.Name, "route": rt.ID, "from": from.UTC().Format(time.RFC3339),
		"to": end.UTC().Format(time.RFC3339), "format": rs.Format, "recipients": strings.Join(m.To, ","), "owner": sc.CreatedBy}
	if sc.SiteID != "" {
		detail["site"] = sc.SiteID
	}
	rec := audit.Record{Actor: "schedule " + sc.Name + " (" + shortID(sc.ID) + ")", Action: "report.mail", Target: "schedule " + sc.ID, Detail: detail}
	id, err := a.Store.QueueReportMail(ctx, sc.ID, sc.NextFire, next, rt.ID, string(body), rec)
	if errors.Is(err, store.ErrFiringClaimed) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if a.Alerts != nil {
		a.Alerts.Wake()
	}
	return id, nil
}

// smtpRouteByID returns SMTP alert route id, or why a report cannot use it.
func (a *API) smtpRouteByID(ctx context.Context, id string) (store.AlertRoute, error) {
	rt, err := a.Store.GetAlertRoute(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return rt, fmt.Errorf("alert route %s was deleted: recreate the report schedule with another --route", shortID(id))
	}
	if err == nil && rt.Kind != store.RouteSMTP {
		return rt, fmt.Errorf("alert route %s is not an SMTP route", shortID(id))
	}
	return rt, err
}

// reportFileName keeps the letters, digits, dots and dashes of name.
func reportFileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, name)
}
