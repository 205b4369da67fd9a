// Package server is the Patchbay relay: it terminates agent links (mutual TLS
// websockets, one blocking Accept per link), serves the technician REST API
// and enrollment, and wires the hub, store and bus together.
//
// Ownership: New opens the store and starts the batch writer; Serve owns the
// listener, the HTTP server and every link it accepts, and returns only after
// all of them have ended; Close releases what New opened.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/patchbay/patchbay/certs"
	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/server/access"
	"github.com/patchbay/patchbay/server/alerts"
	"github.com/patchbay/patchbay/server/api"
	"github.com/patchbay/patchbay/server/auditfwd"
	"github.com/patchbay/patchbay/server/authlimit"
	"github.com/patchbay/patchbay/server/console"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/jobs"
	"github.com/patchbay/patchbay/server/metrics"
	"github.com/patchbay/patchbay/server/releases"
	"github.com/patchbay/patchbay/server/schedule"
	"github.com/patchbay/patchbay/server/sessions"
	"github.com/patchbay/patchbay/server/sso"
	"github.com/patchbay/patchbay/server/store"
	"github.com/patchbay/patchbay/server/tiersecrets"
	"github.com/rs/zerolog"
)

// Config configures a relay. The zero value (plus DataDir) works.
type Config struct {
	DataDir   string        // CA, certificates and the SQLite database; created 0700 on first run
	DBURL     string        // default: sqlite database DataDir/patchbay.db
	Hostnames []string      // names and IPs in the server certificate; default certs.DefaultHosts()
	Heartbeat time.Duration // how often agents ping; a link silent for 3 heartbeats is dropped. Default 25s.
	Version   string        // reported by /healthz
	// ReconnectRate is how many agents per second this relay expects to take
	// back after a restart (TLS handshakes dominate). Agents are told to spread
	// their reconnects over fleet/ReconnectRate seconds (1s..60s), where fleet
	// is the larger of the agents online and the agents seen or enrolled in
	// the week before the relay started. Default 1500.
	ReconnectRate int
	// AllowEmptyReason lets technicians open sessions without a reason.
	AllowEmptyReason bool
	// ConsoleIdleTimeout ends a web console session unused this long
	// (default console.DefaultIdleTimeout).
	ConsoleIdleTimeout time.Duration
	// Syslog, when its URL is set, forwards every audit record to a syslog
	// receiver (server/auditfwd).
	Syslog auditfwd.Target
	// NATS joins a tier of relays sharing one PostgreSQL (DBURL): a NATS
	// URL (nats://HOST:PORT, tls://HOST:PORT; TLS outside loopback), or
	// NATSEmbedded to run a nats-server in this relay (on NATSListen,
	// default 127.0.0.1:4222). Empty: a relay alone, in-process bus.
	NATS       string
	NATSCreds  string // NATS .creds file, or a "user:password" file
	NATSCA     string // PEM CA of the NATS server's certificate
	NATSListen string // the embedded server's loopback address
	// TierKeyFile, required with a PostgreSQL DBURL, holds the key that
	// seals the tier's CA, SSH CAs and TLS ticket key in the database
	// (server/tiersecrets): every relay of the tier is given a copy.
	TierKeyFile string
	// TierURL is where the other relays of the tier reach this one
	// (https://HOST:PORT, HOST covered by Hostnames), to forward sessions
	// for the agents it holds; required with NATS (DefaultTierURL).
	TierURL string
	// Releases is a directory of the organisation's signed releases
	// (internal/release layout: DIR/<version>/SHA256SUMS, ...) served at
	// /releases/ for installers and agent self-updates. Empty: none.
	Releases string

	// AlertOfflineAfter opens an agent_offline alert for an agent offline
	// longer than this (0: never; server/alerts).
	AlertOfflineAfter time.Duration

	// SSO turns on single sign-on with an OpenID provider (nil: off).
	SSO    *sso.Config
	Logger zerolog.Logger
}

// Defaults for Config fields left zero.
const (
	DefaultHeartbeat     = 25 * time.Second
	DefaultReconnectRate = 1500
)

// activeFleetAge is how recently an agent must have been seen (or enrolled)
// to count in the fleet a relay expects back after a restart.
const activeFleetAge = 7 * 24 * time.Hour

// reconnectWindow is how long agents should spread a mass reconnect over:
// online/rate seconds, at least 1s, at most 60s. The fleet size, not the
// agents online so far, is what counts: an agent that connected early in a
// cold start and was told a short window would otherwise come back at once
// after the next restart, together with every other early agent.
func reconnectWindow(online, rate int) time.Duration {
	w := time.Duration(online) * time.Second / time.Duration(max(rate, 1))
	return min(max(w, time.Second), time.Minute)
}

// Server is a relay node.
type Server struct {
	cfg   Config
	log   zerolog.Logger
	store *store.Store
	ca    *certs.CA
	cert  tls.Certificate
	hub   *hub.Hub
	api   *api.API
	seen  *seenWriter
	// software stores the software lists agents send (inventory.go).
	software *softwareWriter
	jobs     *jobs.Dispatcher
	// schedules fires scheduled jobs (server/schedule).
	schedules *schedule.Runner
	// checks sends agents their policies and stores check results (checks.go).
	checks *checkRelay
	// stopPolicies stops hearing the tier's policy changes (tierpolicies.go).
	stopPolicies func()
	// sessions brokers interactive sessions; ssh is the SSH user and host CA.
	sessions *sessions.Broker
	ssh      *certs.SSHCAs
	// access ends what revoked API tokens opened, on every node (bus).
	access *access.Ender
	// console serves the web console at / (same listener, same API).
	console *console.Console
	// ticketKey encrypts TLS session tickets. It is kept in the data directory
	// so that agents resume their sessions across a relay restart: a mass
	// reconnect then costs no certificate signatures.
	ticketKey [32]byte
	// fleet is the number of agents seen or enrolled in the week before
	// start; set by New, read-only after.
	fleet int
	links linkGroup // goroutines running Accept
	// health caches what /healthz found (health.go).
	health health
	// limiter counts failed sign-ins (API, console); authAudit writes its
	// counts to the audit log once a minute (authaudit.go).
	limiter   *authlimit.Limiter
	authAudit authAuditor
	// auditFwd forwards the audit log to syslog; nil without --syslog.
	auditFwd *auditfwd.Forwarder
	// tier is the bus and the presence of agents (tier.go).
	tier *tier
	// forward forwards sessions to the relay of the tier that holds the
	// agent (tierforward.go); nil without NATS.
	forward *sessionForwarder
	// metrics is what /metrics serves (server/metrics).
	metrics *metrics.Metrics
	// alerts raises alerts and delivers them to the alert routes.
	alerts *alerts.Service
}

// New initialises the data directory on first run (CA, server certificate,
// database) and opens everything a relay needs.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server: a data directory is required")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.ReconnectRate <= 0 {
		cfg.ReconnectRate = DefaultReconnectRate
	}
	if len(cfg.Hostnames) == 0 {
		cfg.Hostnames = certs.DefaultHosts()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	st, err := OpenStore(ctx, cfg.DataDir, cfg.DBURL)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	st.ObserveTx(m.StoreTx)
	// A relay of a tier takes the tier's CA from the database (tierkey.go).
	tierKey, err := syncTierSecrets(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	// The secrets the database keeps are sealed at rest (secretskey.go).
	if err := sealStoreSecrets(ctx, cfg, st, tierKey); err != nil {
		st.Close()
		return nil, err
	}
	ca, err := certs.LoadOrCreateCA(cfg.DataDir)
	if err != nil {
		st.Close()
		return nil, err
	}
	cert, err := certs.LoadOrCreateServerCert(cfg.DataDir, ca, cfg.Hostnames)
	if err != nil {
		st.Close()
		return nil, err
	}
	ticketKey, err := loadOrCreateTicketKey(filepath.Join(cfg.DataDir, ticketKeyFile))
	if err != nil {
		st.Close()
		return nil, err
	}
	revoked, err := st.RevokedAgentIDs(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	tr, err := openTier(ctx, cfg, cfg.Logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Relays on one PostgreSQL form a tier, or one relay has it alone
	// (store/relaylock.go): a relay without --nats beside a tier would
	// run the tier's jobs a second time.
	dbLock, err := st.LockRelay(ctx, tr.nats != nil, func(err error) {
		cfg.Logger.Error().Err(err).Msg("the database lock was lost with its connection and is taken by other relays: stop this relay or those")
	})
	if err != nil {
		tr.close()
		st.Close()
		return nil, fmt.Errorf("start the relay: %w", err)
	}
	tr.dbLock = dbLock
	if tr.nats != nil {
		tr.bus = timedBus{Bus: tr.bus, observe: m.BusPublish}
	}
	relayBus := tr.bus
	h, err := hub.New(relayBus, revoked, hub.WithLog(cfg.Logger.With().Str("component", "hub").Logger()),
		hub.WithPresence(tr.connected, tr.disconnected))
	if err != nil {
		tr.close()
		st.Close()
		return nil, err
	}
	if err := tr.startPresence(ctx, h.Online, cfg.Heartbeat, cfg.Logger); err != nil {
		h.Close()
		tr.close()
		st.Close()
		return nil, err
	}
	var forward *sessionForwarder
	if tr.nats != nil {
		err := checkTierURL(cfg.TierURL, cert)
		if err == nil {
			err = tr.startRelays(ctx, cfg.TierURL, cfg.Heartbeat, cfg.Logger)
		}
		if err == nil {
			forward, err = newSessionForwarder(tr.node, ca, tr.presence.Where, tr.relays, cfg.Logger.With().Str("component", "forward").Logger())
		}
		if err != nil {
			h.Close()
			tr.close()
			st.Close()
			return nil, err
		}
	}
	sshCAs, err := certs.LoadOrCreateSSHCAs(cfg.DataDir)
	if err != nil {
		h.Close()
		tr.close()
		st.Close()
		return nil, err
	}
	fleet, err := st.CountActiveAgents(ctx, time.Now().Add(-activeFleetAge))
	if err != nil {
		h.Close()
		tr.close()
		st.Close()
		return nil, err
	}
	// No session survives a relay restart: close what the last run left open.
	if n, err := st.EndOpenSessions(ctx, tr.relayID, "the relay restarted", time.Now()); err != nil {
		h.Close()
		tr.close()
		st.Close()
		return nil, err
	} else if n > 0 {
		cfg.Logger.Info().Int("sessions", n).Msg("ended sessions left open by the previous relay run")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, ca: ca, cert: cert, hub: h, ticketKey: ticketKey, ssh: sshCAs, fleet: fleet, tier: tr, forward: forward, metrics: m}
	if cfg.Syslog.URL != "" {
		if s.auditFwd, err = auditfwd.New(auditfwd.Config{Target: cfg.Syslog, Store: st, Version: cfg.Version, Log: s.log}); err != nil {
			tr.close()
			st.Close()
			return nil, err
		}
	}
	s.limiter = authlimit.New(authlimit.Config{})
	s.api = &api.API{Store: st, Hub: tierHub{Hub: h, tier: tr}, CA: ca, Log: s.log, Version: cfg.Version, AllowEmptyReason: cfg.AllowEmptyReason, Limiter: s.limiter,
		Releases: releases.Dir{Root: cfg.Releases}}
	ccfg := console.Config{Store: st, Audit: s.api.Audit, Online: tr.online, IdleTimeout: cfg.ConsoleIdleTimeout,
		Limiter: s.limiter, Password: s.api, Log: s.log.With().Str("component", "console").Logger()}
	if cfg.SSO != nil {
		p, err := sso.New(*cfg.SSO, s.log.With().Str("component", "sso").Logger())
		if err != nil {
			tr.close()
			st.Close()
			return nil, err
		}
		// Discovery now reports a wrong issuer or CA at once; a provider that
		// is down is tried again at each sign-in.
		if err := p.Discover(ctx); err != nil {
			s.log.Warn().Err(err).Msg("single sign-on: the identity provider is not reachable yet; sign-ins will try again")
		}
		s.api.SSO, ccfg.SSO, ccfg.SSOLogin = p, p, s.api
	}
	s.console = console.New(ccfg)
	s.api.Browser = s.console
	s.seen = newSeenWriter(st, s.log, s.console.Events().Changed)
	s.software = newSoftwareWriter(st, s.log.With().Str("component", "inventory").Logger())
	s.api.Refresh = s.RefreshInventory
	s.jobs = jobs.New(st, tr.links(h), s.api.Audit, ca.Cert, s.log.With().Str("component", "jobs").Logger())
	if err := tr.joinJobs(h, s.jobs, s.log.With().Str("component", "jobs").Logger()); err != nil {
		h.Close()
		tr.close()
		st.Close()
		return nil, err
	}
	s.api.Jobs = s.jobs
	s.checks = newCheckRelay(st, s.api, h.Send, h.Online, s.log.With().Str("component", "checks").Logger())
	s.api.Policies = policyAnnouncer{bus: relayBus, checks: s.checks, log: s.checks.log}
	if s.stopPolicies, err = s.checks.joinPolicies(relayBus); err != nil {
		h.Close()
		tr.close()
		st.Close()
		return nil, err
	}
	s.api.CheckedAt = s.CheckedAt
	s.jobs.SetMetrics(m)
	s.alerts = alerts.New(alerts.Config{Store: st, Log: s.log.With().Str("component", "alerts").Logger(),
		Online: tr.online, OfflineAfter: cfg.AlertOfflineAfter})
	s.jobs.SetHaltAlerter(s.alerts)
	s.jobs.SetResultSink(updateSink{st: st, log: s.log.With().Str("component", "updates").Logger()})
	s.jobs.SetRebootCapable(s.checks.takesRunReboot)
	s.checks.sink = checkAlerts{alerts: s.alerts, log: s.log.With().Str("component", "alerts").Logger()}
	s.api.Alerts = s.alerts
	m.SetGauges(metrics.Gauges{AgentsOnline: h.Count, JobsActive: s.jobs.OpenJobs})
	s.sessions = sessions.New(sessions.Config{
		Store: st, Links: h, CA: ca.Cert, Log: s.log.With().Str("component", "sessions").Logger(),
		RecordingsDir: filepath.Join(cfg.DataDir, "recordings"), Node: tr.relayID, Metrics: m,
	})
	s.api.Sessions = s.sessions
	if forward != nil {
		s.api.Forward = forward
	}
	s.api.SSH = sshCAs
	s.access, err = access.New(ctx, access.Config{Store: st, Bus: relayBus, Agents: h, Sessions: s.sessions,
		Log: s.log.With().Str("component", "access").Logger()})
	if err != nil {
		h.Close()
		tr.close()
		st.Close()
		return nil, err
	}
	s.api.Access = s.access
	resync := func() {
		s.resyncRevocations()
		s.checks.resyncPolicies()
	}
	tr.resync.Store(&resync)
	s.jobs.Start()
	s.alerts.Start()
	s.schedules = schedule.NewRunner(st, s.api, s.log.With().Str("component", "schedules").Logger())
	s.schedules.Start()
	s.startAuthAudit()
	if s.auditFwd != nil {
		s.auditFwd.Start()
	}
	return s, nil
}

// ticketKeyFile holds the TLS session ticket key (0600).
const ticketKeyFile = tiersecrets.TicketKeyFile

// loadOrCreateTicketKey reads the 32-byte session ticket key, creating it on
// first run. Rotating it (deleting the file) only costs agents one full handshake.
func loadOrCreateTicketKey(path string) ([32]byte, error) {
	var key [32]byte
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(b) == len(key):
		copy(key[:], b)
		return key, nil
	case err == nil:
		return key, fmt.Errorf("session ticket key %s: %d bytes, want %d; delete it to create a new one", path, len(b), len(key))
	case !errors.Is(err, os.ErrNotExist):
		return key, fmt.Errorf("read session ticket key: %w", err)
	}
	if _, err := rand.Read(key[:]); err != nil {
		return key, err
	}
	return key, atomicfile.WriteSecret(path, key[:])
}

// OpenStore opens the relay's database: dbURL if set, else the SQLite file
// in dataDir.
func OpenStore(ctx context.Context, dataDir, dbURL string) (*store.Store, error) {
	if dbURL == "" {
		dbURL = filepath.Join(dataDir, "patchbay.db")
	}
	return store.Open(ctx, dbURL)
}

// handler returns the relay's HTTP routes. Agent links accepted through it
// run until linkCtx ends; the console's event streams until streams ends.
func (s *Server) handler(linkCtx, streams context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agent/connect", func(w http.ResponseWriter, r *http.Request) {
		s.handleAgentConnect(linkCtx, w, r)
	})
	mux.HandleFunc("GET /healthz", s.handleHealth)
	releases.Dir{Root: s.cfg.Releases}.Register(mux)
	mux.Handle("GET /metrics", s.api.AdminOnly(s.metrics.Handler()))
	releases.RegisterInstall(mux)
	s.api.Register(mux)
	s.api.RegisterStreams(mux, streams)
	s.console.Register(mux, streams)
	return mux
}

// Serve accepts HTTPS on ln until ctx ends, then stops accepting, closes every
// agent link and returns once they have all ended.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	linkCtx, cancelLinks := context.WithCancel(ctx)
	defer cancelLinks()
	s.links.open()
	tlsCfg := s.ca.ServerTLSConfig(s.cert)
	tlsCfg.VerifyConnection = s.verifyConnection
	tlsCfg.SetSessionTicketKeys([][32]byte{s.ticketKey})
	// Console event streams end when shutdown begins, not after it: an open
	// stream would otherwise hold Shutdown for its whole timeout.
	streams, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	hs := &http.Server{
		Handler:           s.handler(linkCtx, streams),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          newStdLogger(s.log),
		BaseContext:       func(net.Listener) context.Context { return linkCtx },
	}
	hs.RegisterOnShutdown(stopStreams)
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	s.log.Info().Str("addr", ln.Addr().String()).Str("ca_fingerprint", s.ca.Fingerprint()).Msg("relay listening")
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.sessions.Close() // hijacked session connections are not closed by Shutdown
	hs.Shutdown(shutCtx)
	if s.forward != nil {
		s.forward.endAll() // hijacked too; no new request comes after Shutdown
	}
	cancelLinks()
	s.links.wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close flushes pending writes and closes the store. Call it after Serve
// has returned.
func (s *Server) Close() error {
	s.tier.resync.Store(nil)
	s.stopPolicies()
	s.stopAuthAudit()
	s.schedules.Close()
	s.jobs.Close()
	s.alerts.Close()
	s.seen.close()
	s.software.close()
	s.access.Close()
	s.hub.Close()
	s.tier.close()
	if s.auditFwd != nil {
		s.auditFwd.Close()
	}
	return s.store.Close()
}

// linkGroup tracks the goroutines running Accept for one Serve call.
type linkGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *linkGroup) open() {
	g.mu.Lock()
	g.closed = false
	g.mu.Unlock()
}

// start reserves a slot for one link; false once Serve is shutting down.
func (g *linkGroup) start() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *linkGroup) done() { g.wg.Done() }

func (g *linkGroup) wait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
