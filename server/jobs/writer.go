package jobs

import (
	"context"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// writer commits agent reports in batches (one transaction per batch of up
// to reportBatch, or every reportDelay) and acknowledges each result only
// after its batch is committed.
func (d *Dispatcher) writer() {
	defer d.wg.Done()
	var batch []report
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		d.commit(batch)
		batch = batch[:0]
	}
	for {
		select {
		case r := <-d.reports:
			if len(batch) == 0 {
				timer.Reset(reportDelay)
			}
			batch = append(batch, r)
			if len(batch) >= reportBatch {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		case <-d.stop:
		drain:
			for {
				select {
				case r := <-d.reports:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			flush()
			return
		}
	}
}

func (d *Dispatcher) commit(batch []report) {
	var started []store.Started
	var results []store.Result
	for _, r := range batch {
		if r.started != nil {
			started = append(started, store.Started{RunID: r.started.RunID, AgentID: r.agentID, At: r.started.Started})
		}
		if m := r.result; m != nil {
			results = append(results, store.Result{AgentID: r.agentID, Run: store.Run{
				ID: m.RunID, State: m.State, Needed: m.Needed, Changed: m.Changed, RebootRequired: m.RebootRequired,
				Summary: m.Summary, Error: m.Error, Details: m.Details, Output: m.Output, Signer: m.Signer,
				Version: m.Version, StartedAt: m.Started, EndedAt: m.Ended,
			}})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changed, err := d.store.SaveReports(ctx, started, results)
	if err != nil {
		// Not acknowledged: the agents keep their results and send them again.
		d.log.Error().Err(err).Int("results", len(results)).Msg("store run results")
		return
	}
	for _, r := range batch {
		if r.result != nil {
			_ = d.links.Send(r.agentID, wire.MsgRunAck, wire.RunAck{RunID: r.result.RunID})
		}
	}
	if len(changed) > 0 {
		d.Wake()
	}
}
