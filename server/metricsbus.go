package server

import (
	"context"
	"net/http"
	"time"

	"github.com/patchbay/patchbay/server/hub"
)

// timedBus times each Publish on the tier's bus for the metrics
// (patchbay_bus_publish_seconds).
type timedBus struct {
	hub.Bus
	observe func(time.Duration)
}

func (b timedBus) Publish(ctx context.Context, subject string, data []byte) error {
	start := time.Now()
	err := b.Bus.Publish(ctx, subject, data)
	b.observe(time.Since(start))
	return err
}

// MetricsHandler serves the relay's Prometheus metrics without
// authentication, for a listener of its own on a private network
// (patchbay-server serve --metrics-listen). The main listener serves the
// same at /metrics to admins only.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.Handler() }
