package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/patchbay/patchbay/server/store"
)

// The routes that name one agent, job or session ({id} in the path) accept
// what the CLI's tables and the console show: a full ID, a prefix of one
// that is unique, and for agents a hostname (case-insensitive). The relay
// resolves it with indexed queries (store.FindAgents and friends), so
// naming one agent among 19,000 costs a few rows, where a client resolving
// over list calls would have to download the whole fleet. A name that fits
// several is refused with 409 and the candidates; one that fits none with
// 404, saying what was looked for and which list shows them.

// maxCandidates is how many candidates an ambiguous reference lists.
const maxCandidates = 10

// candidates formats the candidates of an ambiguous reference; more than
// maxCandidates means "and more".
func candidates(list []string) string {
	if len(list) > maxCandidates {
		return strings.Join(list[:maxCandidates], ", ") + ", and more"
	}
	return strings.Join(list, ", ")
}

// count says "N" or "more than N" for a lookup capped at maxCandidates+1.
func count(n int) string {
	if n > maxCandidates {
		return fmt.Sprintf("more than %d", maxCandidates)
	}
	return fmt.Sprint(n)
}

// findOne resolves the {id} path value to the one item of the caller's
// scope that find returns for it (an ID or a unique prefix of one). what
// names the kind ("alert"), list the command that lists them, label a
// candidate in the 409 answer. On failure it has answered.
func findOne[T any](a *API, w http.ResponseWriter, r *http.Request, c caller, what, list string,
	find func(context.Context, store.Scope, string, int) ([]T, error), label func(T) string) (T, bool) {
	var zero T
	ref := r.PathValue("id")
	found, err := find(r.Context(), c.scope(), ref, maxCandidates+1)
	if err != nil {
		a.internal(w, r, "look up "+what, err)
		return zero, false
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		WriteError(w, http.StatusNotFound, "no %s with ID or ID prefix %q: %s shows them", what, ref, list)
		return zero, false
	}
	labels := make([]string, len(found))
	for i, x := range found {
		labels[i] = label(x)
	}
	WriteError(w, http.StatusConflict, "%s %q is ambiguous: %s of them start with it (%s): give more of the ID", what, ref, count(len(found)), candidates(labels))
	return zero, false
}

// findAgent resolves the {id} path value: an agent ID, a unique ID prefix or
// a hostname that names exactly one agent of the caller's sites (the
// others are not looked at: 404 for them). On failure it has answered.
func (a *API) findAgent(w http.ResponseWriter, r *http.Request, c caller) (store.Agent, bool) {
	ref := r.PathValue("id")
	found, err := a.Store.FindAgents(r.Context(), c.scope(), ref, maxCandidates+1)
	if err != nil {
		a.internal(w, r, "look up agent", err)
		return store.Agent{}, false
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		WriteError(w, http.StatusNotFound, "no agent with ID, ID prefix or hostname %q: patchbay agents list shows them", ref)
		return store.Agent{}, false
	}
	list := make([]string, len(found))
	sameHost := true
	for i, x := range found {
		list[i] = x.ID + " (" + x.Hostname + ")"
		sameHost = sameHost && strings.EqualFold(x.Hostname, ref)
	}
	hint := "give more of the ID"
	if sameHost {
		hint = "use an ID (or a unique prefix of one)"
	}
	WriteError(w, http.StatusConflict, "%q names %s agents: %s: %s", ref, count(len(found)), candidates(list), hint)
	return store.Agent{}, false
}

// findJob resolves the {id} path value to a stored job: its ID or a unique
// prefix, among the jobs the caller reaches every site of. On failure it
// has answered.
func (a *API) findJob(w http.ResponseWriter, r *http.Request, c caller) (store.Job, bool) {
	ref := r.PathValue("id")
	found, err := a.Store.FindJobs(r.Context(), c.scope(), ref, maxCandidates+1)
	if err != nil {
		a.internal(w, r, "look up job", err)
		return store.Job{}, false
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		WriteError(w, http.StatusNotFound, "no job with ID or ID prefix %q: patchbay jobs list shows them", ref)
		return store.Job{}, false
	}
	list := make([]string, len(found))
	for i, j := range found {
		list[i] = j.ID + " (" + j.Plugin + ")"
	}
	WriteError(w, http.StatusConflict, "%q names %s jobs: %s: give more of the ID", ref, count(len(found)), candidates(list))
	return store.Job{}, false
}

// findSession resolves the {id} path value: a session ID or a unique prefix,
// among the sessions of the caller's sites. On failure it has answered.
func (a *API) findSession(w http.ResponseWriter, r *http.Request, c caller) (store.Session, bool) {
	ref := r.PathValue("id")
	found, err := a.Store.FindSessions(r.Context(), c.scope(), ref, maxCandidates+1)
	if err != nil {
		a.internal(w, r, "look up session", err)
		return store.Session{}, false
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		WriteError(w, http.StatusNotFound, "no session with ID or ID prefix %q: patchbay sessions list shows them", ref)
		return store.Session{}, false
	}
	list := make([]string, len(found))
	for i, s := range found {
		list[i] = s.ID + " (" + s.Hostname + ", " + s.Technician + ")"
	}
	WriteError(w, http.StatusConflict, "%q names %s sessions: %s: give more of the ID", ref, count(len(found)), candidates(list))
	return store.Session{}, false
}
