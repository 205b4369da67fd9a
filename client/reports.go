package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// ReportSummary returns the figures of a period (from, to: dates such as
// 2026-11-01 or RFC 3339 times; empty for the server's default) in site
// (empty: every site the caller reaches).
func (c *Client) ReportSummary(ctx context.Context, site, from, to string) (apiv1.ReportSummary, error) {
	q := url.Values{}
	for k, v := range map[string]string{"site": site, "from": from, "to": to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out apiv1.ReportSummary
	if err := c.do(ctx, http.MethodGet, "/v1/reports/summary", q, nil, &out); err != nil {
		return out, fmt.Errorf("report summary: %w", err)
	}
	return out, nil
}
