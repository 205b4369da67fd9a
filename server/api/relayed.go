package api

import (
	"net"
	"net/http"

	"github.com/patchbay/patchbay/certs"
)

// SessionForwarder forwards a technician's session request, already
// authorised on this relay, to the relay of the tier that holds the agent,
// and copies the session both ways until either side ends it.
type SessionForwarder interface {
	ForwardSession(w http.ResponseWriter, r *http.Request, agentID string)
}

// Headers a relay sets on a session request it forwards to another relay
// of its tier. Only a relay that proves itself with a relay client
// certificate of the tier's CA may send them (relayedFrom).
const (
	// HeaderRelay names the forwarding relay (its node ID).
	HeaderRelay = "X-Patchbay-Relay"
	// HeaderRelayClient is the technician's address as the forwarding
	// relay saw it, for the audit log and sign-in throttling.
	HeaderRelayClient = "X-Patchbay-Relay-Client"
)

// relayedFrom refuses a request that carries a relay header without a
// verified relay client certificate (403), and for one that has it takes
// the technician's address from HeaderRelayClient. The technician's own
// credential is still checked by h.
func relayedFrom(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, relay := r.Header[HeaderRelay]
		_, client := r.Header[HeaderRelayClient]
		if !relay && !client {
			h.ServeHTTP(w, r)
			return
		}
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || !certs.IsRelayCert(r.TLS.VerifiedChains[0][0]) {
			WriteError(w, http.StatusForbidden, "request: the %s and %s headers are accepted only from a relay of this tier, "+
				"with the relay client certificate it makes at start; clients must not send them", HeaderRelay, HeaderRelayClient)
			return
		}
		if r.Header.Get(HeaderRelay) == "" {
			WriteError(w, http.StatusBadRequest, "request: a relay's request without %s", HeaderRelay)
			return
		}
		if c := r.Header.Get(HeaderRelayClient); c != "" {
			if _, _, err := net.SplitHostPort(c); err != nil {
				WriteError(w, http.StatusBadRequest, "request: %s %q is not HOST:PORT", HeaderRelayClient, c)
				return
			}
			r2 := *r
			r2.RemoteAddr = c
			r = &r2
		}
		h.ServeHTTP(w, r)
	})
}
