package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

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

// JobProgress returns a job with its counts but without results: cheap
// enough to poll.
func (c *Client) JobProgress(ctx context.Context, id string) (apiv1.Job, error) {
	seg, err := pathSeg("job ID", id)
	if err != nil {
		return apiv1.Job{}, fmt.Errorf("show job: %w", err)
	}
	var j apiv1.Job
	if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+seg, url.Values{"results": {"false"}}, nil, &j); err != nil {
		return apiv1.Job{}, fmt.Errorf("show job %s: %w", id, err)
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

// ExportJob streams a job's full results to w: format "json" or "csv".
func (c *Client) ExportJob(ctx context.Context, id, format string, w io.Writer) error {
	seg, err := pathSeg("job ID", id)
	if err != nil {
		return fmt.Errorf("export job: %w", err)
	}
	if err := c.stream(ctx, "/v1/jobs/"+seg+"/export", url.Values{"format": {format}}, w); err != nil {
		return fmt.Errorf("export job %s: %w", id, err)
	}
	return nil
}

// stream GETs path and copies the body to w. Like uploads, a stream has no
// overall timeout (the transport still bounds connecting and the headers).
func (c *Client) stream(ctx context.Context, path string, query url.Values, w io.Writer) error {
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", UserAgent)
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	hc := &http.Client{Transport: c.hc.Transport, CheckRedirect: c.hc.CheckRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		return c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
