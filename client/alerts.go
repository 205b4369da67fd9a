package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// AlertFilter selects alerts; empty fields match all.
type AlertFilter struct {
	State, Site, Kind, Agent string
}

// Alerts lists the alerts of the caller's sites, newest first.
func (c *Client) Alerts(ctx context.Context, f AlertFilter) ([]apiv1.Alert, error) {
	q := url.Values{}
	for k, v := range map[string]string{"state": f.State, "site": f.Site, "kind": f.Kind, "agent": f.Agent} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out apiv1.AlertList
	if err := c.do(ctx, http.MethodGet, "/v1/alerts", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	if out.Alerts == nil {
		out.Alerts = []apiv1.Alert{}
	}
	return out.Alerts, nil
}

// Alert returns one alert (ID or unique ID prefix).
func (c *Client) Alert(ctx context.Context, ref string) (apiv1.Alert, error) {
	seg, err := pathSeg("alert ID", ref)
	var a apiv1.Alert
	if err == nil {
		err = c.do(ctx, http.MethodGet, "/v1/alerts/"+seg, nil, nil, &a)
	}
	if err != nil {
		return apiv1.Alert{}, fmt.Errorf("show alert %s: %w", ref, err)
	}
	return a, nil
}

// AckAlert acknowledges an alert (technician), with an optional note.
func (c *Client) AckAlert(ctx context.Context, ref, note string) (apiv1.Alert, error) {
	return c.changeAlert(ctx, ref, "ack", note)
}

// ResolveAlert resolves an alert (technician), with an optional note.
func (c *Client) ResolveAlert(ctx context.Context, ref, note string) (apiv1.Alert, error) {
	return c.changeAlert(ctx, ref, "resolve", note)
}

func (c *Client) changeAlert(ctx context.Context, ref, verb, note string) (apiv1.Alert, error) {
	seg, err := pathSeg("alert ID", ref)
	var a apiv1.Alert
	if err == nil {
		err = c.do(ctx, http.MethodPost, "/v1/alerts/"+seg+"/"+verb, nil, apiv1.AlertChange{Note: note}, &a)
	}
	if err != nil {
		return apiv1.Alert{}, fmt.Errorf("%s alert %s: %w", verb, ref, err)
	}
	return a, nil
}

// AlertRoutes lists the alert routes (admin); secrets are not returned.
func (c *Client) AlertRoutes(ctx context.Context) ([]apiv1.AlertRoute, error) {
	var out apiv1.AlertRouteList
	if err := c.do(ctx, http.MethodGet, "/v1/alert-routes", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list alert routes: %w", err)
	}
	if out.Routes == nil {
		out.Routes = []apiv1.AlertRoute{}
	}
	return out.Routes, nil
}

// CreateAlertRoute creates an alert route (admin).
func (c *Client) CreateAlertRoute(ctx context.Context, r apiv1.AlertRoute) (apiv1.AlertRoute, error) {
	var out apiv1.AlertRoute
	if err := c.do(ctx, http.MethodPost, "/v1/alert-routes", nil, r, &out); err != nil {
		return apiv1.AlertRoute{}, fmt.Errorf("create alert route: %w", err)
	}
	return out, nil
}

// DeleteAlertRoute deletes an alert route (ID or unique prefix; admin).
func (c *Client) DeleteAlertRoute(ctx context.Context, ref string) error {
	seg, err := pathSeg("alert route ID", ref)
	if err == nil {
		err = c.do(ctx, http.MethodDelete, "/v1/alert-routes/"+seg, nil, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("delete alert route %s: %w", ref, err)
	}
	return nil
}
