package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// CreateJob starts a plugin run across the agents matching req.Target
// (technician).
func (c *Client) CreateJob(ctx context.Context, req apiv1.JobCreate) (apiv1.Job, error) {
	var j apiv1.Job
	if err := c.do(ctx, http.MethodPost, "/v1/jobs", nil, req, &j); err != nil {
		return apiv1.Job{}, fmt.Errorf("create job: %w", err)
	}
	return j, nil
}

// Jobs lists the newest jobs first.
func (c *Client) Jobs(ctx context.Context) ([]apiv1.Job, error) {
	jobs := []apiv1.Job{}
	if err := c.do(ctx, http.MethodGet, "/v1/jobs", nil, nil, &jobs); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	if jobs == nil {
		jobs = []apiv1.Job{}
	}
	return jobs, nil
}

// Job returns one job with every agent's result.
func (c *Client) Job(ctx context.Context, id string) (apiv1.Job, error) {
	seg, err := pathSeg("job ID", id)
	if err != nil {
		return apiv1.Job{}, fmt.Errorf("show job: %w", err)
	}
	var j apiv1.Job
	if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+seg, nil, nil, &j); err != nil {
		return apiv1.Job{}, fmt.Errorf("show job %s: %w", id, err)
	}
	if j.Results == nil {
		j.Results = []apiv1.RunResult{}
	}
	return j, nil
}

// CancelJob stops a job (technician).
func (c *Client) CancelJob(ctx context.Context, id string) (apiv1.JobCancel, error) {
	seg, err := pathSeg("job ID", id)
	if err != nil {
		return apiv1.JobCancel{}, fmt.Errorf("cancel job: %w", err)
	}
	var r apiv1.JobCancel
	if err := c.do(ctx, http.MethodPost, "/v1/jobs/"+seg+"/cancel", nil, nil, &r); err != nil {
		return apiv1.JobCancel{}, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return r, nil
}
