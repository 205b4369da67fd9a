package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// Reports (issue 17, part 6): the figures of a period, in one site or
// every site the caller reaches. Viewers may read them.

func (a *API) registerReports(mux *http.ServeMux) {
	mux.Handle("GET /v1/reports/summary", a.auth(apiv1.RoleViewer, a.handleReportSummary))
}

// reportPeriod reads from and to (dates, 2026-11-01, or RFC 3339 times).
// Neither: the current month; only one: a month from or to it.
func reportPeriod(fromS, toS string, now time.Time) (time.Time, time.Time, error) {
	parse := func(name, s string) (time.Time, error) {
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return t, nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q: give a date (2026-11-01) or an RFC 3339 time", name, s)
		}
		return t.UTC(), nil
	}
	var from, to time.Time
	var err error
	if fromS != "" {
		if from, err = parse("from", fromS); err != nil {
			return from, to, err
		}
	}
	if toS != "" {
		if to, err = parse("to", toS); err != nil {
			return from, to, err
		}
	}
	switch {
	case from.IsZero() && to.IsZero():
		from = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		to = from.AddDate(0, 1, 0)
	case to.IsZero():
		to = from.AddDate(0, 1, 0)
	case from.IsZero():
		from = to.AddDate(0, -1, 0)
	}
	if !to.After(from) {
		return from, to, fmt.Errorf("period from %s to %s is empty: give a from before to", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

func (a *API) handleReportSummary(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	from, to, err := reportPeriod(q.Get("from"), q.Get("to"), a.now())
	if err != nil {
		WriteError(w, http.StatusBadRequest, "report: %v", err)
		return
	}
	f := store.ReportFilter{From: from, To: to}
	out := apiv1.ReportSummary{From: from, To: to}
	if ref := q.Get("site"); ref != "" {
		site, ok := a.siteRef(w, r, c.scope(), ref, "")
		if !ok {
			return
		}
		f.SiteID, out.Site = site.ID, site.FullName()
	}
	out, err = a.reportSummary(r.Context(), c.scope(), f, out)
	if err != nil {
		a.internal(w, r, "report", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// reportSummary fills in out (its period and site already set) with the
// figures of f over scope: the summary GET /v1/reports/summary answers and
// a report schedule mails.
func (a *API) reportSummary(ctx context.Context, scope store.Scope, f store.ReportFilter, out apiv1.ReportSummary) (apiv1.ReportSummary, error) {
	rep, err := a.Store.Report(ctx, scope, f)
	if err != nil {
		return out, err
	}
	out.Incidents = apiv1.ReportIncidents{Opened: rep.IncidentsOpened, Resolved: rep.IncidentsResolved,
		MedianResolveSeconds: rep.ResolveMedian.Seconds(), MeanResolveSeconds: rep.ResolveMean.Seconds()}
	runs := func(s store.RunStats) apiv1.ReportRuns {
		return apiv1.ReportRuns{Ended: s.Ended, Succeeded: s.Succeeded, Failed: s.Failed, SuccessRate: s.Rate()}
	}
	out.Fixes, out.SelfHeals = runs(rep.Fixes), runs(rep.SelfHeals)
	counts := func(l []store.Count) []apiv1.ReportCount {
		out := make([]apiv1.ReportCount, 0, len(l))
		for _, c := range l {
			out = append(out, apiv1.ReportCount{Key: c.Key, Count: c.Count})
		}
		return out
	}
	out.AlertsByKind, out.AgentsByOS, out.AgentsByVersion = counts(rep.AlertsByKind), counts(rep.AgentsByOS), counts(rep.AgentsByVersion)
	out.TopProblems = make([]apiv1.ReportProblem, 0, len(rep.TopProblems))
	for _, p := range rep.TopProblems {
		out.TopProblems = append(out.TopProblems, apiv1.ReportProblem{Kind: p.Kind, Check: p.Check, Alerts: p.Alerts, Raised: p.Raised})
	}
	names, err := a.siteNames(ctx)
	if err != nil {
		return out, err
	}
	sites, agents, err := a.patchCompliance(ctx, scope, f.SiteID, names.name)
	if err != nil {
		return out, err
	}
	pc := apiv1.ReportCompliance{Collected: true, Agents: len(agents), Sites: sites, PerAgent: agents}
	for _, s := range sites {
		pc.Compliant += s.Patched
	}
	if pc.Agents > 0 {
		pc.Share = float64(pc.Compliant) / float64(pc.Agents)
	}
	out.PatchCompliance = pc
	return out, nil
}
