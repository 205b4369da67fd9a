package api

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// Known fixes: read by everyone, written by technicians, all audited.

const (
	maxKnownFixDesc   = 32 << 10
	maxKnownFixParams = 50
)

var knownFixName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func (a *API) registerKnownFixes(mux *http.ServeMux) {
	mux.Handle("GET /v1/known-fixes", a.auth(apiv1.RoleViewer, a.handleKnownFixList))
	mux.Handle("POST /v1/known-fixes", a.auth(apiv1.RoleTechnician, a.handleKnownFixCreate))
	mux.Handle("GET /v1/known-fixes/{id}", a.auth(apiv1.RoleViewer, a.handleKnownFixShow))
	mux.Handle("DELETE /v1/known-fixes/{id}", a.auth(apiv1.RoleTechnician, a.handleKnownFixDelete))
}

func knownFixOut(k store.KnownFix) apiv1.KnownFix {
	return apiv1.KnownFix{ID: k.ID, Name: k.Name, Title: k.Title, Check: k.Check, Pattern: k.Pattern, PatternKind: k.PatternKind,
		Plugin: k.Plugin, Params: k.Params, Description: k.Description, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy}
}

// handleKnownFixList lists the known fixes, or with ?q= those whose name,
// title, description or symptom contains q.
func (a *API) handleKnownFixList(w http.ResponseWriter, r *http.Request, c caller) {
	var (
		list []store.KnownFix
		err  error
	)
	if q := r.URL.Query().Get("q"); q != "" {
		list, err = a.Store.SearchKnownFixes(r.Context(), q)
	} else {
		list, err = a.Store.ListKnownFixes(r.Context())
	}
	if err != nil {
		a.internal(w, r, "list known fixes", err)
		return
	}
	out := apiv1.KnownFixList{KnownFixes: make([]apiv1.KnownFix, 0, len(list))}
	for _, k := range list {
		out.KnownFixes = append(out.KnownFixes, knownFixOut(k))
	}
	writeJSON(w, http.StatusOK, out)
}

// checkKnownFix validates a known fix; the error is the 400's text.
func checkKnownFix(req *apiv1.KnownFix) error {
	if !knownFixName.MatchString(req.Name) {
		return errors.New("name " + quote(req.Name) + ": use 1 to 64 lower-case letters, digits, '.', '_' or '-'")
	}
	if req.Plugin == "" {
		return errors.New("a plugin or script is required (--plugin NAME): what patchbay run runs")
	}
	if req.Check == "" && req.Pattern == "" {
		return errors.New("a symptom is required: --check NAME and/or --pattern TEXT")
	}
	if req.Pattern != "" && req.PatternKind == "" {
		req.PatternKind = store.PatternSubstring
	}
	if req.Pattern != "" {
		if _, err := store.CompilePattern(req.PatternKind, req.Pattern); err != nil {
			return err
		}
	}
	if len(req.Params) > maxKnownFixParams {
		return errors.New("too many params: at most 50")
	}
	for _, e := range []error{checkText("title", req.Title, maxIncidentTitle, false), checkText("check", req.Check, 200, false),
		checkText("plugin", req.Plugin, 200, false), checkText("description", req.Description, maxKnownFixDesc, true)} {
		if e != nil {
			return e
		}
	}
	for k, v := range req.Params {
		if err := checkText("param "+k, k+v, 2000, false); err != nil {
			return err
		}
	}
	return nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func (a *API) handleKnownFixCreate(w http.ResponseWriter, r *http.Request, c caller) {
	var req apiv1.KnownFix
	if !decode(w, r, &req) {
		return
	}
	if err := checkKnownFix(&req); err != nil {
		WriteError(w, http.StatusBadRequest, "known fix: %v", err)
		return
	}
	k, err := a.Store.CreateKnownFix(r.Context(), store.KnownFix{Name: req.Name, Title: req.Title, Check: req.Check, Pattern: req.Pattern,
		PatternKind: req.PatternKind, Plugin: req.Plugin, Params: req.Params, Description: req.Description}, c.actor(), a.now())
	if errors.Is(err, store.ErrKnownFixName) {
		WriteError(w, http.StatusConflict, "known fix %s exists already: pick another name, or delete that one first", req.Name)
		return
	} else if err != nil {
		a.internal(w, r, "create known fix", err)
		return
	}
	writeJSON(w, http.StatusCreated, knownFixOut(k))
}

// findKnownFix resolves {id}: a name, an ID or a unique ID prefix. On
// failure it has answered.
func (a *API) findKnownFix(w http.ResponseWriter, r *http.Request) (store.KnownFix, bool) {
	ref := r.PathValue("id")
	found, err := a.Store.FindKnownFix(r.Context(), ref, maxCandidates+1)
	if err != nil {
		a.internal(w, r, "look up known fix", err)
		return store.KnownFix{}, false
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		WriteError(w, http.StatusNotFound, "no known fix named %q (or with that ID): patchbay known-fixes list shows them", ref)
		return store.KnownFix{}, false
	}
	list := make([]string, len(found))
	for i, k := range found {
		list[i] = k.ID + " (" + k.Name + ")"
	}
	WriteError(w, http.StatusConflict, "%q names %s known fixes: %s: use the name", ref, count(len(found)), candidates(list))
	return store.KnownFix{}, false
}

func (a *API) handleKnownFixShow(w http.ResponseWriter, r *http.Request, c caller) {
	if k, ok := a.findKnownFix(w, r); ok {
		writeJSON(w, http.StatusOK, knownFixOut(k))
	}
}

func (a *API) handleKnownFixDelete(w http.ResponseWriter, r *http.Request, c caller) {
	k, ok := a.findKnownFix(w, r)
	if !ok {
		return
	}
	if err := a.Store.DeleteKnownFix(r.Context(), k.ID, k.Name, c.actor(), a.now()); errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "no known fix %s", k.Name)
		return
	} else if err != nil {
		a.internal(w, r, "delete known fix", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
