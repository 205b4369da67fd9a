package server

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/server/authlimit"
)

// authFlushEvery is how often failed sign-ins are written to the audit log:
// one auth.failures record per source per period, however many guesses.
const authFlushEvery = time.Minute

// authAuditor writes the Limiter's failure counts to the audit log. Owned
// by the Server: started by New, stopped (after a last flush) by Close.
type authAuditor struct {
	stop chan struct{}
	done chan struct{}
}

func (s *Server) startAuthAudit() {
	s.authAudit = authAuditor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.authAudit.done)
		t := time.NewTicker(authFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.flushAuthFailures()
			case <-s.authAudit.stop:
				s.flushAuthFailures()
				return
			}
		}
	}()
}

func (s *Server) stopAuthAudit() {
	close(s.authAudit.stop)
	<-s.authAudit.done
}

// flushAuthFailures writes one audit record per source that failed since
// the last flush.
func (s *Server) flushAuthFailures() {
	for _, sum := range s.limiter.Flush(time.Now()) {
		if err := s.api.Audit(context.Background(), "unauthenticated from "+sum.Source, "auth.failures", sum.Source, authDetail(sum)); err != nil {
			s.log.Error().Err(err).Str("source", sum.Source).Int("failures", sum.Failures).Msg("audit failed sign-ins")
		}
	}
}

func authDetail(sum authlimit.Summary) map[string]string {
	users := make([]string, 0, len(sum.Users))
	for _, u := range sum.Users {
		if u == "" {
			u = "(token)"
		}
		users = append(users, u)
	}
	return map[string]string{
		"failures": strconv.Itoa(sum.Failures), "throttled": strconv.Itoa(sum.Throttled),
		"users": strings.Join(users, ","), "first": sum.First.UTC().Format(time.RFC3339),
		"last": sum.Last.UTC().Format(time.RFC3339),
	}
}
