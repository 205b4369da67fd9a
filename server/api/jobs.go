package api

import "net/http"

// registerJobs adds the job routes.
func (a *API) registerJobs(mux *http.ServeMux) {}
