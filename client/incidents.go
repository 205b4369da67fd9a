package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// IncidentFilter selects incidents; empty fields match all.
type IncidentFilter struct {
	State, Site string
}

// Incidents lists the incidents of the caller's sites, newest first.
func (c *Client) Incidents(ctx context.Context, f IncidentFilter) ([]apiv1.Incident, error) {
	q := url.Values{}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.Site != "" {
		q.Set("site", f.Site)
	}
	var out apiv1.IncidentList
	if err := c.do(ctx, http.MethodGet, "/v1/incidents", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	if out.Incidents == nil {
		out.Incidents = []apiv1.Incident{}
	}
	return out.Incidents, nil
}

// CreateIncident opens an incident (technician).
func (c *Client) CreateIncident(ctx context.Context, req apiv1.IncidentCreate) (apiv1.Incident, error) {
	var out apiv1.Incident
	if err := c.do(ctx, http.MethodPost, "/v1/incidents", nil, req, &out); err != nil {
		return apiv1.Incident{}, fmt.Errorf("create incident: %w", err)
	}
	return out, nil
}

// Incident returns one incident (ID or unique ID prefix) with its notes,
// links and the known fixes that match it.
func (c *Client) Incident(ctx context.Context, ref string) (apiv1.Incident, error) {
	return c.incidentCall(ctx, "show", http.MethodGet, ref, "", nil)
}

// NoteIncident appends a note (Markdown) to an incident.
func (c *Client) NoteIncident(ctx context.Context, ref, body string) (apiv1.Incident, error) {
	return c.incidentCall(ctx, "note", http.MethodPost, ref, "/notes", apiv1.IncidentNoteAdd{Body: body})
}

// LinkIncident links a job, session or alert to an incident.
func (c *Client) LinkIncident(ctx context.Context, ref string, link apiv1.IncidentLinkAdd) (apiv1.Incident, error) {
	return c.incidentCall(ctx, "link", http.MethodPost, ref, "/links", link)
}

// ResolveIncident resolves an incident with what fixed it.
func (c *Client) ResolveIncident(ctx context.Context, ref string, req apiv1.IncidentResolve) (apiv1.Incident, error) {
	return c.incidentCall(ctx, "resolve", http.MethodPost, ref, "/resolve", req)
}

func (c *Client) incidentCall(ctx context.Context, verb, method, ref, sub string, in any) (apiv1.Incident, error) {
	seg, err := pathSeg("incident ID", ref)
	var out apiv1.Incident
	if err == nil {
		err = c.do(ctx, method, "/v1/incidents/"+seg+sub, nil, in, &out)
	}
	if err != nil {
		return apiv1.Incident{}, fmt.Errorf("%s incident %s: %w", verb, ref, err)
	}
	return out, nil
}

// KnownFixes lists the known fixes; with q, those whose name, title,
// description or symptom contains q.
func (c *Client) KnownFixes(ctx context.Context, q string) ([]apiv1.KnownFix, error) {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	var out apiv1.KnownFixList
	if err := c.do(ctx, http.MethodGet, "/v1/known-fixes", v, nil, &out); err != nil {
		return nil, fmt.Errorf("list known fixes: %w", err)
	}
	if out.KnownFixes == nil {
		out.KnownFixes = []apiv1.KnownFix{}
	}
	return out.KnownFixes, nil
}

// CreateKnownFix adds a known fix (technician).
func (c *Client) CreateKnownFix(ctx context.Context, k apiv1.KnownFix) (apiv1.KnownFix, error) {
	var out apiv1.KnownFix
	if err := c.do(ctx, http.MethodPost, "/v1/known-fixes", nil, k, &out); err != nil {
		return apiv1.KnownFix{}, fmt.Errorf("create known fix %s: %w", k.Name, err)
	}
	return out, nil
}

// KnownFix returns one known fix by name, ID or unique ID prefix.
func (c *Client) KnownFix(ctx context.Context, ref string) (apiv1.KnownFix, error) {
	seg, err := pathSeg("known fix", ref)
	var out apiv1.KnownFix
	if err == nil {
		err = c.do(ctx, http.MethodGet, "/v1/known-fixes/"+seg, nil, nil, &out)
	}
	if err != nil {
		return apiv1.KnownFix{}, fmt.Errorf("show known fix %s: %w", ref, err)
	}
	return out, nil
}

// DeleteKnownFix deletes a known fix (technician).
func (c *Client) DeleteKnownFix(ctx context.Context, ref string) error {
	seg, err := pathSeg("known fix", ref)
	if err == nil {
		err = c.do(ctx, http.MethodDelete, "/v1/known-fixes/"+seg, nil, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("delete known fix %s: %w", ref, err)
	}
	return nil
}
