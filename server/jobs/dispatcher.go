// Package jobs runs jobs: it sends each run to its agent when the job's
// rules allow (concurrency, canary wave, failure threshold, expiry),
// collects what agents report, commits it to the store in batches and only
// then acknowledges it to the agent.
//
// Ownership: a Dispatcher owns two goroutines, started by Start and stopped
// by Close: the scheduler (wakes on a tick, a new job, an agent coming
// online, or stored results; walks the open jobs) and the writer (batches
// agent reports into one transaction, then acks). Neither holds anything
// per pending agent: a pending run is a row, read a page at a time.
//
// Delivery is at least once: a run in flight is sent again every time its
// agent reconnects (and after a relay restart, when every agent does); the
// agent's journal makes execution exactly once.
package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/server/store"
)

// Links is what the dispatcher needs from the hub.
type Links interface {
	Online(agentID string) bool
	Send(agentID, typ string, body any) error
}

// Auditor appends a record to the audit chain.
type Auditor func(ctx context.Context, actor, action, target string, detail map[string]string) error

// Tunables.
const (
	tick        = time.Second
	reportBatch = 1000
	reportDelay = 20 * time.Millisecond
	pageSize    = 500
	minWalk     = 25 * time.Millisecond // least time between two walks of the open jobs
)

// Dispatcher runs jobs. Create with New, then Start; Close stops it.
type Dispatcher struct {
	store *store.Store
	links Links
	audit Auditor
	log   zerolog.Logger
	now   func() time.Time

	wake    chan struct{}  // buffered 1: "look again"
	online  chan string    // agents that came online; scheduler resends their runs
	reports chan report    // from link goroutines to the writer
	stop    chan struct{}  // closed by Close
	wg      sync.WaitGroup // the two goroutines
	once    sync.Once
}

type report struct {
	agentID string
	started *wire.RunStarted
	result  *wire.RunResult
}

// New returns a dispatcher; audit may be nil.
func New(st *store.Store, links Links, audit Auditor, log zerolog.Logger) *Dispatcher {
	return &Dispatcher{
		store: st, links: links, audit: audit, log: log, now: time.Now,
		wake:    make(chan struct{}, 1),
		online:  make(chan string, 4096),
		reports: make(chan report, 4*reportBatch),
		stop:    make(chan struct{}),
	}
}

// Start starts the scheduler and the writer.
func (d *Dispatcher) Start() {
	d.wg.Add(2)
	go d.scheduler()
	go d.writer()
}

// Close stops both goroutines after the writer has stored what it holds.
func (d *Dispatcher) Close() {
	d.once.Do(func() { close(d.stop) })
	d.wg.Wait()
}

// Wake asks the scheduler to look at the open jobs now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// AgentOnline tells the dispatcher an agent connected: its runs in flight
// are sent again, and its pending runs may start.
func (d *Dispatcher) AgentOnline(agentID string) {
	select {
	case d.online <- agentID:
	case <-d.stop:
	}
	d.Wake()
}

// Started queues an agent's start report. Called on the link's goroutine.
func (d *Dispatcher) Started(agentID string, m wire.RunStarted) {
	select {
	case d.reports <- report{agentID: agentID, started: &m}:
	case <-d.stop:
	}
}

// Result queues an agent's result; it is acknowledged once stored.
func (d *Dispatcher) Result(agentID string, m wire.RunResult) {
	select {
	case d.reports <- report{agentID: agentID, result: &m}:
	case <-d.stop:
	}
}

func (d *Dispatcher) scheduler() {
	defer d.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-d.stop; cancel() }()
	var scan bool
	var lastWalk time.Time
	for {
		select {
		case <-d.stop:
			return
		case id := <-d.online:
			d.resend(ctx, id)
			continue
		case <-t.C:
			scan = false // the tick only expires and ends jobs: no walk over pending runs
		case <-d.wake:
			scan = true
			// Coalesce: results arrive in batches every few milliseconds
			// during a large job; one walk per minWalk covers them all.
			if wait := minWalk - time.Since(lastWalk); wait > 0 {
				select {
				case <-time.After(wait):
				case <-d.stop:
					return
				}
			}
		}
		lastWalk = time.Now()
		if err := d.schedule(ctx, scan); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error().Err(err).Msg("job scheduler")
		}
	}
}

// resend sends an agent's in-flight runs again.
func (d *Dispatcher) resend(ctx context.Context, agentID string) {
	runs, err := d.store.InFlightRuns(ctx, agentID)
	if err != nil {
		d.log.Error().Err(err).Str("agent_id", agentID).Msg("resend runs")
		return
	}
	jobs := map[string]store.Job{}
	for _, r := range runs {
		j, ok := jobs[r.JobID]
		if !ok {
			if j, err = d.store.GetJob(ctx, r.JobID); err != nil {
				d.log.Error().Err(err).Msg("resend runs")
				continue
			}
			jobs[r.JobID] = j
		}
		if err := d.links.Send(agentID, wire.MsgRun, runRequest(j, r)); err != nil {
			return // gone again; it will be back
		}
	}
}

// runRequest builds what the agent is sent.
func runRequest(j store.Job, r store.Run) wire.RunRequest {
	req := wire.RunRequest{
		RunID: r.ID, JobID: j.ID,
		Plugin:         wire.ArtifactRef{Name: j.Plugin, Version: r.Version, SHA256: r.PluginSHA256, Size: r.PluginSize},
		Params:         j.Params,
		DryRun:         j.DryRun,
		Timeout:        wire.Duration(j.Timeout),
		AllowDowngrade: j.AllowDowngrade,
		Requester:      j.CreatedBy,
	}
	if j.Script != "" {
		req.Script = &wire.ArtifactRef{Name: j.Script, Version: j.ScriptVersion, SHA256: j.ScriptSHA256, Size: j.ScriptSize}
	}
	return req
}

// schedule walks every open job once; with scan it also looks for runs to
// send (woken by a new job, an agent coming online, or stored results).
func (d *Dispatcher) schedule(ctx context.Context, scan bool) error {
	jobs, err := d.store.OpenJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if err := d.step(ctx, j, scan); err != nil {
			d.log.Error().Err(err).Str("job_id", j.ID).Msg("schedule job")
		}
	}
	return nil
}
