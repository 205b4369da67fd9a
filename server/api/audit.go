package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/server/store"
)

// GET /v1/audit serves the audit log a page at a time, filtered by the
// relay (never by the client, which would have to download the whole log):
//
//	after=SEQ      records after SEQ (default 0)
//	before=SEQ     records before SEQ
//	limit=N        at most N records, 1 to 1000 (default 100)
//	order=asc|desc oldest first (default) or newest first
//	actor=TEXT     the actor contains TEXT, ignoring case
//	action=NAME    exactly that action; NAME* for every action starting with NAME
//	agent=AGENT    records about that agent: an ID, a unique ID prefix or a
//	               hostname, as for /v1/agents/{id}
//	since=TIME     recorded at or after TIME (RFC 3339)
//	until=TIME     recorded before TIME (RFC 3339)
//
// GET /v1/audit/export?format=csv|jsonl takes the same filters (not
// after/before/limit/order) and streams every matching record, oldest
// first, up to the head when it began, as a download: the console's Export
// links. The CLI's audit export pages through /v1/audit instead.
//
// A bad value is refused with 400 naming the parameter. site=REF keeps the
// records about one site. Whoever does not reach every site sees only the
// records about their sites (never the relay-wide ones, such as user
// management), applied in store.AuditQuery like the other filters.

// Limits on audit filter values.
const (
	maxAuditActor  = 256
	maxAuditAction = 128
)

// auditQuery parses the audit filters of q, limited to the caller's scope.
// On failure it has answered.
func (a *API) auditQuery(w http.ResponseWriter, r *http.Request, c caller) (store.AuditQuery, bool) {
	q, err := a.parseAuditQuery(r, c.scope(), r.URL.Query())
	var he *httpError
	switch {
	case errors.As(err, &he):
		WriteError(w, he.status, "%s", he.msg)
		return q, false
	case err != nil:
		a.internal(w, r, "look up the audit log's agent filter", err)
		return q, false
	}
	return q, true
}

// httpError is a refusal with its status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badParam(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func (a *API) parseAuditQuery(r *http.Request, scope store.Scope, v url.Values) (store.AuditQuery, error) {
	q := store.AuditQuery{Scope: scope}
	after, err := intParam(v.Get("after"), 0, 0, 1<<62)
	if err != nil {
		return q, badParam("after: %v", err)
	}
	before, err := intParam(v.Get("before"), 0, 1, 1<<62)
	if err != nil {
		return q, badParam("before: %v", err)
	}
	limit, err := intParam(v.Get("limit"), 100, 1, 1000)
	if err != nil {
		return q, badParam("limit: %v", err)
	}
	q.After, q.Before, q.Limit = after, before, int(limit)
	switch v.Get("order") {
	case "", "asc":
	case "desc":
		q.Newest = true
	default:
		return q, badParam("order: %q: want asc (oldest first) or desc (newest first)", v.Get("order"))
	}
	q.Actor = strings.TrimSpace(v.Get("actor"))
	if !utf8.ValidString(q.Actor) || len(q.Actor) > maxAuditActor {
		return q, badParam("actor: want valid UTF-8 text of at most %d bytes", maxAuditActor)
	}
	q.Action = strings.TrimSpace(v.Get("action"))
	if err := checkAction(q.Action); err != nil {
		return q, badParam("action: %q: %v", q.Action, err)
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, badParam("%s: %q: want an RFC 3339 time such as 2026-05-01T09:00:00Z or 2026-05-01T11:00:00+02:00", p.name, s)
		}
		*p.dst = t
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, badParam("until: %s is not after since %s: nothing can match", v.Get("until"), v.Get("since"))
	}
	if ref := strings.TrimSpace(v.Get("site")); ref != "" {
		site, err := a.resolveSite(r.Context(), scope, ref)
		switch {
		case errors.Is(err, errNoSite):
			return q, &httpError{status: http.StatusNotFound, msg: "site: " + err.Error()}
		case errors.Is(err, errAmbiguousSite):
			return q, badParam("site: %v", err)
		case err != nil:
			return q, err
		}
		q.Site = site.ID
	}
	if ref := strings.TrimSpace(v.Get("agent")); ref != "" {
		id, err := a.auditAgent(r, scope, ref)
		if err != nil {
			return q, err
		}
		q.AgentID = id
	}
	return q, nil
}

// checkAction accepts what actions are made of (lower-case letters, digits,
// ".", "-", "_"), with an optional "*" at the end.
func checkAction(s string) error {
	if len(s) > maxAuditAction {
		return fmt.Errorf("longer than %d bytes", maxAuditAction)
	}
	name, _ := strings.CutSuffix(s, "*")
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return errors.New("want an action such as session.approved, or a prefix ending in * such as session.*")
		}
	}
	return nil
}

// auditAgent resolves the agent filter as the agent routes do. An agent ID
// that no longer names an enrolled agent is still searched for: the log
// outlives the agents it mentions.
func (a *API) auditAgent(r *http.Request, scope store.Scope, ref string) (string, error) {
	found, err := a.Store.FindAgents(r.Context(), scope, ref, maxCandidates+1)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 1:
		return found[0].ID, nil
	case 0:
		if u, err := uuid.Parse(ref); err == nil && len(ref) == 36 {
			return u.String(), nil
		}
		return "", badParam("agent: no agent with ID, ID prefix or hostname %q: patchbay agents list shows them", ref)
	}
	list := make([]string, len(found))
	for i, x := range found {
		list[i] = x.ID + " (" + x.Hostname + ")"
	}
	return "", badParam("agent: %q names %s agents: %s: give an ID or more of one", ref, count(len(found)), candidates(list))
}

func (a *API) handleAuditList(w http.ResponseWriter, r *http.Request, c caller) {
	q, ok := a.auditQuery(w, r, c)
	if !ok {
		return
	}
	recs, err := a.Store.QueryAudit(r.Context(), q)
	if err != nil {
		a.internal(w, r, "list audit records", err)
		return
	}
	if recs == nil {
		writeJSON(w, http.StatusOK, []struct{}{})
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

// auditExportPage is how many records the export reads at a time; each page
// gets exportWriteTime to reach the client (the server's write timeout
// would otherwise cut a long export).
const (
	auditExportPage = 1000
	exportWriteTime = 60 * time.Second
)

func (a *API) handleAuditExport(w http.ResponseWriter, r *http.Request, c caller) {
	format := r.URL.Query().Get("format")
	if format != audit.FormatCSV && format != audit.FormatJSONL {
		WriteError(w, http.StatusBadRequest, "format: %q: want csv or jsonl", format)
		return
	}
	for _, p := range []string{"after", "before", "limit", "order"} {
		if r.URL.Query().Has(p) {
			WriteError(w, http.StatusBadRequest, "%s: not taken by the export, which has every matching record: use GET /v1/audit to page", p)
			return
		}
	}
	q, ok := a.auditQuery(w, r, c)
	if !ok {
		return
	}
	head, _, err := a.Store.AuditHead(r.Context())
	if err != nil {
		a.internal(w, r, "read audit head", err)
		return
	}
	q.Before, q.Limit = head+1, auditExportPage
	ctype := "text/csv; charset=utf-8"
	if format == audit.FormatJSONL {
		ctype = "application/jsonl"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="patchbay-audit-%s.%s"`, a.now().UTC().Format("20060102-150405"), format))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	ex, _ := audit.NewExporter(w, format)
	for q.After < head {
		recs, err := a.Store.QueryAudit(r.Context(), q)
		if err != nil {
			// The status is sent: all that is left is to cut the download short.
			a.Log.Error().Err(err).Msg("audit export: read records")
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteTime))
		for _, rec := range recs {
			if err := ex.Write(rec); err != nil {
				return
			}
		}
		if len(recs) < auditExportPage {
			break
		}
		q.After = recs[len(recs)-1].Seq
	}
	_ = ex.Flush()
}
