package jobs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// step applies a job's rules once: expiry, end, failure threshold, canary
// wave and concurrency, then sends the runs that may start. It reads the
// job's state from memory; the store is read only for runs to send.
func (d *Dispatcher) step(ctx context.Context, js *jobState, scan bool) error {
	now := d.now().UTC()
	d.tx.Lock()
	before, send, err := d.rules(ctx, js, scan, now)
	d.tx.Unlock()
	if err != nil || !send {
		return err
	}
	return d.dispatch(ctx, js, before)
}

// rules applies a job's rules and reports whether runs may be sent, and
// below which seq (0: any). Called with tx held: the fields that only
// writers change are read without mu, and every change is made under mu.
func (d *Dispatcher) rules(ctx context.Context, js *jobState, scan bool, now time.Time) (int, bool, error) {
	d.mu.Lock()
	tracked := d.jobs[js.id] == js
	d.mu.Unlock()
	if !tracked {
		return 0, false, nil // ended, or dropped for a reload
	}
	j := js.job
	// After expiry a run can still come back never sent (its agent could
	// not start it: retry.go): it expires too.
	if (!js.expired || js.undispatched > 0) && !j.ExpiresAt.IsZero() && now.After(j.ExpiresAt) {
		n, err := d.store.FinishUndispatched(ctx, js.id, store.RunExpired, "the agent was offline until the job expired", now)
		if err != nil {
			return 0, false, err
		}
		d.mu.Lock()
		js.finishedUnsent(n, store.RunExpired)
		d.metrics.RunsFinished(store.RunExpired, n)
		js.expired = true
		d.changed(js.id)
		d.mu.Unlock()
	}
	if js.expired {
		if err := d.expireOffline(ctx, js, now); err != nil {
			return 0, false, err
		}
	}
	if j.State != store.JobRunning && js.undispatched > 0 {
		// Halted or cancelled, but the runs never sent were not ended
		// (a store error): end them now.
		to, reason := store.RunCancelled, "cancelled before it started"
		if j.State == store.JobHalted {
			to, reason = store.RunHalted, "not started: the job halted"
		}
		n, err := d.store.FinishUndispatched(ctx, js.id, to, reason, now)
		if err != nil {
			return 0, false, err
		}
		d.mu.Lock()
		js.finishedUnsent(n, to)
		d.metrics.RunsFinished(to, n)
		d.changed(js.id)
		d.mu.Unlock()
	}
	if js.undispatched == 0 && len(js.inFlight) == 0 {
		return 0, false, d.end(ctx, js, now)
	}
	if j.State != store.JobRunning || !scan {
		return 0, false, nil // halted or cancelled (waiting for runs in flight), or only a tick
	}
	if failed := js.byState[store.RunFailed]; j.Halted(failed, js.final) {
		return 0, false, d.halt(ctx, js, failed, now)
	}
	if !js.inWindow(now) {
		return 0, false, nil // outside its maintenance window: runs wait, pending
	}
	return js.canaryBound(), true, nil
}

// dispatch sends runs never sent whose agents are online, as many as the
// job's concurrency allows: first the candidates (their agent came back),
// then the runs after the cursor, a page at a time, in seq order. Each
// page is claimed in the store (marked sent) before it is sent.
func (d *Dispatcher) dispatch(ctx context.Context, js *jobState, before int) error {
	now := d.now().UTC()
	d.tx.Lock()
	d.mu.Lock()
	if d.jobs[js.id] != js {
		d.mu.Unlock()
		d.tx.Unlock()
		return nil
	}
	job, slots := js.job, js.slots()
	var picked []store.Run
	if slots > 0 && len(js.candidates) > 0 {
		cands := slices.SortedFunc(func(yield func(store.Run) bool) {
			for _, r := range js.candidates {
				if !yield(r) {
					return
				}
			}
		}, func(a, b store.Run) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, r := range cands {
			if len(picked) == slots || before > 0 && r.Seq >= before {
				break
			}
			if !d.links.Online(r.AgentID) {
				delete(js.candidates, r.ID) // gone again; back as a candidate when it returns
				continue
			}
			picked = append(picked, r)
		}
	}
	d.mu.Unlock()
	sent, err := d.claim(ctx, js, picked, now, false, 0)
	d.tx.Unlock()
	if err != nil {
		return err
	}
	d.send(job, sent)

	for {
		d.mu.Lock()
		live := d.jobs[js.id] == js && js.job.State == store.JobRunning
		job, slots, cursor := js.job, js.slots(), js.cursor
		d.mu.Unlock()
		if !live || slots <= 0 || cursor >= job.Total-1 || before > 0 && cursor >= before-1 {
			return nil // nothing may start, or every run (of the wave) was looked at: no query
		}
		page, err := d.store.UndispatchedRuns(ctx, js.id, cursor, before, pageSize)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		picked := make([]store.Run, 0, min(slots, len(page)))
		last, offline := cursor, 0
		for _, r := range page {
			if len(picked) == slots {
				break
			}
			last = r.Seq
			if d.links.Online(r.AgentID) {
				picked = append(picked, r)
			} else {
				offline++
			}
		}
		d.tx.Lock()
		d.mu.Lock()
		tracked := d.jobs[js.id] == js
		d.mu.Unlock()
		if !tracked {
			d.tx.Unlock()
			return nil
		}
		// With every agent of the page online, the runs picked are all
		// those from the cursor to the last: claim them as a range.
		sent, err := d.claim(ctx, js, picked, now, offline == 0, cursor)
		if err == nil {
			d.mu.Lock()
			js.cursor = last
			js.behind += offline
			d.mu.Unlock()
		}
		d.tx.Unlock()
		if err != nil {
			return err
		}
		d.send(job, sent)
		if len(page) < pageSize && last == page[len(page)-1].Seq {
			return nil // looked at every run never sent
		}
	}
}

// claim marks runs sent in the store and moves those it could (still
// pending and never sent) in flight in memory; it returns them. With
// whole, runs are every run never sent from seq after on (a page of
// UndispatchedRuns from after). Called with tx held (not mu).
func (d *Dispatcher) claim(ctx context.Context, js *jobState, runs []store.Run, now time.Time, whole bool, after int) ([]store.Run, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	var got []string
	var err error
	if whole {
		got, err = d.store.ClaimSeqRange(ctx, js.id, after, runs, now)
	} else {
		ids := make([]string, len(runs))
		for i, r := range runs {
			ids[i] = r.ID
		}
		got, err = d.store.ClaimRuns(ctx, ids, now)
	}
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(got) == len(runs) {
		for _, r := range runs {
			d.claimed(js, r)
		}
		return runs, nil
	}
	ok := make(map[string]bool, len(got))
	for _, id := range got {
		ok[id] = true
	}
	var out []store.Run
	for _, r := range runs {
		if ok[r.ID] {
			d.claimed(js, r)
			out = append(out, r)
		} else {
			delete(js.candidates, r.ID) // final, or sent, since it was read
		}
	}
	return out, nil
}

// send sends claimed runs to their agents. Sending only queues the run on
// the agent's link (it never waits for the network). A run that could not
// be queued, because its agent went offline in between or its link is
// dropped for reading too slowly (hub.ErrBusy), stays in flight: it is sent
// again when the agent reconnects, and the agent's journal runs it once.
func (d *Dispatcher) send(j store.Job, runs []store.Run) {
	for _, r := range runs {
		if err := d.links.Send(r.AgentID, wire.MsgRun, d.runRequest(j, r)); err != nil {
			d.log.Debug().Err(err).Str("agent_id", r.AgentID).Str("run_id", r.ID).Msg("run not sent; it is sent again when the agent reconnects")
		}
	}
}

// expireOffline ends runs in flight on agents that are offline when the job
// expires: nobody can tell whether they ran, and the job must end. Called
// with tx held (not mu).
func (d *Dispatcher) expireOffline(ctx context.Context, js *jobState, now time.Time) error {
	var expire []store.Result
	for id, f := range js.inFlight {
		if !d.links.Online(f.agentID) {
			expire = append(expire, store.Result{AgentID: f.agentID, Run: store.Run{ID: id, State: store.RunExpired,
				Error: "the agent went offline during the run and the job expired before it reported", EndedAt: now}})
		}
	}
	if len(expire) == 0 {
		return nil
	}
	_, ok, err := d.store.SaveReports(ctx, nil, expire)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, r := range expire {
		if ok[i] {
			d.finished(js, r.Run.ID, store.RunExpired, 0)
		}
	}
	return nil
}

// halt stops sending a job's runs. Called with tx held (not mu).
func (d *Dispatcher) halt(ctx context.Context, js *jobState, failed int, now time.Time) error {
	j := js.job
	limit := strconv.Itoa(j.MaxFailures)
	if j.MaxFailuresBP >= 0 {
		limit = strconv.FormatFloat(float64(j.MaxFailuresBP)/100, 'f', -1, 64) + "%"
	}
	reason := fmt.Sprintf("not started: the job halted after %d failures (--max-failures %s)", failed, limit)
	n, err := d.store.FinishUndispatched(ctx, j.ID, store.RunHalted, reason, now)
	if err == nil {
		d.mu.Lock()
		js.finishedUnsent(n, store.RunHalted)
		d.metrics.RunsFinished(store.RunHalted, n)
		d.mu.Unlock()
		err = d.store.SetJobState(ctx, j.ID, store.JobHalted)
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	js.job.State = store.JobHalted
	d.changed(js.id)
	d.mu.Unlock()
	d.log.Warn().Str("job_id", j.ID).Int("failed", failed).Int("halted", n).Msg("job halted")
	d.record(ctx, "job.halted", j.ID, map[string]string{"failed": strconv.Itoa(failed), "halted": strconv.Itoa(n)})
	if d.halted != nil {
		if err := d.halted.RaiseJobHalted(ctx, j.ID, j.Plugin, failed); err != nil {
			d.log.Error().Err(err).Str("job_id", j.ID).Msg("job halted: opening its alert failed")
		}
	}
	d.Wake()
	return nil
}

// end closes a job whose runs are all final, stores its counts, stops
// tracking it and audits its outcome. Called with tx held (not mu).
func (d *Dispatcher) end(ctx context.Context, js *jobState, now time.Time) error {
	state := js.job.State
	if state == store.JobRunning {
		state = store.JobDone
	}
	if err := d.store.EndJob(ctx, js.id, state, now, js.byState); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.jobs, js.id)
	d.changed(js.id) // watchers now find it ended, in the store
	detail := map[string]string{"state": state, "total": strconv.Itoa(js.job.Total)}
	for s, n := range js.byState {
		detail[s] = strconv.Itoa(n)
	}
	d.mu.Unlock()
	d.record(ctx, "job.finished", js.id, detail)
	return nil
}

func (d *Dispatcher) record(ctx context.Context, action, jobID string, detail map[string]string) {
	if d.audit == nil {
		return
	}
	if err := d.audit(ctx, "relay", action, "job "+jobID, detail); err != nil {
		d.log.Error().Err(err).Str("job_id", jobID).Msg("audit")
	}
}

// Cancel stops a job: runs never sent end cancelled at once; runs in
// flight are told to stop and end when their agents report (or expire).
// It returns how many runs never started.
func (d *Dispatcher) Cancel(ctx context.Context, jobID string) (int, error) {
	now := d.now().UTC()
	d.tx.Lock()
	d.mu.Lock()
	js := d.jobs[jobID]
	d.mu.Unlock()
	if js == nil {
		// Not open here: ended, unknown, or not loaded yet (a store
		// error). In the last case cancel it in the store; loading picks
		// that up.
		defer d.tx.Unlock()
		j, err := d.store.GetJob(ctx, jobID)
		if err != nil || j.State != store.JobRunning || !j.EndedAt.IsZero() {
			return 0, err
		}
		if err := d.store.SetJobState(ctx, jobID, store.JobCancelled); err != nil {
			return 0, err
		}
		d.mu.Lock()
		d.reload = true
		d.mu.Unlock()
		defer d.changed(jobID)
		n, err := d.store.FinishUndispatched(ctx, jobID, store.RunCancelled, "cancelled before it started", now)
		if err == nil && d.tier != nil {
			// The relay that holds the job reads it again and stops its
			// runs in flight.
			d.publish(subjectJob, note{Job: jobID})
		}
		return n, err
	}
	if js.job.State != store.JobRunning {
		d.tx.Unlock()
		return 0, nil
	}
	if err := d.store.SetJobState(ctx, jobID, store.JobCancelled); err != nil {
		d.tx.Unlock()
		return 0, err
	}
	d.mu.Lock()
	js.job.State = store.JobCancelled
	d.mu.Unlock()
	n, err := d.store.FinishUndispatched(ctx, jobID, store.RunCancelled, "cancelled before it started", now)
	if err != nil {
		d.tx.Unlock()
		return 0, err // the scheduler ends them on its next walk
	}
	d.mu.Lock()
	js.finishedUnsent(n, store.RunCancelled)
	d.metrics.RunsFinished(store.RunCancelled, n)
	d.changed(jobID)
	type stop struct{ agentID, runID string }
	var stops []stop
	for id, f := range js.inFlight {
		stops = append(stops, stop{f.agentID, id})
	}
	d.mu.Unlock()
	d.tx.Unlock()
	for _, s := range stops {
		_ = d.links.Send(s.agentID, wire.MsgRunCancel, wire.RunCancel{RunID: s.runID})
	}
	d.Wake()
	return n, nil
}
