package api

import (
	"net/http"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// AdminOnly serves h to callers whose API token (or console session) has the
// admin role, and refuses everyone else as every API route does: the
// relay's /metrics on its main listener.
func (a *API) AdminOnly(h http.Handler) http.Handler {
	return a.auth(apiv1.RoleAdmin, func(w http.ResponseWriter, r *http.Request, _ caller) { h.ServeHTTP(w, r) })
}
