package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// serveMetrics serves the relay's Prometheus metrics at /metrics on addr,
// plain HTTP without authentication: for a listener on a private network
// (or loopback) that only the monitoring system reaches. The main listener
// serves the same at /metrics to admins' API tokens. The listener closes
// when ctx ends; the returned function waits for that.
func serveMetrics(ctx context.Context, addr string, h http.Handler, log zerolog.Logger) (wait func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w (choose another address)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn().Err(err).Msg("metrics server stopped")
		}
	}()
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	log.Info().Str("addr", "http://"+ln.Addr().String()+"/metrics").Msg("serving Prometheus metrics (no authentication)")
	return func() { stop(); hs.Close(); <-done }, nil
}
