package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// Health checks run by /healthz, at most once per healthEvery (a monitor
// polling every 100 ms costs one small write a second).
const (
	healthEvery   = time.Second
	healthTimeout = 2 * time.Second
	// minFreeDisk is the free space under the data directory below which the
	// relay reports itself degraded: recordings and the audit log need room,
	// and SQLite needs some to commit at all.
	minFreeDisk = 64 << 20
)

// health caches the result of the last check. Owned by the Server.
type health struct {
	mu      sync.Mutex
	checked time.Time
	reasons []string // why the relay is degraded; none when ok
}

// check returns why the relay is degraded (nil when it is healthy),
// running the checks when the cached result is older than healthEvery.
func (s *Server) checkHealth(ctx context.Context) []string {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checked) < healthEvery {
		return h.reasons
	}
	var reasons []string
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	name, _ := os.Hostname()
	err := s.store.ProbeWrite(ctx, name, time.Now())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		// Busy, not broken: during a reconnect storm the write waits its
		// turn behind batched writes. Reporting that as degraded would make
		// a load balancer drop the relay exactly when agents come back.
		s.log.Debug().Err(err).Msg("health: the database write probe timed out (busy)")
	case err != nil:
		reasons = append(reasons, fmt.Sprintf("the database takes no writes (%v): jobs, sessions and the audit log cannot be recorded; free disk space or make the database writable", err))
	}
	if s.cfg.DBURL == "" { // the SQLite file is in the data directory
		if free, err := freeBytes(s.cfg.DataDir); err == nil && free < minFreeDisk {
			reasons = append(reasons, fmt.Sprintf("%d MiB free under %s (below %d MiB): free disk space", free>>20, s.cfg.DataDir, minFreeDisk>>20))
		}
	}
	h.checked, h.reasons = time.Now(), reasons
	if len(reasons) > 0 {
		s.log.Warn().Strs("reasons", reasons).Msg("relay degraded")
	}
	return reasons
}

// handleHealth answers /healthz: 200 "ok", or 503 "degraded" with the
// reasons, for load balancers and monitoring alike.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	reasons := s.checkHealth(r.Context())
	body := map[string]any{
		"status": "ok", "version": s.cfg.Version, "agents_online": s.hub.Count(),
		"ca_fingerprint": s.ca.Fingerprint(),
	}
	if s.auditFwd != nil {
		// Reported, never a reason to be degraded: a load balancer must not
		// drop the relay because the syslog receiver is down. The records
		// wait in the database and are sent when it is back.
		if st, err := s.auditFwd.Status(r.Context()); err == nil {
			body["audit_forward"] = st
		}
	}
	code := http.StatusOK
	if len(reasons) > 0 {
		body["status"], body["reasons"] = "degraded", reasons
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
