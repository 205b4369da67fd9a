package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
)

// MaxAuditPage is the most audit records one GET /v1/audit returns.
const MaxAuditPage = 1000

// Health is the answer of GET /healthz (no token needed).
type Health struct {
	Status        string `json:"status"`
	Version       string `json:"version"`
	AgentsOnline  int    `json:"agents_online"`
	CAFingerprint string `json:"ca_fingerprint"`
}

// Health asks the relay whether it is up.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	if err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, &h); err != nil {
		return Health{}, fmt.Errorf("check relay health: %w", err)
	}
	return h, nil
}

// Whoami returns who the saved token belongs to.
func (c *Client) Whoami(ctx context.Context) (apiv1.Whoami, error) {
	var w apiv1.Whoami
	if err := c.do(ctx, http.MethodGet, "/v1/whoami", nil, nil, &w); err != nil {
		return apiv1.Whoami{}, fmt.Errorf("whoami: %w", err)
	}
	return w, nil
}

// Agents lists the agents matching target (a selector; "" for all) in
// every site the caller reaches.
func (c *Client) Agents(ctx context.Context, target string) ([]apiv1.Agent, error) {
	return c.AgentsAt(ctx, target, "")
}

// Agent returns one agent by ID or hostname. The relay answers 404 for an
// unknown one and 409 when a hostname names several agents.
func (c *Client) Agent(ctx context.Context, idOrHostname string) (apiv1.Agent, error) {
	seg, err := pathSeg("agent ID or hostname", idOrHostname)
	if err != nil {
		return apiv1.Agent{}, fmt.Errorf("show agent: %w", err)
	}
	var a apiv1.Agent
	if err := c.do(ctx, http.MethodGet, "/v1/agents/"+seg, nil, nil, &a); err != nil {
		return apiv1.Agent{}, fmt.Errorf("show agent %s: %w", idOrHostname, err)
	}
	return a, nil
}

// RevokeAgent revokes an agent's certificate (admin): the relay closes its
// link and refuses it from then on. It returns the agent as revoked.
func (c *Client) RevokeAgent(ctx context.Context, idOrHostname string) (apiv1.Agent, error) {
	seg, err := pathSeg("agent ID", idOrHostname)
	if err != nil {
		return apiv1.Agent{}, fmt.Errorf("revoke agent: %w", err)
	}
	var a apiv1.Agent
	if err := c.do(ctx, http.MethodPost, "/v1/agents/"+seg+"/revoke", nil, nil, &a); err != nil {
		return apiv1.Agent{}, fmt.Errorf("revoke agent %s: %w", idOrHostname, err)
	}
	return a, nil
}

// CreateEnrollToken creates an enrollment token (admin). The answer's Token
// is the secret, shown only this once.
func (c *Client) CreateEnrollToken(ctx context.Context, req apiv1.EnrollTokenRequest) (apiv1.EnrollToken, error) {
	var t apiv1.EnrollToken
	if err := c.do(ctx, http.MethodPost, "/v1/enroll-tokens", nil, req, &t); err != nil {
		return apiv1.EnrollToken{}, fmt.Errorf("create enrollment token: %w", err)
	}
	return t, nil
}

// EnrollTokens lists enrollment tokens (admin), without their secrets.
func (c *Client) EnrollTokens(ctx context.Context) ([]apiv1.EnrollToken, error) {
	toks := []apiv1.EnrollToken{}
	if err := c.do(ctx, http.MethodGet, "/v1/enroll-tokens", nil, nil, &toks); err != nil {
		return nil, fmt.Errorf("list enrollment tokens: %w", err)
	}
	if toks == nil {
		toks = []apiv1.EnrollToken{}
	}
	return toks, nil
}

// RevokeEnrollToken revokes an enrollment token (admin). Agents already
// enrolled with it are not affected.
func (c *Client) RevokeEnrollToken(ctx context.Context, id string) error {
	seg, err := pathSeg("token ID", id)
	if err == nil {
		err = c.do(ctx, http.MethodDelete, "/v1/enroll-tokens/"+seg, nil, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("revoke enrollment token %s: %w", id, err)
	}
	return nil
}

// CreateAPIToken creates an API token (admin). The answer's Token is the
// secret, shown only this once.
func (c *Client) CreateAPIToken(ctx context.Context, req apiv1.APITokenRequest) (apiv1.APIToken, error) {
	var t apiv1.APIToken
	if err := c.do(ctx, http.MethodPost, "/v1/api-tokens", nil, req, &t); err != nil {
		return apiv1.APIToken{}, fmt.Errorf("create API token: %w", err)
	}
	return t, nil
}

// APITokens lists API tokens (admin), without their secrets.
func (c *Client) APITokens(ctx context.Context) ([]apiv1.APIToken, error) {
	toks := []apiv1.APIToken{}
	if err := c.do(ctx, http.MethodGet, "/v1/api-tokens", nil, nil, &toks); err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	if toks == nil {
		toks = []apiv1.APIToken{}
	}
	return toks, nil
}

// RevokeAPIToken revokes an API token (admin).
func (c *Client) RevokeAPIToken(ctx context.Context, id string) error {
	seg, err := pathSeg("token ID", id)
	if err == nil {
		err = c.do(ctx, http.MethodDelete, "/v1/api-tokens/"+seg, nil, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("revoke API token %s: %w", id, err)
	}
	return nil
}

// Audit returns up to limit audit records with seq > after, ascending.
// limit 0 leaves the page size to the relay; at most MaxAuditPage.
func (c *Client) Audit(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	recs, err := c.auditPage(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return recs, nil
}

func (c *Client) auditPage(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	if after < 0 {
		return nil, fmt.Errorf("after %d: must not be negative", after)
	}
	if limit < 0 || limit > MaxAuditPage {
		return nil, fmt.Errorf("limit %d: want 1 to %d", limit, MaxAuditPage)
	}
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	recs := []audit.Record{}
	if err := c.do(ctx, http.MethodGet, "/v1/audit", q, nil, &recs); err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	return recs, nil
}

// AuditHead returns the relay's stored head of the audit chain.
func (c *Client) AuditHead(ctx context.Context) (apiv1.AuditHead, error) {
	var h apiv1.AuditHead
	if err := c.do(ctx, http.MethodGet, "/v1/audit/head", nil, nil, &h); err != nil {
		return apiv1.AuditHead{}, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}
