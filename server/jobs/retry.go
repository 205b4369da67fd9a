package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Runs that did not start. An agent that could not download a run's plugin
// from the relay (the relay went away mid-download, or answered with an
// error) ran nothing, forgot the run and says so (wire.MsgRunNotStarted).
// The dispatcher puts the run back among the runs never sent and sends it
// again after a backoff that doubles with every attempt (retryBase up to
// retryMax), or at once when its agent reconnects; the job's concurrency,
// canary and expiry apply as to any run never sent, so a run whose plugin
// can never be fetched ends expired with its job, never failed. Only a run
// that started can end failed.
const (
	retryBase = 2 * time.Second
	retryMax  = time.Minute
)

// retry is a run put back after its agent could not start it.
type retry struct {
	agentID string
	n       int       // times it did not start
	at      time.Time // not sent again before
	waiting bool      // put back and not yet made a candidate
}

// NotStarted queues an agent's report that a run did not start. Called on
// the link's goroutine.
func (d *Dispatcher) NotStarted(agentID string, m wire.RunNotStarted) {
	select {
	case d.reports <- report{agentID: agentID, notStarted: &m}:
	case <-d.stop:
	}
}

// requeue puts runs that did not start back in the store and in memory,
// and returns those it put back. Called by the writer with tx held (not mu).
func (d *Dispatcher) requeue(ctx context.Context, runs []report, now time.Time) []string {
	var back []string
	for _, r := range runs {
		ok, err := d.store.RequeueRun(ctx, r.notStarted.RunID, r.agentID)
		if err != nil {
			// The run stays in flight: it is sent again when the agent
			// reconnects, and the agent, which forgot it, runs it then.
			d.log.Error().Err(err).Str("run_id", r.notStarted.RunID).Msg("put back a run that did not start")
			continue
		}
		if !ok {
			continue // final, or already put back
		}
		back = append(back, r.notStarted.RunID)
		d.mu.Lock()
		js := d.runs[r.notStarted.RunID]
		attempt := 0
		if js != nil {
			d.requeued(js, r.notStarted.RunID, now)
			attempt = js.retries[r.notStarted.RunID].n
		} // else not tracked here as in flight: memory already counts it never sent
		d.mu.Unlock()
		d.log.Info().Str("run_id", r.notStarted.RunID).Str("agent_id", r.agentID).Str("error", r.notStarted.Error).
			Int("attempt", attempt).Msg("run did not start; it is sent again")
	}
	return back
}

// requeued records that the store put a run in flight back among the runs
// never sent. Called with mu held.
func (d *Dispatcher) requeued(js *jobState, runID string, now time.Time) {
	f := js.inFlight[runID]
	if f.state == store.RunRunning {
		js.move(store.RunRunning, store.RunPending)
	}
	delete(js.inFlight, runID)
	delete(d.runs, runID)
	js.undispatched++
	if f.seq <= js.cursor {
		js.behind++ // as a run passed while its agent was offline, until it is a candidate
	}
	if js.retries == nil {
		js.retries = map[string]*retry{}
	}
	rt := js.retries[runID]
	if rt == nil {
		rt = &retry{agentID: f.agentID}
		js.retries[runID] = rt
	}
	rt.n++
	rt.at = now.Add(min(retryBase<<min(rt.n-1, 10), retryMax))
	rt.waiting = true
	d.changed(js.id)
}

// retryDue makes the runs put back whose backoff has passed candidates of
// the next walk, if their agent is online (an agent that comes back gets
// its runs never sent as candidates anyway). It reports whether it added
// any. Called by the scheduler.
func (d *Dispatcher) retryDue(ctx context.Context) bool {
	now := d.now()
	due := map[string]map[string]*jobState{} // agent -> run -> job
	d.mu.Lock()
	for _, js := range d.jobs {
		if js.job.State != store.JobRunning {
			continue
		}
		for id, rt := range js.retries {
			if rt.waiting && !now.Before(rt.at) && d.links.Online(rt.agentID) {
				rt.waiting = false
				if due[rt.agentID] == nil {
					due[rt.agentID] = map[string]*jobState{}
				}
				due[rt.agentID][id] = js
			}
		}
	}
	d.mu.Unlock()
	added := false
	for agentID, runs := range due {
		open, err := d.store.AgentOpenRuns(ctx, agentID)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				d.log.Error().Err(err).Str("agent_id", agentID).Msg("runs to send again")
			}
			d.mu.Lock()
			for id, js := range runs {
				if rt := js.retries[id]; rt != nil {
					rt.waiting = true // next tick
				}
			}
			d.mu.Unlock()
			continue
		}
		d.mu.Lock()
		for _, r := range open {
			js := runs[r.ID]
			if js == nil || d.jobs[js.id] != js || r.State != store.RunPending || !r.DispatchedAt.IsZero() {
				continue
			}
			js.candidates[r.ID] = r
			added = true
		}
		d.mu.Unlock()
	}
	return added
}
