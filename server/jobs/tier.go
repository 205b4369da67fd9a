package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Jobs across a tier of relays (issue 14, part 4). Relays that share one
// PostgreSQL and one NATS schedule every job on exactly one of them: the
// holder of the job's lease in the store (store.TakeJobLeases), renewed by
// the scheduler every leaseRenew and taken over by another relay once its
// holder has not renewed it for leaseTTL (it died), both timed by the
// database's clock, so relays whose clocks disagree still agree on the
// holder (the dispatcher's own clock only paces its renewals). A relay tracks in
// memory only the jobs it holds, so it never expires, ends or sends again
// runs that another relay has in flight.
//
// The holder sends a run to an agent held by another relay through its
// Links (the server routes it over NATS to that relay, which queues it on
// the agent's link). The agent reports to the relay that holds it; that
// relay's writer stores the reports as on a relay alone, acknowledges them
// and publishes what changed on subjectRuns. Every relay applies those
// notes to the runs it has in flight, so the holder's counts, and with
// them the concurrency cap, the canary wave and the failure threshold,
// hold across the tier. An agent that connects to any relay is announced
// on subjectOnline, and a job changed in the store by a relay that does not
// hold it (a cancel) on subjectJob.
//
// All of these are core NATS: a lost message only delays. The store is the
// source of truth: every resyncEvery the holder reads each of its jobs
// again from the store (counts, runs in flight, state), which catches up
// with any note it missed and walks again the runs never sent whose agents
// were offline.
const (
	leaseTTL    = 10 * time.Second
	resendAfter = 10 * time.Second // a run sent and still not started is sent again (its request may have been lost)
	leaseRenew  = 2 * time.Second
	resyncEvery = 5 * time.Second

	subjectRuns   = "patchbay.jobs.runs"
	subjectOnline = "patchbay.jobs.online"
	subjectJob    = "patchbay.jobs.job"

	// stateRequeued in a note: the run did not start and is back among
	// the runs never sent (retry.go).
	stateRequeued = "requeued"
)

// Bus is what a dispatcher of a tier needs from the relays' bus.
type Bus interface {
	Publish(ctx context.Context, subject string, data []byte) error
	Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error)
}

// Tier joins a dispatcher to the other relays of its tier.
type Tier struct {
	Node string // this relay's node ID: the holder named in its leases
	Bus  Bus
}

// note is a message between the dispatchers of a tier.
type note struct {
	Node  string    `json:"node"`            // the sender
	Runs  []runNote `json:"runs,omitempty"`  // subjectRuns: runs whose state the store changed
	Agent string    `json:"agent,omitempty"` // subjectOnline: an agent that connected to Node
	Job   string    `json:"job,omitempty"`   // subjectJob: a job changed in the store by Node
}

type runNote struct {
	ID    string `json:"id"`
	State string `json:"state"` // running, a final state, or stateRequeued
}

// tierState is the dispatcher's part of a tier; nil for a relay alone.
// Its fields are the scheduler's, except unsub (Start and Close).
type tierState struct {
	Tier
	unsub    []func()
	leaseAt  time.Time // leases last renewed
	resyncAt time.Time // jobs last read again from the store
}

// JoinTier makes the dispatcher one of a tier's: call it before Start.
func (d *Dispatcher) JoinTier(t Tier) {
	d.tier = &tierState{Tier: t}
	d.remote = make(chan note, 1024)
}

// subscribe starts receiving the tier's notes. A note is queued for the
// scheduler, or dropped when it is behind (the resync catches up).
func (d *Dispatcher) subscribe() error {
	for _, subject := range []string{subjectRuns, subjectOnline, subjectJob} {
		unsub, err := d.tier.Bus.Subscribe(subject, func(data []byte) {
			var n note
			if err := json.Unmarshal(data, &n); err != nil || n.Node == "" {
				d.log.Warn().Str("subject", subject).Int("bytes", len(data)).Msg("malformed job note from the tier dropped")
				return
			}
			if n.Node == d.tier.Node {
				return // applied here already
			}
			select {
			case d.remote <- n:
			default:
				d.log.Debug().Str("subject", subject).Msg("job note dropped: the scheduler is behind; the next resync catches up")
			}
		})
		if err != nil {
			return err
		}
		d.tier.unsub = append(d.tier.unsub, unsub)
	}
	return nil
}

func (d *Dispatcher) unsubscribe() {
	if d.tier == nil {
		return
	}
	for _, u := range d.tier.unsub {
		u()
	}
	d.tier.unsub = nil
	// Another relay takes this relay's jobs at once rather than after
	// leaseTTL.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.store.ReleaseJobLeases(ctx, d.tier.Node); err != nil {
		d.log.Warn().Err(err).Msg("job leases not released; other relays take them over when they expire")
	}
}

// publish sends a note to the tier; a failure costs only time.
func (d *Dispatcher) publish(subject string, n note) {
	n.Node = d.tier.Node
	b, err := json.Marshal(n)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = d.tier.Bus.Publish(ctx, subject, b)
		cancel()
	}
	if err != nil {
		d.log.Debug().Err(err).Str("subject", subject).Msg("job note not published; the holder catches up from the store")
	}
}

// publishRuns tells the tier which runs the writer changed.
func (d *Dispatcher) publishRuns(started []store.Started, startedOK []bool, results []store.Result, resultOK []bool, requeued []string) {
	var runs []runNote
	for i, s := range started {
		if startedOK[i] {
			runs = append(runs, runNote{ID: s.RunID, State: store.RunRunning})
		}
	}
	for i, r := range results {
		if resultOK[i] {
			runs = append(runs, runNote{ID: r.Run.ID, State: r.Run.State})
		}
	}
	for _, id := range requeued {
		runs = append(runs, runNote{ID: id, State: stateRequeued})
	}
	if len(runs) > 0 {
		d.publish(subjectRuns, note{Runs: runs})
	}
}

// applyNote applies a note from another relay. Called by the scheduler.
func (d *Dispatcher) applyNote(ctx context.Context, n note) {
	switch {
	case n.Agent != "":
		d.agentOnline(ctx, n.Agent)
		d.Wake()
	case n.Job != "":
		d.mu.Lock()
		tracked := d.jobs[n.Job] != nil
		d.mu.Unlock()
		if tracked {
			d.retrack(ctx, n.Job)
			d.Wake()
		}
	case len(n.Runs) > 0:
		now := d.now()
		changed := false
		d.tx.Lock()
		d.mu.Lock()
		for _, r := range n.Runs {
			js := d.runs[r.ID]
			if js == nil {
				continue // not in flight here: another relay's job, or applied already
			}
			f := js.inFlight[r.ID]
			switch r.State {
			case store.RunRunning:
				if f.state == store.RunPending {
					d.started(js, r.ID, f.agentID, 0)
					changed = true
				}
			case stateRequeued:
				d.requeued(js, r.ID, now)
				changed = true
			case store.RunSucceeded, store.RunFailed, store.RunSkipped, store.RunCancelled, store.RunHalted, store.RunExpired:
				d.finished(js, r.ID, r.State, 0)
				changed = true
			}
		}
		d.mu.Unlock()
		d.tx.Unlock()
		if changed {
			d.Wake()
		}
	}
}

// tierTick renews this relay's leases (taking over those of relays that
// died) and reads its jobs again from the store. Called by the scheduler
// on its tick; it reports whether jobs were taken or read again.
func (d *Dispatcher) tierTick(ctx context.Context) bool {
	now := d.now()
	walk := false
	if now.Sub(d.tier.leaseAt) >= leaseRenew {
		d.tier.leaseAt = now
		walk = d.syncLeases(ctx)
	}
	if now.Sub(d.tier.resyncAt) >= resyncEvery {
		d.tier.resyncAt = now
		d.mu.Lock()
		ids := make([]string, 0, len(d.jobs))
		for id := range d.jobs {
			ids = append(ids, id)
		}
		d.mu.Unlock()
		slices.Sort(ids)
		for _, id := range ids {
			d.retrack(ctx, id)
		}
		walk = walk || len(ids) > 0
	}
	return walk
}

// syncLeases takes and renews leases, stops tracking the jobs this relay
// no longer holds and loads those it now holds. It reports whether it
// loaded any.
func (d *Dispatcher) syncLeases(ctx context.Context) bool {
	held, err := d.store.TakeJobLeases(ctx, d.tier.Node, leaseTTL)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			d.log.Error().Err(err).Msg("renew job leases; other relays take them over if this lasts")
		}
		return false
	}
	d.mu.Lock()
	var lost []string
	for id := range d.jobs {
		if _, ok := slices.BinarySearch(held, id); !ok {
			lost = append(lost, id)
		}
	}
	var gained []string
	for _, id := range held {
		if d.jobs[id] == nil {
			gained = append(gained, id)
		}
	}
	d.mu.Unlock()
	for _, id := range lost {
		d.tx.Lock()
		d.mu.Lock()
		if js := d.jobs[id]; js != nil {
			d.untrack(js)
		}
		d.mu.Unlock()
		d.tx.Unlock()
		d.log.Warn().Str("job_id", id).Msg("job lease lost to another relay; it schedules the job now")
	}
	for _, id := range gained {
		d.retrack(ctx, id)
		d.log.Info().Str("job_id", id).Msg("job lease taken: this relay schedules the job")
	}
	return len(gained) > 0
}

// retrack reads a job again from the store and replaces what memory has
// of it (or starts tracking it). A job cancelled by another relay meanwhile
// gets its runs in flight told to stop.
func (d *Dispatcher) retrack(ctx context.Context, id string) {
	d.tx.Lock()
	j, err := d.store.GetJob(ctx, id)
	var t store.Tally
	if err == nil && j.EndedAt.IsZero() {
		t, err = d.store.JobTally(ctx, id, j.Canary)
	}
	if err != nil {
		d.tx.Unlock()
		if !errors.Is(err, context.Canceled) {
			d.log.Warn().Err(err).Str("job_id", id).Msg("read job again from the store; the next resync tries again")
		}
		return
	}
	type stop struct{ agentID, runID string }
	var stops []stop
	stuck := map[string]map[string]bool{} // agent -> runs sent resendAfter ago and not started
	now := d.now()
	d.mu.Lock()
	old := d.jobs[id]
	if old != nil {
		d.untrack(old)
	}
	if j.EndedAt.IsZero() {
		d.track(j, t)
		js := d.jobs[id]
		if old != nil {
			js.retries = old.retries
			if old.job.State == store.JobRunning && j.State == store.JobCancelled {
				for runID, f := range js.inFlight {
					stops = append(stops, stop{f.agentID, runID})
				}
			}
		}
		for runID, f := range js.inFlight {
			if old != nil && old.inFlight[runID] != nil {
				f.at = old.inFlight[runID].at
			}
			switch {
			case f.state != store.RunPending || j.State != store.JobRunning:
			case f.at.IsZero():
				f.at = now
			case now.Sub(f.at) >= resendAfter && d.links.Online(f.agentID):
				f.at = now
				if stuck[f.agentID] == nil {
					stuck[f.agentID] = map[string]bool{}
				}
				stuck[f.agentID][runID] = true
			}
		}
	}
	d.changed(id)
	d.mu.Unlock()
	d.tx.Unlock()
	for _, s := range stops {
		_ = d.links.Send(s.agentID, wire.MsgRunCancel, wire.RunCancel{RunID: s.runID})
	}
	d.resendStuck(ctx, j, stuck)
}

// resendStuck sends again runs sent resendAfter ago that their agents have
// not started: the request may have been lost between relays. The agent's
// journal runs a run once however often it is sent.
func (d *Dispatcher) resendStuck(ctx context.Context, j store.Job, stuck map[string]map[string]bool) {
	for agentID, ids := range stuck {
		runs, err := d.store.AgentOpenRuns(ctx, agentID)
		if err != nil {
			return // the next resync tries again
		}
		for _, r := range runs {
			if ids[r.ID] && r.State == store.RunPending && !r.DispatchedAt.IsZero() {
				d.log.Debug().Str("run_id", r.ID).Str("agent_id", agentID).Msg("run sent again: not started since it was sent")
				_ = d.links.Send(agentID, wire.MsgRun, d.runRequest(j, r))
			}
		}
	}
}

// untrack stops keeping a job. Called with mu held.
func (d *Dispatcher) untrack(js *jobState) {
	for id := range js.inFlight {
		delete(d.runs, id)
	}
	delete(d.jobs, js.id)
}

// heldJobs is OpenJobs for a relay of a tier: it takes the leases it can
// and returns the open jobs it holds. Called by load, with tx held.
func (d *Dispatcher) heldJobs(ctx context.Context) ([]store.Job, error) {
	held, err := d.store.TakeJobLeases(ctx, d.tier.Node, leaseTTL)
	if err != nil {
		return nil, err
	}
	d.tier.leaseAt = d.now()
	var out []store.Job
	for _, id := range held {
		j, err := d.store.GetJob(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}
