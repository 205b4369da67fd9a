package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// Inventory returns what an agent reported about its hardware and software
// (viewer); withSoftware adds the package list.
func (c *Client) Inventory(ctx context.Context, agent string, withSoftware bool) (apiv1.Inventory, error) {
	seg, err := pathSeg("agent ID or hostname", agent)
	if err != nil {
		return apiv1.Inventory{}, fmt.Errorf("show inventory: %w", err)
	}
	var q url.Values
	if withSoftware {
		q = url.Values{"software": {"1"}}
	}
	var inv apiv1.Inventory
	if err := c.do(ctx, http.MethodGet, "/v1/agents/"+seg+"/inventory", q, nil, &inv); err != nil {
		return apiv1.Inventory{}, fmt.Errorf("show inventory of %s: %w", agent, err)
	}
	return inv, nil
}

// SoftwareHistory returns an agent's software changes, newest first.
func (c *Client) SoftwareHistory(ctx context.Context, agent string, limit int) ([]apiv1.SoftwareChange, error) {
	seg, err := pathSeg("agent ID or hostname", agent)
	if err != nil {
		return nil, fmt.Errorf("software history: %w", err)
	}
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	var out []apiv1.SoftwareChange
	if err := c.do(ctx, http.MethodGet, "/v1/agents/"+seg+"/inventory/history", q, nil, &out); err != nil {
		return nil, fmt.Errorf("software history of %s: %w", agent, err)
	}
	return out, nil
}

// RefreshInventory asks a connected agent to report its inventory now
// (technician).
func (c *Client) RefreshInventory(ctx context.Context, agent string) error {
	seg, err := pathSeg("agent ID or hostname", agent)
	if err != nil {
		return fmt.Errorf("refresh inventory: %w", err)
	}
	if err := c.do(ctx, http.MethodPost, "/v1/agents/"+seg+"/inventory/refresh", nil, nil, nil); err != nil {
		return fmt.Errorf("refresh inventory of %s: %w", agent, err)
	}
	return nil
}

// SoftwareHolders lists the agents that have a package and which version;
// with versionLT, only versions before it (Debian order).
func (c *Client) SoftwareHolders(ctx context.Context, name, versionLT string) ([]apiv1.SoftwareHolding, error) {
	q := url.Values{"name": {name}}
	if versionLT != "" {
		q.Set("version_lt", versionLT)
	}
	var out []apiv1.SoftwareHolding
	if err := c.do(ctx, http.MethodGet, "/v1/software", q, nil, &out); err != nil {
		return nil, fmt.Errorf("software %s: %w", name, err)
	}
	return out, nil
}
