package jobs

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// step applies a job's rules once: expiry, end, failure threshold, canary
// wave and concurrency, then sends the runs that may start.
func (d *Dispatcher) step(ctx context.Context, j store.Job, scan bool) error {
	now := d.now().UTC()
	if !j.ExpiresAt.IsZero() && now.After(j.ExpiresAt) {
		if _, err := d.store.FinishRuns(ctx, j.ID, store.RunPending, store.RunExpired,
			"the agent was offline until the job expired", true, now); err != nil {
			return err
		}
		if err := d.expireOffline(ctx, j, now); err != nil {
			return err
		}
	}
	c, err := d.store.RunCounts(ctx, j.ID, 0)
	if err != nil {
		return err
	}
	if c.InFlight == 0 && c.Undispatched == 0 {
		return d.end(ctx, j, c, now)
	}
	if j.State != store.JobRunning || !scan {
		return nil // halted or cancelled (waiting for runs in flight), or only a tick
	}
	if failed := c.ByState[store.RunFailed]; j.Halted(failed, c.Final) {
		return d.halt(ctx, j, failed, now)
	}
	before := 0
	if j.Canary > 0 {
		cc, err := d.store.RunCounts(ctx, j.ID, j.Canary)
		if err != nil {
			return err
		}
		if cc.Final < min(j.Canary, j.Total) {
			before = j.Canary // the canary wave runs alone
		}
	}
	slots := j.Concurrency - c.InFlight
	if j.Concurrency <= 0 {
		slots = c.Undispatched
	}
	return d.dispatch(ctx, j, before, slots, now)
}

// dispatch sends up to slots undispatched runs whose agents are online.
func (d *Dispatcher) dispatch(ctx context.Context, j store.Job, before, slots int, now time.Time) error {
	after := -1
	for slots > 0 {
		runs, err := d.store.UndispatchedRuns(ctx, j.ID, after, before, pageSize)
		if err != nil {
			return err
		}
		if len(runs) == 0 {
			return nil
		}
		var sent []string
		for _, r := range runs {
			after = r.Seq
			if slots == 0 {
				break
			}
			if !d.links.Online(r.AgentID) {
				continue
			}
			if err := d.links.Send(r.AgentID, wire.MsgRun, runRequest(j, r)); err != nil {
				continue
			}
			sent = append(sent, r.ID)
			slots--
		}
		if err := d.store.MarkDispatched(ctx, sent, now); err != nil {
			return err
		}
		if len(runs) < pageSize {
			return nil
		}
	}
	return nil
}

// expireOffline ends runs in flight on agents that are offline when the job
// expires: nobody can tell whether they ran, and the job must end.
func (d *Dispatcher) expireOffline(ctx context.Context, j store.Job, now time.Time) error {
	after := -1
	for {
		runs, err := d.store.JobRuns(ctx, j.ID, after, pageSize)
		if err != nil {
			return err
		}
		var expire []store.Result
		for _, r := range runs {
			after = r.Seq
			if (r.State == store.RunPending || r.State == store.RunRunning) && !d.links.Online(r.AgentID) {
				expire = append(expire, store.Result{AgentID: r.AgentID, Run: store.Run{ID: r.ID, State: store.RunExpired,
					Error: "the agent went offline during the run and the job expired before it reported", EndedAt: now}})
			}
		}
		if len(expire) > 0 {
			if _, err := d.store.SaveReports(ctx, nil, expire); err != nil {
				return err
			}
		}
		if len(runs) < pageSize {
			return nil
		}
	}
}

func (d *Dispatcher) halt(ctx context.Context, j store.Job, failed int, now time.Time) error {
	limit := strconv.Itoa(j.MaxFailures)
	if j.MaxFailuresBP >= 0 {
		limit = strconv.FormatFloat(float64(j.MaxFailuresBP)/100, 'f', -1, 64) + "%"
	}
	reason := fmt.Sprintf("not started: the job halted after %d failures (--max-failures %s)", failed, limit)
	n, err := d.store.FinishRuns(ctx, j.ID, store.RunPending, store.RunHalted, reason, true, now)
	if err != nil {
		return err
	}
	if err := d.store.SetJobState(ctx, j.ID, store.JobHalted, time.Time{}); err != nil {
		return err
	}
	d.log.Warn().Str("job_id", j.ID).Int("failed", failed).Int("halted", n).Msg("job halted")
	d.record(ctx, "job.halted", j.ID, map[string]string{"failed": strconv.Itoa(failed), "halted": strconv.Itoa(n)})
	d.Wake()
	return nil
}

// end closes a job whose runs are all final and audits its outcome.
func (d *Dispatcher) end(ctx context.Context, j store.Job, c store.Counts, now time.Time) error {
	state := j.State
	if state == store.JobRunning {
		state = store.JobDone
	}
	if err := d.store.SetJobState(ctx, j.ID, state, now); err != nil {
		return err
	}
	detail := map[string]string{"state": state, "total": strconv.Itoa(j.Total)}
	for s, n := range c.ByState {
		detail[s] = strconv.Itoa(n)
	}
	d.record(ctx, "job.finished", j.ID, detail)
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
func (d *Dispatcher) Cancel(ctx context.Context, jobID string) (int, error) {
	j, err := d.store.GetJob(ctx, jobID)
	if err != nil {
		return 0, err
	}
	if j.State != store.JobRunning {
		return 0, nil
	}
	now := d.now().UTC()
	if err := d.store.SetJobState(ctx, jobID, store.JobCancelled, time.Time{}); err != nil {
		return 0, err
	}
	n, err := d.store.FinishRuns(ctx, jobID, store.RunPending, store.RunCancelled, "cancelled before it started", true, now)
	if err != nil {
		return 0, err
	}
	after := -1
	for {
		runs, err := d.store.JobRuns(ctx, jobID, after, pageSize)
		if err != nil {
			return n, err
		}
		for _, r := range runs {
			after = r.Seq
			if r.State == store.RunPending || r.State == store.RunRunning {
				_ = d.links.Send(r.AgentID, wire.MsgRunCancel, wire.RunCancel{RunID: r.ID})
			}
		}
		if len(runs) < pageSize {
			break
		}
	}
	d.Wake()
	return n, nil
}
