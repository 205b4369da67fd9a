package link

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/patchbay/patchbay/agent/inventory"
	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/rs/zerolog"
)

// DefaultInventoryEvery is how often a Reporter collects the inventory
// when ReporterConfig.Every is zero; each wait is jittered by ±10%.
const DefaultInventoryEvery = 6 * time.Hour

// ReporterConfig configures a Reporter.
type ReporterConfig struct {
	// Send sends a control message on the current link (an error when
	// there is none).
	Send func(typ string, body any) error
	// Inventory returns what a scheduled or requested round reports in an
	// inventory message (hardware, last boot, users...); see
	// CollectInventory. It is clipped with Sanitize.
	Inventory func(ctx context.Context) wire.Inventory
	// Software lists the installed software. Default: inventory's
	// Collector.Software.
	Software func(ctx context.Context) ([]wire.Package, error)
	// StateFile remembers the hash of the last software list the relay
	// acknowledged, so that an agent restart does not send an unchanged
	// list again. Empty: remembered in memory only.
	StateFile string
	// Every is the schedule (default DefaultInventoryEvery).
	Every time.Duration
	Log   zerolog.Logger
}

// Reporter sends the agent's inventory beyond the hello (issue 17): the
// software list when the link comes up, every Every (with the hardware),
// and when the relay asks (inventory_refresh). The software list travels
// only when its hash differs from the last one the relay acknowledged,
// so an unchanged inventory costs one local collection and nothing on the
// link or in the relay's database; a refresh sends it regardless.
//
// Run owns the one goroutine that collects; Connected, Control and
// Refresh only wake it.
type Reporter struct {
	cfg  ReporterConfig
	wake chan struct{}

	mu      sync.Mutex
	connect bool   // a software round is due (link up)
	refresh bool   // a forced full round is due (relay asked)
	acked   string // hash the relay acknowledged last
}

// NewReporter prepares a Reporter; Run starts it.
func NewReporter(cfg ReporterConfig) *Reporter {
	if cfg.Every <= 0 {
		cfg.Every = DefaultInventoryEvery
	}
	if cfg.Software == nil {
		cfg.Software = CollectSoftware
	}
	r := &Reporter{cfg: cfg, wake: make(chan struct{}, 1)}
	if cfg.StateFile != "" {
		if b, err := os.ReadFile(cfg.StateFile); err == nil {
			r.acked = strings.TrimSpace(string(b))
		}
	}
	return r
}

// CollectSoftware lists this machine's software (agent/inventory) for the
// wire.
func CollectSoftware(ctx context.Context) ([]wire.Package, error) {
	var c inventory.Collector
	pkgs, err := c.Software(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Package, len(pkgs))
	for i, p := range pkgs {
		out[i] = wire.Package{Name: p.Name, Version: p.Version, Source: p.Source}
	}
	return out, nil
}

// SanitizePackages clips a package list to what the relay accepts:
// names and versions cut to their limits, invalid entries dropped, sorted,
// distinct, and at most wire.MaxPackages (the first in name order).
func SanitizePackages(p []wire.Package) []wire.Package {
	out := make([]wire.Package, 0, len(p))
	for _, pk := range p {
		pk = wire.Package{Name: clip(pk.Name, wire.MaxPackageName), Version: clip(pk.Version, wire.MaxPackageVersion), Source: pk.Source}
		if wire.ValidPackage(pk) != nil {
			pk.Source = ""
			if wire.ValidPackage(pk) != nil {
				continue
			}
		}
		out = append(out, pk)
	}
	out = wire.SortPackages(out)
	if len(out) > wire.MaxPackages {
		out = out[:wire.MaxPackages]
	}
	return out
}

func (r *Reporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Connected tells the reporter that the link is up: it sends the software
// list if the relay has not acknowledged this one.
func (r *Reporter) Connected() {
	r.mu.Lock()
	r.connect = true
	r.mu.Unlock()
	r.poke()
}

// Refresh asks for a full round now, software sent even when unchanged.
func (r *Reporter) Refresh() {
	r.mu.Lock()
	r.refresh = true
	r.mu.Unlock()
	r.poke()
}

// Control handles the relay's inventory messages (software_ack,
// inventory_refresh); handled is false for any other message.
func (r *Reporter) Control(env wire.Envelope) (handled bool, err error) {
	switch env.Type {
	case wire.MsgInventoryRefresh:
		r.Refresh()
		return true, nil
	case wire.MsgSoftwareAck:
		var a wire.SoftwareAck
		if err := wire.DecodeBody(env, &a); err != nil {
			return true, err
		}
		if a.Error != "" {
			r.cfg.Log.Warn().Str("reason", a.Error).Msg("the relay refused the software inventory; it is sent again at the next round")
			return true, nil
		}
		r.mu.Lock()
		changed := r.acked != a.Hash
		r.acked = a.Hash
		r.mu.Unlock()
		if changed && r.cfg.StateFile != "" {
			if err := atomicfile.Write(r.cfg.StateFile, []byte(a.Hash+"\n"), 0o600); err != nil {
				r.cfg.Log.Warn().Err(err).Msg("remember the acknowledged software inventory: it is sent again after a restart")
			}
		}
		return true, nil
	}
	return false, nil
}

// Acked returns the hash of the last software list the relay acknowledged.
func (r *Reporter) Acked() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acked
}

// Run collects and reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) error {
	timer := time.NewTimer(jitter(r.cfg.Every))
	defer timer.Stop()
	for {
		full, force := false, false
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			full = true
			timer.Reset(jitter(r.cfg.Every))
		case <-r.wake:
		}
		r.mu.Lock()
		if r.refresh {
			full, force = true, true
		}
		r.connect, r.refresh = false, false
		r.mu.Unlock()
		r.round(ctx, full, force)
	}
}

// jitter returns d ± 10%.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// round collects and sends: the inventory when full, the software list
// when it changed or force.
func (r *Reporter) round(ctx context.Context, full, force bool) {
	log := r.cfg.Log
	if full && r.cfg.Inventory != nil {
		if err := r.cfg.Send(wire.MsgInventory, Sanitize(r.cfg.Inventory(ctx))); err != nil {
			log.Debug().Err(err).Msg("inventory not sent")
			return
		}
	}
	pkgs, err := r.cfg.Software(ctx)
	if err != nil {
		log.Debug().Err(err).Msg("software inventory unavailable")
		return
	}
	pkgs = SanitizePackages(pkgs)
	hash := wire.SoftwareHash(pkgs)
	if !force && hash == r.Acked() {
		return
	}
	rep, err := wire.EncodeSoftware(pkgs)
	if err == nil && rep.Validate() != nil {
		err = errors.New("the compressed list exceeds one control message")
	}
	if err != nil {
		log.Warn().Err(err).Int("packages", len(pkgs)).Msg("software inventory not sent")
		return
	}
	if err := r.cfg.Send(wire.MsgSoftware, rep); err != nil {
		log.Debug().Err(err).Msg("software inventory not sent")
		return
	}
	log.Debug().Int("packages", len(pkgs)).Str("hash", hash[:12]).Msg("software inventory sent")
}
