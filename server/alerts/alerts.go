// Package alerts owns the relay's alerts: what opens them (failing checks,
// agents offline too long, halted jobs, failed self-heals), their states
// (open -> acknowledged -> resolved), and their delivery to the alert
// routes (webhooks, e-mail).
//
// An alert is deduplicated by (kind, agent, check name): raising one that
// is open or acknowledged again bumps its count and last-seen instead of
// adding another. Clear resolves it when the condition is gone. Every
// change of state is in the audit log (actor "system" for what the relay
// does by itself) and is queued, in the same transaction, for every route
// whose site and minimum severity match (the store's alert_outbox). One
// goroutine per relay drains that outbox (deliver.go): each attempt is
// claimed in the database, so in a tier one relay makes it; a receiver
// that was down gets the notification once it is back (retried with
// jittered exponential backoff until MaxAge), and a relay restart loses
// nothing.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// Alert kinds.
const (
	KindCheck          = "check"           // a check failed (raised by checks and policies)
	KindAgentOffline   = "agent_offline"   // an agent was offline longer than --alert-offline-after
	KindJobHalted      = "job_halted"      // a job halted by its failure gate
	KindSelfHealFailed = "selfheal_failed" // a policy's fix did not make its check pass
)

// SystemActor is the audit actor of what the relay does by itself.
const SystemActor = "system"

// Alert is what Raise takes: Kind, AgentID (empty for alerts about no
// agent), Check (the check's name; the job ID for job_halted), Severity
// (store.SeverityInfo, Warning or Critical; default warning), Summary (one
// line) and Details.
type Alert struct {
	Kind, AgentID, Check string
	Severity             string
	Summary              string
	Details              map[string]string
}

// Key returns what deduplicates a: pass it to Clear.
func (a Alert) Key() store.AlertKey {
	return store.AlertKey{Kind: a.Kind, AgentID: a.AgentID, Check: a.Check}
}

// Config configures a Service.
type Config struct {
	Store *store.Store
	Log   zerolog.Logger
	// Online reports whether an agent is connected to any relay of the
	// tier (nil: the offline watch does not run).
	Online func(id string) bool
	// OfflineAfter is how long an agent may be offline before an
	// agent_offline alert opens (0: never).
	OfflineAfter time.Duration
	// RetryBase and RetryMax bound the backoff between attempts at one
	// notification (default 5s and 10m); MaxAge is how long a
	// notification is retried before it is given up (default 24h).
	RetryBase, RetryMax, MaxAge time.Duration
	// AttemptTimeout bounds one delivery attempt (default 30s).
	AttemptTimeout time.Duration
	// OnAttempt, when set, is told the outcome of every delivery attempt
	// this relay makes (err nil: delivered). For tests and metrics; it
	// must be quick.
	OnAttempt func(d store.Delivery, err error)
}

// Service raises, clears and changes alerts and delivers them. Its
// goroutines (the offline watch, the delivery loop) start with Start and
// stop with Close.
type Service struct {
	cfg    Config
	st     *store.Store
	log    zerolog.Logger
	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service; call Start to run its goroutines.
func New(cfg Config) *Service {
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 30 * time.Second
	}
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Log, wake: make(chan struct{}, 1)}
}

// Start runs the delivery loop and, with OfflineAfter and Online set, the
// offline watch, until Close.
func (s *Service) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.deliverLoop(ctx)
	}()
	if s.cfg.OfflineAfter > 0 && s.cfg.Online != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.offlineLoop(ctx)
		}()
	}
}

// Close stops the goroutines and waits for them.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Raise opens the alert a describes, or bumps the live one with its key
// (count, last-seen, severity, summary, details). Opening is audited as
// "system" and notified.
func (s *Service) Raise(ctx context.Context, a Alert) (store.Alert, error) {
	return s.raise(ctx, a, "")
}

// raise is Raise with the site of an alert about no agent.
func (s *Service) raise(ctx context.Context, a Alert, site string) (store.Alert, error) {
	if err := checkAlert(a); err != nil {
		return store.Alert{}, err
	}
	if a.Severity == "" {
		a.Severity = store.SeverityWarning
	}
	got, opened, err := s.st.RaiseAlert(ctx, store.Alert{Kind: a.Kind, AgentID: a.AgentID, Check: a.Check, Severity: a.Severity,
		Summary: a.Summary, Details: a.Details, SiteID: site}, SystemActor, time.Now())
	if err != nil {
		return store.Alert{}, err
	}
	if opened {
		s.log.Info().Str("alert_id", got.ID).Str("kind", got.Kind).Str("agent_id", got.AgentID).Str("check", got.Check).
			Str("severity", got.Severity).Msg("alert opened")
		s.Wake()
	}
	return got, nil
}

// Clear resolves the live alert with key (its condition cleared), audited
// as "system"; it reports whether there was one.
func (s *Service) Clear(ctx context.Context, key store.AlertKey) (bool, error) {
	ok, err := s.st.ClearAlert(ctx, key, SystemActor, "the condition cleared", time.Now())
	if ok {
		s.log.Info().Str("kind", key.Kind).Str("agent_id", key.AgentID).Str("check", key.Check).Msg("alert resolved by itself")
		s.Wake()
	}
	return ok, err
}

// Resolve is Clear: named for callers that resolve what they raised.
func (s *Service) Resolve(ctx context.Context, key store.AlertKey) (bool, error) {
	return s.Clear(ctx, key)
}

// SetState acknowledges or resolves alert id for a person (actor) whose
// scope reaches it, with note.
func (s *Service) SetState(ctx context.Context, scope store.Scope, id, state, actor, note string) (store.Alert, error) {
	a, err := s.st.SetAlertState(ctx, scope, id, state, actor, note, time.Now())
	if err == nil {
		s.Wake()
	}
	return a, err
}

// RaiseJobHalted opens a job_halted alert for job jobID (the jobs
// dispatcher calls it when a job's failure gate halts it).
// The alert is about the job's site when all its agents are in one, else
// about no site (only callers that reach every site see it).
func (s *Service) RaiseJobHalted(ctx context.Context, jobID, plugin string, failed int) error {
	site := ""
	if sites, err := s.st.JobSites(ctx, jobID); err == nil && len(sites) == 1 {
		site = sites[0]
	}
	_, err := s.raise(ctx, Alert{Kind: KindJobHalted, Check: jobID, Severity: store.SeverityCritical,
		Summary: fmt.Sprintf("job %s (%s) halted after %d failures", jobID, plugin, failed),
		Details: map[string]string{"job": jobID, "plugin": plugin, "failed": fmt.Sprint(failed)}}, site)
	return err
}

// RaiseSelfHealFailed opens a selfheal_failed alert: the fix of a
// policy's check ran on agentID and the check still fails.
func (s *Service) RaiseSelfHealFailed(ctx context.Context, agentID, check, fix, detail string) error {
	_, err := s.Raise(ctx, Alert{Kind: KindSelfHealFailed, AgentID: agentID, Check: check, Severity: store.SeverityWarning,
		Summary: fmt.Sprintf("self-heal %s did not fix check %s", fix, check),
		Details: map[string]string{"fix": fix, "detail": detail}})
	return err
}

func checkAlert(a Alert) error {
	switch a.Kind {
	case KindCheck, KindAgentOffline, KindJobHalted, KindSelfHealFailed:
	case "":
		return errors.New("raise alert: no kind: use check, agent_offline, job_halted or selfheal_failed")
	default:
		return fmt.Errorf("raise alert: unknown kind %q: use check, agent_offline, job_halted or selfheal_failed", a.Kind)
	}
	if a.Severity != "" && store.SeverityRank(a.Severity) == 0 {
		return fmt.Errorf("raise alert: unknown severity %q: use info, warning or critical", a.Severity)
	}
	return nil
}

// Wake makes the delivery loop look at the outbox now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// offlineLoop opens agent_offline alerts for agents no relay holds and
// that were last seen more than OfflineAfter ago, and resolves them once
// the agent is back. It looks every OfflineAfter/4 (1s to 1m).
func (s *Service) offlineLoop(ctx context.Context) {
	every := min(max(s.cfg.OfflineAfter/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.checkOffline(ctx); err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("offline agents: check failed; trying again")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) checkOffline(ctx context.Context) error {
	var live []store.Alert
	for _, state := range []string{store.AlertOpen, store.AlertAcknowledged} {
		l, err := s.st.ListAlerts(ctx, store.Scope{All: true}, store.AlertFilter{Kind: KindAgentOffline, State: state}, 100000)
		if err != nil {
			return err
		}
		live = append(live, l...)
	}
	gone, err := s.st.AgentsSeenBefore(ctx, time.Now().Add(-s.cfg.OfflineAfter))
	if err != nil {
		return err
	}
	offline := make(map[string]store.OfflineAgent, len(gone))
	for _, g := range gone {
		if !s.cfg.Online(g.ID) {
			offline[g.ID] = g
		}
	}
	alerted := map[string]bool{}
	for _, a := range live {
		if _, still := offline[a.AgentID]; still {
			alerted[a.AgentID] = true
			continue
		}
		// Back (online, or seen since), or revoked: the condition cleared.
		if _, err := s.Clear(ctx, a.Key()); err != nil {
			return err
		}
	}
	defer s.log.Debug().Int("offline", len(offline)).Int("alerts_live", len(alerted)).Msg("offline agents checked")
	for _, g := range gone {
		if _, ok := offline[g.ID]; !ok || alerted[g.ID] {
			continue
		}
		if _, err := s.Raise(ctx, Alert{Kind: KindAgentOffline, AgentID: g.ID, Severity: store.SeverityWarning,
			Summary: fmt.Sprintf("agent %s offline since %s", g.Hostname, g.LastSeen.Format(time.RFC3339)),
			Details: map[string]string{"hostname": g.Hostname, "last_seen": g.LastSeen.Format(time.RFC3339)}}); err != nil {
			return err
		}
	}
	return nil
}
