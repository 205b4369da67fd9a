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
		clear(batch)
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

// commit stores a batch of reports and applies what changed to the jobs in
// memory (both under tx), then acknowledges the results.
func (d *Dispatcher) commit(batch []report) {
	var started []store.Started
	var consents []consentReport                   // results that carry a consent decision (few)
	var notStarted []report                        // runs that did not start (few)
	results := make([]store.Result, 0, len(batch)) // nearly every report is a result
	var sent []*wire.RunResult                     // what each result came as (for the sink)
	for _, r := range batch {
		if r.notStarted != nil {
			notStarted = append(notStarted, r)
		}
		if m := r.started; m != nil {
			started = append(started, store.Started{RunID: m.RunID, AgentID: r.agentID, At: m.Started})
		}
		if m := r.result; m != nil {
			run := store.Run{
				ID: m.RunID, State: m.State, Needed: m.Needed, Changed: m.Changed, RebootRequired: m.RebootRequired,
				Summary: m.Summary, Error: m.Error, Details: m.Details, Output: m.Output, Signer: m.Signer,
				Version: m.Version, StartedAt: m.Started, EndedAt: m.Ended,
			}
			if m.Consent != nil {
				run.Consent = consentJSON(*m.Consent)
				consents = append(consents, consentReport{index: len(results), agentID: r.agentID, result: m})
			}
			results = append(results, store.Result{AgentID: r.agentID, Run: run})
			sent = append(sent, m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.tx.Lock()
	startedOK, resultOK, err := d.store.SaveReports(ctx, started, results)
	if err != nil {
		d.tx.Unlock()
		// Not acknowledged: the agents keep their results and send them again.
		d.log.Error().Err(err).Int("results", len(results)).Msg("store run results")
		return
	}
	d.mu.Lock()
	for i := range consents {
		if js := d.runs[consents[i].result.RunID]; js != nil {
			consents[i].jobID = js.id
		}
	}
	var plugins []string // of each result, for the sink
	if d.sink != nil {
		plugins = make([]string, len(results))
		for i, r := range results {
			if js := d.runs[r.Run.ID]; js != nil && resultOK[i] {
				plugins[i] = js.job.Plugin
			}
		}
	}
	d.mu.Unlock()
	changed := d.apply(ctx, started, startedOK, results, resultOK)
	var requeued []string
	if len(notStarted) > 0 {
		requeued = d.requeue(ctx, notStarted, d.now())
		changed = changed || len(requeued) > 0
	}
	d.tx.Unlock()
	if d.tier != nil {
		d.publishRuns(started, startedOK, results, resultOK, requeued)
	}
	// Each consent decision is audited once, when its result is stored, and
	// before the result is acknowledged.
	for _, c := range consents {
		if resultOK[c.index] {
			d.auditConsent(ctx, c)
		}
	}
	for _, r := range results {
		_ = d.links.Send(r.AgentID, wire.MsgRunAck, wire.RunAck{RunID: r.Run.ID})
	}
	for i, p := range plugins {
		if p != "" {
			d.sink.RunStored(p, results[i].AgentID, *sent[i])
		}
	}
	if changed {
		d.Wake()
	}
}

// apply moves the runs that the store changed in memory. A run that
// changed but is not in flight was never recorded as sent (an earlier relay
// process sent it and stopped before recording that): its job and seq are
// read from the store. Called with tx held (not mu); it reports whether
// anything changed.
func (d *Dispatcher) apply(ctx context.Context, started []store.Started, startedOK []bool, results []store.Result, resultOK []bool) bool {
	var unknown []string
	d.mu.Lock()
	changed := false
	for i, s := range started {
		if startedOK[i] {
			changed = true
			if d.runs[s.RunID] == nil {
				unknown = append(unknown, s.RunID)
			}
		}
	}
	for i, r := range results {
		if resultOK[i] {
			changed = true
			if d.runs[r.Run.ID] == nil {
				unknown = append(unknown, r.Run.ID)
			}
		}
	}
	d.mu.Unlock()
	if d.tier != nil {
		// In a tier a run not in flight here belongs to a job another
		// relay holds (or this relay's resync catches it up): no lookup.
		unknown = nil
	}
	var refs map[string]store.RunRef
	if len(unknown) > 0 {
		var err error
		refs, err = d.store.RunRefs(ctx, unknown)
		if err != nil {
			d.mu.Lock()
			d.forgetAll(err) // memory no longer matches the store
			d.mu.Unlock()
			return true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, s := range started {
		if !startedOK[i] {
			continue
		}
		if js := d.runs[s.RunID]; js != nil {
			d.started(js, s.RunID, s.AgentID, 0)
		} else if ref, ok := refs[s.RunID]; ok && d.jobs[ref.JobID] != nil {
			d.started(d.jobs[ref.JobID], s.RunID, s.AgentID, ref.Seq)
		}
	}
	for i, r := range results {
		if !resultOK[i] {
			continue
		}
		if js := d.runs[r.Run.ID]; js != nil {
			d.finished(js, r.Run.ID, r.Run.State, 0)
		} else if ref, ok := refs[r.Run.ID]; ok && d.jobs[ref.JobID] != nil {
			d.finished(d.jobs[ref.JobID], r.Run.ID, r.Run.State, ref.Seq)
		}
	}
	return changed
}
