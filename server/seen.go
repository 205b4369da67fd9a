package server

import (
	"context"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
	"github.com/rs/zerolog"
)

// seenWriter batches what links report (inventory on connect, last-seen on
// disconnect) into few transactions, so that 19,000 agents reconnecting after
// a relay restart cost tens of writes, not 19,000. It owns one goroutine,
// stopped by close.
type seenWriter struct {
	store *store.Store
	log   zerolog.Logger
	// changed is told which agents a batch concerned once it is stored
	// (the web console's live fleet view); nil: nobody listens.
	changed func(ids []string)
	ch      chan seenEvent
	done    chan struct{}
}

type seenEvent struct {
	inv     store.Inventory       // set for a connect or an inventory update
	hw      *store.HardwareReport // with inv, when the agent reported hardware
	offline string                // agent ID, for a disconnect
	t       time.Time
}

const (
	seenBatch = 1000
	seenDelay = 100 * time.Millisecond
)

func newSeenWriter(st *store.Store, log zerolog.Logger, changed func(ids []string)) *seenWriter {
	w := &seenWriter{store: st, log: log, changed: changed, ch: make(chan seenEvent, 4*seenBatch), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *seenWriter) inventory(id string, inv wire.Inventory, t time.Time) {
	w.ch <- seenEvent{inv: inventoryFromWire(id, inv, t), hw: hardwareFromWire(id, inv, t), t: t}
}

func (w *seenWriter) offline(id string, t time.Time) { w.ch <- seenEvent{offline: id, t: t} }

// close writes what is queued and stops the goroutine. No link may report
// after close.
func (w *seenWriter) close() {
	close(w.ch)
	<-w.done
}

func (w *seenWriter) run() {
	defer close(w.done)
	var invs []store.Inventory
	var hws []store.HardwareReport
	offline := map[time.Time][]string{}
	n := 0
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if len(invs) > 0 {
			if err := w.store.UpdateInventories(ctx, invs); err != nil {
				w.log.Error().Err(err).Int("agents", len(invs)).Msg("store agent inventories")
			}
		}
		if len(hws) > 0 {
			if err := w.store.PutHardware(ctx, hws); err != nil {
				w.log.Error().Err(err).Int("agents", len(hws)).Msg("store agent hardware")
			}
		}
		for t, ids := range offline {
			if err := w.store.TouchLastSeen(ctx, ids, t); err != nil {
				w.log.Error().Err(err).Int("agents", len(ids)).Msg("store last-seen times")
			}
		}
		if w.changed != nil {
			ids := make([]string, 0, n)
			for _, inv := range invs {
				ids = append(ids, inv.AgentID)
			}
			for _, l := range offline {
				ids = append(ids, l...)
			}
			w.changed(ids)
		}
		invs, hws, offline, n = invs[:0], hws[:0], map[time.Time][]string{}, 0
	}
	for {
		ev, ok := <-w.ch
		if !ok {
			return
		}
		deadline := time.NewTimer(seenDelay)
	batch:
		for {
			if ev.offline != "" {
				t := ev.t.Truncate(time.Second)
				offline[t] = append(offline[t], ev.offline)
			} else {
				invs = append(invs, ev.inv)
				if ev.hw != nil {
					hws = append(hws, *ev.hw)
				}
			}
			n++
			if n >= seenBatch {
				break
			}
			select {
			case ev, ok = <-w.ch:
				if !ok {
					deadline.Stop()
					flush()
					return
				}
			case <-deadline.C:
				break batch
			}
		}
		deadline.Stop()
		flush()
	}
}
