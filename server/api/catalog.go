package api

import "net/http"

// registerCatalog adds the plugin and script catalog routes.
func (a *API) registerCatalog(mux *http.ServeMux) {}
