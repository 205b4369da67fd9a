// Package jobs runs jobs: it sends each run to its agent when the job's
// rules allow (concurrency, canary wave, failure threshold, expiry),
// collects what agents report, commits it to the store in batches and only
// then acknowledges it to the agent.
//
// Ownership: a Dispatcher owns two goroutines, started by Start and stopped
// by Close: the scheduler (wakes on a tick, a new job, an agent coming
// online, or stored results; walks the open jobs) and the writer (batches
// agent reports into one transaction, then acks). Neither holds a goroutine
// or a transaction per pending agent.
//
// State: the store is the source of truth; memory is a cache of it. For
// each open job the dispatcher keeps its counts by state, how many of its
// runs were never sent, and its runs in flight (sent, not final: at most
// the job's concurrency, or the agents that were online). The runs still to
// send are never held: they are read from the store a page at a time, in
// seq order, from where the last walk stopped (jobState.cursor); runs it
// passed because their agent was offline come back as candidates when the
// agent connects. The cache is loaded from the store when the relay starts
// and when a job is created (Created), and every change the relay makes to
// a tracked job's runs is made under Dispatcher.tx together with the same
// change in memory, so the two agree whenever tx is free. Dispatcher.mu
// guards memory alone and is never held across a store call: progress
// polls (Progress), agents coming online and the hub never wait for a
// transaction. Walks and progress polls run no query to count.
//
// Delivery is at least once: a run is marked sent in the store before it
// is sent, and a run in flight is sent again every time its agent
// reconnects (and after a relay restart, when every agent does); the
// agent's journal makes execution exactly once.
package jobs

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"strings"
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

// Metrics is what the dispatcher counts (server/metrics implements it).
type Metrics interface {
	JobCreated()
	RunsFinished(state string, n int)
	ConsentDecision(kind, decision string)
}

type noMetrics struct{}

func (noMetrics) JobCreated()                    {}
func (noMetrics) RunsFinished(string, int)       {}
func (noMetrics) ConsentDecision(string, string) {}

// Auditor appends a record to the audit chain.
type Auditor func(ctx context.Context, actor, action, target string, detail map[string]string) error

// Tunables.
const (
	tick        = time.Second
	reportBatch = 1000
	reportDelay = 20 * time.Millisecond
	pageSize    = 500
	minWalk     = 10 * time.Millisecond // least time between two walks of the open jobs
	offlineTTL  = time.Second           // how long Progress reuses its count of runs in flight on offline agents
)

// Dispatcher runs jobs. Create with New, then Start; Close stops it.
type Dispatcher struct {
	store *store.Store
	links Links
	audit Auditor
	roots *x509.CertPool // the relay CA: fix consent receipts are checked against it
	log   zerolog.Logger
	now   func() time.Time
	// metrics counts jobs, final runs and fix consent (SetMetrics).
	metrics Metrics
	// halted is told of jobs halted by their failure gate (nil: nobody).
	halted   HaltAlerter
	sink     ResultSink                // nil: none (hooks.go)
	rebootOK func(agentID string) bool // agents that take RunRequest.Reboot; nil: none

	// tx serialises the store writes to tracked jobs' runs with their
	// change in memory (and the reads that memory is built from): it is
	// held across those store calls, and is taken before mu. The fields of
	// a jobState that only such writers change may be read under tx alone.
	tx sync.Mutex
	// mu guards jobs, runs, reload and the jobStates; it is held only
	// while memory is read or changed, never across a store call.
	mu     sync.Mutex
	jobs   map[string]*jobState // open jobs by ID
	runs   map[string]*jobState // runs in flight by ID: their job
	reload bool                 // loading open jobs failed: the tick tries again

	// wmu guards watchers: the channels Watch handed out, by job ID
	// (see watch.go). Taken after mu when both are held.
	wmu      sync.Mutex
	watchers map[string]map[chan struct{}]struct{}

	tier   *tierState // nil for a relay alone (tier.go)
	remote chan note  // notes from the tier's other relays, for the scheduler

	wake    chan struct{}  // buffered 1: "look again"
	online  chan string    // agents that came online; scheduler resends their runs
	reports chan report    // from link goroutines to the writer
	stop    chan struct{}  // closed by Close
	wg      sync.WaitGroup // the two goroutines
	once    sync.Once
}

type report struct {
	agentID    string
	started    *wire.RunStarted
	result     *wire.RunResult
	notStarted *wire.RunNotStarted
}

// New returns a dispatcher; audit may be nil.
//
// ca is the relay CA: a fix's consent receipt is audited only when it is
// signed by the key of a certificate from it, the one on record for the
// agent (as the session broker checks a session's).
func New(st *store.Store, links Links, audit Auditor, ca *x509.Certificate, log zerolog.Logger) *Dispatcher {
	roots := x509.NewCertPool()
	if ca != nil {
		roots.AddCert(ca)
	}
	return &Dispatcher{
		store: st, links: links, audit: audit, roots: roots, log: log, now: time.Now, metrics: noMetrics{},
		jobs:    map[string]*jobState{},
		runs:    map[string]*jobState{},
		wake:    make(chan struct{}, 1),
		online:  make(chan string, 4096),
		reports: make(chan report, 4*reportBatch),
		stop:    make(chan struct{}),
	}
}

// SetMetrics makes the dispatcher count into m; call it before Start.
func (d *Dispatcher) SetMetrics(m Metrics) { d.metrics = m }

// HaltAlerter is told when a job's failure gate halts it: server/alerts
// opens a job_halted alert.
type HaltAlerter interface {
	RaiseJobHalted(ctx context.Context, jobID, plugin string, failed int) error
}

// SetHaltAlerter makes the dispatcher tell h of halted jobs; call it
// before Start.
func (d *Dispatcher) SetHaltAlerter(h HaltAlerter) { d.halted = h }

// OpenJobs returns how many open jobs this dispatcher schedules now.
func (d *Dispatcher) OpenJobs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.jobs)
}

// Start loads the open jobs from the store and starts the scheduler and
// the writer.
func (d *Dispatcher) Start() {
	if d.tier != nil {
		if err := d.subscribe(); err != nil {
			// Without the notes the holder still catches up from the store.
			d.log.Error().Err(err).Msg("job notes from the tier; jobs progress at the resync's pace")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	d.load(ctx)
	cancel()
	d.wg.Add(2)
	go d.scheduler()
	go d.writer()
}

// Close stops both goroutines after the writer has stored what it holds.
func (d *Dispatcher) Close() {
	d.once.Do(func() {
		close(d.stop)
		d.wg.Wait()
		d.unsubscribe()
	})
	d.wg.Wait()
}

// Wake asks the scheduler to look at the open jobs now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Created starts tracking a job just stored (with all its runs) and wakes
// the scheduler to send them. On an error the job stays in the store and
// is loaded on a later tick.
func (d *Dispatcher) Created(ctx context.Context, j store.Job) error {
	defer d.Wake()
	d.metrics.JobCreated()
	d.tx.Lock()
	defer d.tx.Unlock()
	d.mu.Lock()
	known := d.jobs[j.ID] != nil
	d.mu.Unlock()
	if known {
		return nil
	}
	if d.tier != nil {
		// In a tier the job is scheduled by whoever takes its lease
		// first (another relay's tick may have).
		if ok, err := d.store.TakeJobLease(ctx, j.ID, d.tier.Node, leaseTTL); err != nil || !ok {
			return err
		}
		d.log.Info().Str("job_id", j.ID).Msg("job lease taken: this relay schedules the job")
	}
	t, err := d.store.NewJobTally(ctx, j)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.reload = true
		return err
	}
	d.track(j, t)
	return nil
}

// Progress returns an open job as the dispatcher knows it: the job, its
// counts, and how many of its pending runs are on offline agents (runs
// sent whose agent is offline now, counted at most once per offlineTTL, and
// runs never sent whose agent was offline when the scheduler last got to
// them). ok is false when the job is not open here (ended, or unknown):
// then the store has it.
func (d *Dispatcher) Progress(jobID string) (j store.Job, c store.Counts, offline int, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	js := d.jobs[jobID]
	if js == nil {
		return store.Job{}, store.Counts{}, 0, false
	}
	if now := time.Now(); now.Sub(js.offlineAt) >= offlineTTL {
		n := 0
		for _, f := range js.inFlight {
			if f.state == store.RunPending && !d.links.Online(f.agentID) {
				n++
			}
		}
		js.offlineSent, js.offlineAt = n, now
	}
	return js.job, js.counts(), js.offlineSent + js.offlineUnsent(), true
}

// AgentOnline tells the dispatcher an agent connected: its runs in flight
// are sent again, and its pending runs may start.
func (d *Dispatcher) AgentOnline(agentID string) {
	select {
	case d.online <- agentID:
	case <-d.stop:
	}
	d.Wake()
	if d.tier != nil {
		d.publish(subjectOnline, note{Agent: agentID}) // the holders of its jobs may be elsewhere
	}
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
			d.agentOnline(ctx, id)
			continue
		case n := <-d.remote: // nil, never ready, for a relay alone
			d.applyNote(ctx, n)
			continue
		case <-t.C:
			scan = false // the tick only expires and ends jobs: no walk over pending runs
			d.mu.Lock()
			reload := d.reload
			d.mu.Unlock()
			if reload {
				d.load(ctx)
			}
			scan = d.retryDue(ctx) // runs put back whose backoff has passed
			if d.windowsOpened(d.now()) {
				scan = true // a job's maintenance window opened: send its runs
			}
			if d.tier != nil && d.tierTick(ctx) {
				scan = true
			}
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
		d.schedule(ctx, scan)
	}
}

// load starts tracking the open jobs the store has and the dispatcher
// does not (all of them when the relay starts).
func (d *Dispatcher) load(ctx context.Context) {
	d.tx.Lock()
	defer d.tx.Unlock()
	var jobs []store.Job
	var err error
	if d.tier != nil {
		jobs, err = d.heldJobs(ctx)
	} else {
		jobs, err = d.store.OpenJobs(ctx)
	}
	d.mu.Lock()
	d.reload = err != nil
	d.mu.Unlock()
	if err != nil {
		d.log.Error().Err(err).Msg("load open jobs")
		return
	}
	for _, j := range jobs {
		d.mu.Lock()
		known := d.jobs[j.ID] != nil
		d.mu.Unlock()
		if known {
			continue
		}
		t, err := d.store.JobTally(ctx, j.ID, j.Canary)
		d.mu.Lock()
		if err != nil {
			d.reload = true
			d.mu.Unlock()
			d.log.Error().Err(err).Str("job_id", j.ID).Msg("load open job")
			continue
		}
		d.track(j, t)
		d.mu.Unlock()
	}
	d.mu.Lock()
	open := len(d.jobs) > 0
	d.mu.Unlock()
	if open {
		d.Wake()
	}
}

// forgetAll drops every job from memory when memory may no longer match
// the store (a store error between a write and the matching change in
// memory); the next tick loads them again. Called with mu held.
func (d *Dispatcher) forgetAll(err error) {
	d.log.Error().Err(err).Msg("job state in memory dropped; reloading it from the store")
	clear(d.jobs)
	clear(d.runs)
	d.reload = true
}

// agentOnline sends an agent's runs in flight again and makes its runs
// never sent candidates for the next walk.
func (d *Dispatcher) agentOnline(ctx context.Context, agentID string) {
	d.mu.Lock()
	busy := false
	for _, js := range d.jobs {
		if js.undispatched > 0 || len(js.inFlight) > 0 {
			busy = true
			break
		}
	}
	d.mu.Unlock()
	if !busy {
		return // no open job has runs to send: no query per reconnecting agent
	}
	runs, err := d.store.AgentOpenRuns(ctx, agentID)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			d.log.Error().Err(err).Str("agent_id", agentID).Msg("runs of an agent that came online")
		}
		return
	}
	type send struct {
		job store.Job
		run store.Run
	}
	var resend []send
	candidates := false
	d.mu.Lock()
	for _, r := range runs {
		js := d.jobs[r.JobID]
		switch {
		case js == nil:
		case js.inFlight[r.ID] != nil:
			resend = append(resend, send{js.job, r})
		case r.State == store.RunPending && r.DispatchedAt.IsZero():
			if js.job.State == store.JobRunning {
				js.candidates[r.ID] = r
				candidates = true
			}
		default:
			// Final since it was read (memory is newer than the query).
		}
	}
	d.mu.Unlock()
	if candidates {
		d.Wake() // AgentOnline's wake may have been taken before this ran
	}
	for _, s := range resend {
		if err := d.links.Send(agentID, wire.MsgRun, d.runRequest(s.job, s.run)); err != nil {
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
		Reason:         j.Reason, // shown to the person at the machine when a fix asks for consent
	}
	if len(req.Reason) > wire.MaxRunReason { // the API bounds it to the same; a longer one is cut, not dropped
		req.Reason = req.Reason[:wire.MaxRunReason]
	}
	if j.Script != "" {
		req.Script = &wire.ArtifactRef{Name: j.Script, Version: j.ScriptVersion, SHA256: j.ScriptSHA256, Size: j.ScriptSize}
	}
	return req
}

// schedule walks every open job once, oldest first; with scan it also
// sends the runs that may start (woken by a new job, an agent coming
// online, or stored results).
func (d *Dispatcher) schedule(ctx context.Context, scan bool) {
	d.mu.Lock()
	jobs := make([]*jobState, 0, len(d.jobs))
	for _, js := range d.jobs {
		jobs = append(jobs, js)
	}
	d.mu.Unlock()
	slices.SortFunc(jobs, func(a, b *jobState) int { return strings.Compare(a.id, b.id) })
	for _, js := range jobs {
		if err := d.step(ctx, js, scan); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error().Err(err).Str("job_id", js.id).Msg("schedule job")
		}
	}
}
