package api

import (
	"net/http"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/store"
)

// registerAgentRuns adds GET /v1/agents/{id}/runs: an agent's newest runs
// with their jobs (?limit=N, default 20, at most 200), for the console's
// Agent screen.
func (a *API) registerAgentRuns(mux *http.ServeMux) {
	mux.Handle("GET /v1/agents/{id}/runs", a.auth(apiv1.RoleViewer, a.handleAgentRuns))
}

func (a *API) handleAgentRuns(w http.ResponseWriter, r *http.Request, c caller) {
	limit, err := intParam(r.URL.Query().Get("limit"), 20, 1, 200)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "limit: %v", err)
		return
	}
	ag, ok := a.findAgent(w, r, c)
	if !ok {
		return
	}
	runs, err := a.Store.AgentRuns(r.Context(), ag.ID, int(limit))
	if err != nil {
		a.internal(w, r, "list the agent's runs", err)
		return
	}
	jobs := map[string]store.Job{}
	out := make([]apiv1.AgentRun, 0, len(runs))
	for _, run := range runs {
		j, seen := jobs[run.JobID]
		if !seen {
			if j, err = a.Store.GetJob(r.Context(), run.JobID); err != nil {
				a.internal(w, r, "list the agent's runs", err)
				return
			}
			jobs[run.JobID] = j
		}
		out = append(out, apiv1.AgentRun{JobID: j.ID, Plugin: j.Plugin, Script: j.Script, DryRun: j.DryRun,
			CreatedBy: j.CreatedBy, CreatedAt: j.CreatedAt, RunResult: runJSON(run)})
	}
	writeJSON(w, http.StatusOK, out)
}
