package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// CreateReportSchedule stores a report mailed on a schedule (admin).
func (c *Client) CreateReportSchedule(ctx context.Context, req apiv1.ReportScheduleCreate) (apiv1.ReportSchedule, error) {
	var s apiv1.ReportSchedule
	if err := c.do(ctx, http.MethodPost, "/v1/reports/schedules", nil, req, &s); err != nil {
		return apiv1.ReportSchedule{}, fmt.Errorf("create report schedule: %w", err)
	}
	return s, nil
}

// ReportSchedules lists the report schedules the caller sees.
func (c *Client) ReportSchedules(ctx context.Context) ([]apiv1.ReportSchedule, error) {
	out := []apiv1.ReportSchedule{}
	if err := c.do(ctx, http.MethodGet, "/v1/reports/schedules", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list report schedules: %w", err)
	}
	return out, nil
}

// DeleteReportSchedule deletes a report schedule by ID, ID prefix or name.
func (c *Client) DeleteReportSchedule(ctx context.Context, ref string) error {
	seg, err := pathSeg("report schedule", ref)
	if err != nil {
		return fmt.Errorf("delete report schedule: %w", err)
	}
	if err := c.do(ctx, http.MethodDelete, "/v1/reports/schedules/"+seg, nil, nil, nil); err != nil {
		return fmt.Errorf("delete report schedule %s: %w", ref, err)
	}
	return nil
}
