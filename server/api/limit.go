package api

import (
	"net/http"
	"strconv"

	"github.com/patchbay/patchbay/server/authlimit"
)

// throttled answers 429 (with Retry-After) when the request's source, or
// user when set, has failed too many sign-ins; it reports whether it did.
// Without a Limiter nothing is throttled.
func (a *API) throttled(w http.ResponseWriter, r *http.Request, user string) bool {
	if a.Limiter == nil {
		return false
	}
	th := a.Limiter.Allow(authlimit.SourceOf(r.RemoteAddr), user, a.now())
	if th == nil {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(th.RetryAfter.Seconds())))
	WriteError(w, http.StatusTooManyRequests, "%s", th.Error())
	return true
}

// authFailed counts a failed credential (what: "api token", "enrollment
// token", ...) from the request's source and logs the source's first
// failure of each audit period; the relay writes the counts to the audit
// log (auth.failures) once a minute.
func (a *API) authFailed(r *http.Request, user, what string) {
	if a.Limiter == nil {
		return
	}
	src := authlimit.SourceOf(r.RemoteAddr)
	if a.Limiter.Failed(src, user, a.now()) {
		a.Log.Warn().Str("source", src).Str("user", user).Str("credential", what).Str("path", r.URL.Path).
			Msg("failed sign-in (further failures from this source are counted in the audit log, not logged)")
	}
}
