package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// DefaultAgentCertValidity is how long an agent certificate is valid.
const DefaultAgentCertValidity = 365 * 24 * time.Hour

// handleEnroll exchanges an enrollment token and a CSR for a client
// certificate naming a new agent ID. The token is checked and spent in the
// same transaction that records the agent: an unknown, expired, revoked or
// used-up token changes nothing.
func (a *API) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req apiv1.EnrollRequest
	if !decode(w, r, &req) {
		return
	}
	if !strings.HasPrefix(req.Token, PrefixEnroll) || len(req.Token) > 128 {
		WriteError(w, http.StatusUnauthorized, "enrollment token unknown: it should start with %q (patchbay tokens create)", PrefixEnroll)
		return
	}
	if err := wire.ValidTags(req.Tags); err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if len(req.Hostname) > 253 {
		WriteError(w, http.StatusBadRequest, "hostname longer than 253 bytes")
		return
	}
	validity := a.AgentCertValidity
	if validity <= 0 {
		validity = DefaultAgentCertValidity
	}
	now := a.now()
	hash := HashSecret(req.Token)
	if a.throttled(w, r, "") {
		return
	}
	// The token first: a request without a usable one costs no CA signature.
	if tok, err := a.Store.CheckEnrollToken(r.Context(), hash, now); err != nil {
		a.enrollRefused(w, r, tok, err)
		return
	}
	id := store.NewID()
	der, err := a.CA.SignAgentCSR(req.CSR, id, validity)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}
	agent, tok, err := a.Store.EnrollAgent(r.Context(), hash,
		store.Agent{ID: id, Hostname: req.Hostname, AgentTags: req.Tags}, now)
	if err != nil {
		a.enrollRefused(w, r, tok, err)
		return
	}
	// The certificate on record is what the agent's signed consent receipts
	// are checked against (internal/receipt). Without it the relay records
	// the CA-signed certificate of the agent's first receipt instead.
	if _, err := a.Store.SetAgentCert(r.Context(), agent.ID, der); err != nil {
		a.Log.Warn().Err(err).Str("agent_id", agent.ID).Msg("store the agent's certificate")
	}
	if err := a.audit(r.Context(), "enroll-token "+shortID(tok.ID), "agent.enroll", agent.ID, map[string]string{
		"hostname": req.Hostname, "token_id": tok.ID, "remote": r.RemoteAddr, "site": agent.SiteID,
	}); err != nil {
		a.internal(w, r, "enroll agent", err)
		return
	}
	a.Log.Info().Str("agent_id", agent.ID).Str("hostname", req.Hostname).Str("token_id", tok.ID).Msg("agent enrolled")
	writeJSON(w, http.StatusOK, apiv1.EnrollResponse{
		AgentID: agent.ID, Certificate: string(certs.CertPEM(der)), CA: string(a.CA.CertPEM), Tags: agent.Tags,
		SSHUserCA: a.sshUserCA(),
	})
}

// enrollRefused answers a refused enrollment, naming the token's own
// numbers (its uses, its expiry).
func (a *API) enrollRefused(w http.ResponseWriter, r *http.Request, tok store.EnrollToken, err error) {
	switch {
	case errors.Is(err, store.ErrTokenUnknown):
		a.authFailed(r, "", "enrollment token")
		WriteError(w, http.StatusUnauthorized, "enrollment token unknown: check it, or create one with patchbay tokens create")
	case errors.Is(err, store.ErrTokenExpired):
		WriteError(w, http.StatusForbidden, "enrollment token %s expired at %s: create a new one with patchbay tokens create",
			shortID(tok.ID), tok.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, store.ErrTokenUsedUp):
		WriteError(w, http.StatusForbidden, "enrollment token %s has no uses left (%d of %d used): create a new one, or one with more --uses",
			shortID(tok.ID), tok.Uses, tok.UsesAllowed)
	case errors.Is(err, store.ErrTokenRevoked):
		WriteError(w, http.StatusForbidden, "enrollment token %s was revoked: create a new one with patchbay tokens create", shortID(tok.ID))
	default:
		a.internal(w, r, "enroll agent", err)
	}
}
