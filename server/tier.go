package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/server/bus"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/presence"
	"github.com/patchbay/patchbay/server/store"
)

// NATSEmbedded as Config.NATS runs a nats-server inside this relay.
const NATSEmbedded = "embedded"

// tier is what joins this relay to the others of its tier: the bus, the
// presence of agents and, with --nats embedded, the NATS server itself.
// A relay without NATS is a tier of one: bus.Local and presence.Local.
//
// Ownership: openTier starts the embedded server and the connection;
// startPresence starts presence.KV's goroutines; close stops them all, in
// reverse order.
type tier struct {
	node     string  // this relay's ID in the tier
	relayID  string  // this relay's ID across restarts (relayIDFile); "" for a relay alone
	bus      hub.Bus // bus.Local or *bus.NATS
	nats     *bus.NATS
	embedded *bus.Embedded
	presence interface {
		Online(id string) bool
		Where(id string) (node string, ok bool)
		Connected(id string)
		Disconnected(id string)
		Close()
	}
	// stopJobs stops taking dispatch messages for this relay's agents
	// (tierjobs.go); nil until joinJobs.
	stopJobs func()
	// relays advertises this relay's URL to the tier and finds the
	// others' (nil without NATS).
	relays *presence.Relays
	// dbLock is this relay's hold on a shared database (LockRelay);
	// released last.
	dbLock *store.RelayLock
	// resync, once set, catches up with the revocations published while
	// NATS was unreachable; called after each reconnection.
	resync atomic.Pointer[func()]
}

// openTier opens the bus that cfg asks for.
func openTier(ctx context.Context, cfg Config, log zerolog.Logger) (*tier, error) {
	t := &tier{node: nodeID()}
	if cfg.NATS == "" {
		t.bus = &bus.Local{}
		return t, nil
	}
	if !strings.HasPrefix(cfg.DBURL, "postgres://") && !strings.HasPrefix(cfg.DBURL, "postgresql://") {
		return nil, fmt.Errorf("--nats joins a tier of relays that share one database: give --db postgres://USER@HOST:PORT/DATABASE too " +
			"(with SQLite each relay would have agents and tokens of its own)")
	}
	id, err := loadOrCreateRelayID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	t.relayID = id
	ncfg := bus.NATSConfig{URL: cfg.NATS, CredsFile: cfg.NATSCreds, CAFile: cfg.NATSCA, Name: "patchbay-relay " + t.node,
		Log: log.With().Str("component", "bus").Logger(),
		OnReconnect: func() {
			if f := t.resync.Load(); f != nil {
				(*f)()
			}
		}}
	if cfg.NATS == NATSEmbedded {
		if cfg.NATSCreds != "" || cfg.NATSCA != "" {
			return nil, fmt.Errorf("--nats embedded: --nats-creds and --nats-ca are for a NATS server elsewhere; the embedded one writes its own credentials to %s",
				bus.EmbeddedCredsFile)
		}
		e, err := bus.StartEmbedded(bus.EmbeddedConfig{DataDir: cfg.DataDir, Listen: cfg.NATSListen, Log: log})
		if err != nil {
			return nil, err
		}
		t.embedded = e
		ncfg.URL, ncfg.CredsFile = e.URL, e.CredsFile
		log.Info().Str("nats_url", e.URL).Str("nats_creds", e.CredsFile).
			Msgf("embedded NATS ready: start the other relays of this tier with --db (the same database) --nats %s --nats-creds FILE "+
				"(a copy of %s) and the same --tier-key-file (README: Several relays)", e.URL, e.CredsFile)
	} else if cfg.NATSListen != "" {
		return nil, fmt.Errorf("--nats-listen is for --nats embedded")
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n, err := bus.DialNATS(ctx, ncfg)
	if err != nil {
		t.close()
		return nil, err
	}
	t.nats, t.bus = n, n
	return t, nil
}

// startPresence starts the presence of agents: KV over NATS for a tier,
// else this relay's hub alone.
func (t *tier) startPresence(ctx context.Context, here func(id string) bool, heartbeat time.Duration, log zerolog.Logger) error {
	if t.nats == nil {
		t.presence = presence.Local{Here: here}
		return nil
	}
	p, err := presence.NewKV(ctx, presence.Config{Conn: t.nats.Conn(), Node: t.node, TTL: max(3*heartbeat, presence.MinTTL),
		Here: here, Log: log.With().Str("component", "presence").Logger()})
	if err != nil {
		return err
	}
	t.presence = p
	log.Info().Str("node", t.node).Msg("joined the relay tier: presence, agent revocations and access ends go through NATS")
	return nil
}

// startRelays advertises url as where the other relays reach this one
// (a tier only).
func (t *tier) startRelays(ctx context.Context, url string, heartbeat time.Duration, log zerolog.Logger) error {
	if t.nats == nil {
		return nil
	}
	r, err := presence.NewRelays(ctx, presence.RelaysConfig{Conn: t.nats.Conn(), Node: t.node, URL: url,
		TTL: max(3*heartbeat, presence.MinTTL), Log: log.With().Str("component", "presence").Logger()})
	if err != nil {
		return err
	}
	t.relays = r
	log.Info().Str("node", t.node).Str("tier_url", url).Msg("the other relays of the tier forward sessions for this relay's agents to its tier URL")
	return nil
}

// connected and disconnected are the hub's presence hooks; links arrive
// only after startPresence.
func (t *tier) connected(id string) {
	if t.presence != nil {
		t.presence.Connected(id)
	}
}

func (t *tier) disconnected(id string) {
	if t.presence != nil {
		t.presence.Disconnected(id)
	}
}

// online reports whether the agent is connected to any relay of the tier.
func (t *tier) online(id string) bool { return t.presence.Online(id) }

func (t *tier) close() {
	t.resync.Store(nil)
	if t.stopJobs != nil {
		t.stopJobs()
	}
	if t.relays != nil {
		t.relays.Close()
	}
	if t.presence != nil {
		t.presence.Close()
	}
	if t.nats != nil {
		t.nats.Close()
	}
	if t.embedded != nil {
		t.embedded.Close()
	}
	t.dbLock.Close()
}

// resyncRevocations acts on the agent and access revocations stored while
// this relay could not hear the bus (their messages are lost): it closes
// the revoked agents' links here and ends the revoked tokens' access.
func (s *Server) resyncRevocations() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, err := s.store.RevokedAgentIDs(ctx)
	if err != nil {
		s.log.Error().Err(err).Msg("catch up with revocations after a NATS outage: the next reconnection tries again")
		return
	}
	agents := 0
	for _, id := range ids {
		if !s.hub.IsRevoked(id) {
			s.hub.RevokeHere(id)
			agents++
		}
	}
	certs, err := s.access.Resync(ctx)
	if err != nil {
		s.log.Error().Err(err).Msg("catch up with revocations after a NATS outage: the next reconnection tries again")
	}
	if agents > 0 || certs > 0 {
		s.log.Info().Int("agents", agents).Int("ssh_certificates", certs).Msg("caught up with revocations made while NATS was unreachable")
	}
}

// relayIDFile holds a relay's ID across restarts (its sessions are marked
// with it: a restarted relay ends the ones it left open, and no others).
const relayIDFile = "relay-id"

// loadOrCreateRelayID reads the relay's ID from its data directory, making
// one on first start.
func loadOrCreateRelayID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, relayIDFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read the relay ID: %w (delete %s to make a new one)", err, path)
	}
	id := nodeID()
	if err := atomicfile.WriteSecret(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("write the relay ID: %w", err)
	}
	return id, nil
}

// nodeID names this relay process in the tier: the host name and a random
// suffix, so that a restarted relay is a new node.
func nodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "relay"
	}
	host = strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, host)
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// tierHub is the hub as the API and the console see it: an agent is online
// when any relay of the tier holds it.
type tierHub struct {
	*hub.Hub
	tier *tier
}

func (h tierHub) Online(id string) bool { return h.tier.online(id) }

// Here reports whether this relay holds the agent (sessions need that).
func (h tierHub) Here(id string) bool { return h.Hub.Online(id) }
