package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/patchbay/patchbay/internal/apiv1"
)

// ConsoleLink asks the relay for a one-time link that logs the saved
// token's identity into the web console, and returns it as a full URL.
func (c *Client) ConsoleLink(ctx context.Context) (string, apiv1.ConsoleLink, error) {
	var l apiv1.ConsoleLink
	if err := c.do(ctx, http.MethodPost, "/v1/console/links", nil, nil, &l); err != nil {
		return "", l, fmt.Errorf("console link: %w", err)
	}
	return c.base.String() + l.Path, l, nil
}
