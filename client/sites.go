package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// Organisations lists the organisations (admin).
func (c *Client) Organisations(ctx context.Context) ([]apiv1.Organisation, error) {
	orgs := []apiv1.Organisation{}
	if err := c.do(ctx, http.MethodGet, "/v1/organisations", nil, nil, &orgs); err != nil {
		return nil, fmt.Errorf("list organisations: %w", err)
	}
	if orgs == nil {
		orgs = []apiv1.Organisation{}
	}
	return orgs, nil
}

// CreateOrganisation creates an organisation (admin). The relay answers 409
// when the name is taken.
func (c *Client) CreateOrganisation(ctx context.Context, name string) (apiv1.Organisation, error) {
	var o apiv1.Organisation
	if err := c.do(ctx, http.MethodPost, "/v1/organisations", nil, apiv1.OrganisationRequest{Name: name}, &o); err != nil {
		return apiv1.Organisation{}, fmt.Errorf("create organisation %s: %w", name, err)
	}
	return o, nil
}

// Sites lists the sites the caller reaches (every one for an admin).
func (c *Client) Sites(ctx context.Context) ([]apiv1.Site, error) {
	sites := []apiv1.Site{}
	if err := c.do(ctx, http.MethodGet, "/v1/sites", nil, nil, &sites); err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	if sites == nil {
		sites = []apiv1.Site{}
	}
	return sites, nil
}

// CreateSite creates the site name of the organisation org (its name or
// ID) (admin).
func (c *Client) CreateSite(ctx context.Context, org, name string) (apiv1.Site, error) {
	var s apiv1.Site
	if err := c.do(ctx, http.MethodPost, "/v1/sites", nil, apiv1.SiteRequest{Organisation: org, Name: name}, &s); err != nil {
		return apiv1.Site{}, fmt.Errorf("create site %s/%s: %w", org, name, err)
	}
	return s, nil
}

// DeleteSite deletes a site (admin), named by ID, unique ID prefix,
// "ORG/SITE" or a name only one site has. The relay answers 409 while
// agents or enrollment tokens belong to it, and for the default site.
func (c *Client) DeleteSite(ctx context.Context, ref string) error {
	seg, err := pathSeg("site", ref)
	if err == nil {
		err = c.do(ctx, http.MethodDelete, "/v1/sites/"+seg, nil, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("delete site %s: %w", ref, err)
	}
	return nil
}

// MoveAgent moves an agent (ID, unique ID prefix or hostname) to another
// site (admin) and returns it as moved.
func (c *Client) MoveAgent(ctx context.Context, agent, site string) (apiv1.Agent, error) {
	seg, err := pathSeg("agent ID or hostname", agent)
	var a apiv1.Agent
	if err == nil {
		err = c.do(ctx, http.MethodPost, "/v1/agents/"+seg+"/site", nil, apiv1.AgentSiteRequest{Site: site}, &a)
	}
	if err != nil {
		return apiv1.Agent{}, fmt.Errorf("move agent %s to site %s: %w", agent, site, err)
	}
	return a, nil
}

// AgentsAt lists the agents of one site (any reference the relay takes;
// "" for every site the caller reaches) matching target ("" for all).
func (c *Client) AgentsAt(ctx context.Context, target, site string) ([]apiv1.Agent, error) {
	q := url.Values{}
	if target != "" {
		q.Set("target", target)
	}
	if site != "" {
		q.Set("site", site)
	}
	agents := []apiv1.Agent{}
	if err := c.do(ctx, http.MethodGet, "/v1/agents", q, nil, &agents); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	if agents == nil {
		agents = []apiv1.Agent{}
	}
	return agents, nil
}

// SetUserSites replaces the sites a user is granted (admin): site
// references, or "all" for every site.
func (c *Client) SetUserSites(ctx context.Context, ref string, sites []string) (apiv1.User, error) {
	var u apiv1.User
	return u, c.userCall(ctx, "set the sites of user", http.MethodPost, ref, "/sites", apiv1.UserSitesRequest{Sites: sites}, &u)
}

// SetUserRole changes a local user's role (POST /v1/users/{id}/role).
func (c *Client) SetUserRole(ctx context.Context, ref, role string) (apiv1.User, error) {
	var u apiv1.User
	return u, c.userCall(ctx, "set the role of user", http.MethodPost, ref, "/role", apiv1.UserRoleRequest{Role: role}, &u)
}
