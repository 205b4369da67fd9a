package server

import (
	"context"
	"errors"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/hub"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// softwareWriter stores the software lists agents send (issue 17), one at
// a time, and acknowledges each to its agent. It owns one goroutine,
// stopped by close; links hand it reports through a bounded queue and
// never wait for the database.
type softwareWriter struct {
	store *store.Store
	log   zerolog.Logger
	ch    chan softwareJob
	done  chan struct{}
}

type softwareJob struct {
	agentID string
	hash    string
	pkgs    []store.Package
	ack     func(wire.SoftwareAck)
}

// softwareQueue bounds the reports waiting to be stored; more are refused
// with "relay busy" and sent again by the agent at its next round.
const softwareQueue = 256

func newSoftwareWriter(st *store.Store, log zerolog.Logger) *softwareWriter {
	w := &softwareWriter{store: st, log: log, ch: make(chan softwareJob, softwareQueue), done: make(chan struct{})}
	go w.run()
	return w
}

// close stores what is queued and stops the goroutine. No link may submit
// after close.
func (w *softwareWriter) close() {
	close(w.ch)
	<-w.done
}

// softwareBatch bounds the lists stored in one transaction: what queued
// up while the previous batch was written (store.PutSoftwareBatch).
const softwareBatch = 64

func (w *softwareWriter) run() {
	defer close(w.done)
	for j := range w.ch {
		batch := []softwareJob{j}
	drain:
		for len(batch) < softwareBatch {
			select {
			case j, ok := <-w.ch:
				if !ok {
					break drain
				}
				batch = append(batch, j)
			default:
				break drain
			}
		}
		w.storeBatch(batch)
	}
}

// store_ writes a batch and acknowledges each list.
func (w *softwareWriter) storeBatch(batch []softwareJob) {
	lists := make([]store.SoftwareList, len(batch))
	for i, j := range batch {
		lists[i] = store.SoftwareList{AgentID: j.agentID, Hash: j.hash, Pkgs: j.pkgs}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	counts, err := w.store.PutSoftwareBatch(ctx, lists, time.Now())
	cancel()
	for i, j := range batch {
		if err != nil {
			w.log.Error().Err(err).Str("agent_id", j.agentID).Int("batch", len(batch)).Msg("store software inventory")
			j.ack(wire.SoftwareAck{Hash: j.hash, Error: "relay could not store the list; it is sent again at the next inventory round"})
			continue
		}
		w.log.Debug().Str("agent_id", j.agentID).Int("packages", len(j.pkgs)).Int("changes", counts[i]).Msg("software inventory stored")
		j.ack(wire.SoftwareAck{Hash: j.hash})
	}
}

// softwareReport handles a software message from agent c: a malformed or
// oversized report is refused with an error in the ack (and a warning
// here), leaving the stored list as it was; the link stays up.
func (s *Server) softwareReport(c *agentConn, env wire.Envelope) error {
	ack := func(a wire.SoftwareAck) {
		if err := c.Send(wire.MsgSoftwareAck, a); err != nil && !errors.Is(err, hub.ErrOffline) {
			l := c.log(s)
			l.Debug().Err(err).Msg("software ack not sent")
		}
	}
	var rep wire.SoftwareReport
	err := wire.DecodeBody(env, &rep)
	var pkgs []wire.Package
	if err == nil {
		pkgs, err = wire.DecodeSoftware(rep)
	}
	if err != nil {
		l := c.log(s)
		l.Warn().Err(err).Msg("software inventory refused; stored inventory unchanged")
		if len(rep.Hash) > 64 {
			rep.Hash = ""
		}
		ack(wire.SoftwareAck{Hash: rep.Hash, Error: clipError(err.Error())})
		return nil
	}
	sp := make([]store.Package, len(pkgs))
	for i, p := range pkgs {
		sp[i] = store.Package{Name: p.Name, Version: p.Version, Source: p.Source}
	}
	select {
	case s.software.ch <- softwareJob{agentID: c.id, hash: rep.Hash, pkgs: sp, ack: ack}:
	default:
		ack(wire.SoftwareAck{Hash: rep.Hash, Error: "relay busy storing other inventories; the list is sent again at the next inventory round"})
	}
	return nil
}

func clipError(s string) string {
	if len(s) > 1000 {
		return s[:1000]
	}
	return s
}

// hardwareFromWire converts reported hardware for the store; nil when the
// agent reported none.
func hardwareFromWire(id string, inv wire.Inventory, t time.Time) *store.HardwareReport {
	if inv.Hardware == nil {
		return nil
	}
	h := inv.Hardware
	r := &store.HardwareReport{AgentID: id, BootTime: inv.BootTime, At: t, Hardware: store.Hardware{
		CPUModel: h.CPUModel, CPUCount: h.CPUCount, MemoryBytes: h.MemoryBytes, Vendor: h.Vendor,
		Model: h.Model, Serial: h.Serial, Firmware: h.Firmware,
	}}
	for _, d := range h.Disks {
		r.Hardware.Disks = append(r.Hardware.Disks, store.Disk{Mount: d.Mount, Size: d.Size, Free: d.Free})
	}
	return r
}

// RefreshInventory asks a connected agent to report its inventory now.
func (s *Server) RefreshInventory(_ context.Context, agentID string) error {
	return s.hub.Send(agentID, wire.MsgInventoryRefresh, wire.InventoryRefresh{})
}
