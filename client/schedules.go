package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// CreateSchedule stores a scheduled job (technician).
func (c *Client) CreateSchedule(ctx context.Context, req apiv1.ScheduleCreate) (apiv1.Schedule, error) {
	var s apiv1.Schedule
	if err := c.do(ctx, http.MethodPost, "/v1/schedules", nil, req, &s); err != nil {
		return apiv1.Schedule{}, fmt.Errorf("create schedule: %w", err)
	}
	return s, nil
}

// Schedules lists the schedules of kind ("" all, "job", "patch-policy").
func (c *Client) Schedules(ctx context.Context, kind string) ([]apiv1.Schedule, error) {
	var q url.Values
	if kind != "" {
		q = url.Values{"kind": {kind}}
	}
	out := []apiv1.Schedule{}
	if err := c.do(ctx, http.MethodGet, "/v1/schedules", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out, nil
}

// ScheduleDo shows, pauses, resumes or deletes ("show", "pause", "resume",
// "delete") the schedule ref names: an ID, an ID prefix or a name.
func (c *Client) ScheduleDo(ctx context.Context, action, ref string) (apiv1.Schedule, error) {
	seg, err := pathSeg("schedule", ref)
	if err != nil {
		return apiv1.Schedule{}, fmt.Errorf("%s schedule: %w", action, err)
	}
	var s apiv1.Schedule
	switch action {
	case "show":
		err = c.do(ctx, http.MethodGet, "/v1/schedules/"+seg, nil, nil, &s)
	case "delete":
		err = c.do(ctx, http.MethodDelete, "/v1/schedules/"+seg, nil, nil, nil)
	default:
		err = c.do(ctx, http.MethodPost, "/v1/schedules/"+seg+"/"+action, nil, nil, &s)
	}
	if err != nil {
		return apiv1.Schedule{}, fmt.Errorf("%s schedule %s: %w", action, ref, err)
	}
	return s, nil
}

// CreateWindow stores a site's maintenance window (technician).
func (c *Client) CreateWindow(ctx context.Context, req apiv1.WindowCreate) (apiv1.Window, error) {
	var w apiv1.Window
	if err := c.do(ctx, http.MethodPost, "/v1/windows", nil, req, &w); err != nil {
		return apiv1.Window{}, fmt.Errorf("create window: %w", err)
	}
	return w, nil
}

// Windows lists the maintenance windows of the sites the caller reaches.
func (c *Client) Windows(ctx context.Context) ([]apiv1.Window, error) {
	out := []apiv1.Window{}
	if err := c.do(ctx, http.MethodGet, "/v1/windows", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list windows: %w", err)
	}
	return out, nil
}

// DeleteWindow deletes a window by ID, ID prefix, SITE/NAME or NAME.
func (c *Client) DeleteWindow(ctx context.Context, ref string) error {
	seg, err := pathSeg("window", ref)
	if err != nil {
		return fmt.Errorf("delete window: %w", err)
	}
	if err := c.do(ctx, http.MethodDelete, "/v1/windows/"+seg, nil, nil, nil); err != nil {
		return fmt.Errorf("delete window %s: %w", ref, err)
	}
	return nil
}

// CreatePatchPolicy stores a patch policy (a schedule of kind
// patch-policy).
func (c *Client) CreatePatchPolicy(ctx context.Context, req apiv1.PatchPolicyCreate) (apiv1.Schedule, error) {
	var s apiv1.Schedule
	if err := c.do(ctx, http.MethodPost, "/v1/patch-policies", nil, req, &s); err != nil {
		return apiv1.Schedule{}, fmt.Errorf("create patch policy: %w", err)
	}
	return s, nil
}
