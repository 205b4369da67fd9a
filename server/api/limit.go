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

// begin is throttled for a credential whose check is slow (a password is
// hashed): the attempt holds its place in the limits until it ends (see
// authlimit.Begin). It reports false when it has answered 429. The caller
// ends the ticket with a.Limiter's Fail (through slowFailed), Succeed or
// Release; a nil Limiter gives a nil ticket, which they accept.
func (a *API) begin(w http.ResponseWriter, r *http.Request, user string) (*authlimit.Ticket, bool) {
	if a.Limiter == nil {
		return nil, true
	}
	t, th := a.Limiter.Begin(authlimit.SourceOf(r.RemoteAddr), user, a.now())
	if th != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(th.RetryAfter.Seconds())))
		WriteError(w, http.StatusTooManyRequests, "%s", th.Error())
		return nil, false
	}
	return t, true
}

// slowFailed ends a ticket from begin as a failure, logging the source's
// first failure of each audit period like authFailed.
func (a *API) slowFailed(r *http.Request, t *authlimit.Ticket, user, what string) {
	if a.Limiter == nil {
		return
	}
	if a.Limiter.Fail(t, a.now()) {
		a.Log.Warn().Str("source", authlimit.SourceOf(r.RemoteAddr)).Str("user", user).Str("credential", what).Str("path", r.URL.Path).
			Msg("failed sign-in (further failures from this source are counted in the audit log, not logged)")
	}
}

// settle ends a ticket from begin that did not fail: ok marks a complete
// sign-in (the source becomes known for the user), !ok gives the place back
// without a verdict. A nil Limiter or ticket is fine.
func (a *API) settle(t *authlimit.Ticket, ok bool) {
	if a.Limiter == nil {
		return
	}
	if ok {
		a.Limiter.Succeed(t, a.now())
	} else {
		a.Limiter.Release(t, a.now())
	}
}
