package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// CreatePolicy creates a policy (admin).
func (c *Client) CreatePolicy(ctx context.Context, req apiv1.PolicyCreate) (apiv1.Policy, error) {
	var p apiv1.Policy
	if err := c.do(ctx, http.MethodPost, "/v1/policies", nil, req, &p); err != nil {
		return apiv1.Policy{}, fmt.Errorf("create policy %s: %w", req.Name, err)
	}
	return p, nil
}

// Policies lists the policies.
func (c *Client) Policies(ctx context.Context) ([]apiv1.Policy, error) {
	ps := []apiv1.Policy{}
	if err := c.do(ctx, http.MethodGet, "/v1/policies", nil, nil, &ps); err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	if ps == nil {
		ps = []apiv1.Policy{}
	}
	return ps, nil
}

// Policy returns a policy (by name or ID) with its check states.
func (c *Client) Policy(ctx context.Context, name string) (apiv1.Policy, error) {
	var p apiv1.Policy
	seg, err := pathSeg("policy", name)
	if err == nil {
		err = c.do(ctx, http.MethodGet, "/v1/policies/"+seg, nil, nil, &p)
	}
	if err != nil {
		return apiv1.Policy{}, fmt.Errorf("show policy %s: %w", name, err)
	}
	return p, nil
}

// DeletePolicy deletes a policy (admin).
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	seg, err := pathSeg("policy", name)
	if err == nil {
		err = c.do(ctx, http.MethodDelete, "/v1/policies/"+seg, nil, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("delete policy %s: %w", name, err)
	}
	return nil
}
