package jobs

import (
	"maps"
	"time"

	"github.com/patchbay/patchbay/server/schedule"
	"github.com/patchbay/patchbay/server/store"
)

// jobState is what the dispatcher keeps of an open job (see the package
// comment). Guarded by Dispatcher.mu, except id, which never changes.
type jobState struct {
	id  string
	job store.Job

	byState      map[string]int // runs by state, as store.RunCounts counts them
	undispatched int            // pending runs never sent
	final        int            // runs in a final state
	canaryFinal  int            // final runs with seq below job.Canary
	inFlight     map[string]*flight

	// The scheduler reads the runs never sent in seq order: cursor is the
	// highest seq it has looked at, and behind counts the runs at or below
	// it still never sent (their agent was offline when it looked).
	// candidates are runs never sent whose agent has come online since:
	// the next walk sends them first.
	cursor     int
	behind     int
	candidates map[string]store.Run
	// retries are runs whose agent could not start them (retry.go), by ID,
	// from the first time until they are final.
	retries map[string]*retry

	// window is the job's maintenance window (nil: none): runs start only
	// while it is open; windowOpen is whether it was at the last tick.
	window     *schedule.Window
	windowOpen bool

	expired     bool      // runs never sent were ended expired
	offlineSent int       // runs in flight, not started, on offline agents: Progress's count
	offlineAt   time.Time // when offlineSent was counted
}

// flight is a run in flight.
type flight struct {
	agentID string
	seq     int
	state   string    // pending (sent, not started) or running
	at      time.Time // in a tier: when it was last sent (zero: unknown); see resendStuck
}

// track starts keeping a job. Called with mu held.
func (d *Dispatcher) track(j store.Job, t store.Tally) {
	js := &jobState{
		id: j.ID, job: j,
		byState:      maps.Clone(t.Counts.ByState),
		undispatched: t.Counts.Undispatched,
		final:        t.Counts.Final,
		canaryFinal:  t.CanaryFinal,
		inFlight:     make(map[string]*flight, len(t.InFlight)),
		cursor:       -1,
		candidates:   map[string]store.Run{},
	}
	if js.byState == nil {
		js.byState = map[string]int{}
	}
	for _, f := range t.InFlight {
		js.inFlight[f.RunID] = &flight{agentID: f.AgentID, seq: f.Seq, state: f.State}
		d.runs[f.RunID] = js
	}
	if j.Window != "" {
		w, err := schedule.ParseWindow(j.Window)
		if err != nil {
			// Runs wait rather than start outside the window meant.
			d.log.Error().Err(err).Str("job_id", j.ID).Msg("job window unreadable: its runs wait")
			w = &schedule.Window{Name: "unreadable"}
		}
		js.window = w
	}
	d.jobs[j.ID] = js
	d.changed(j.ID)
}

// inWindow reports whether the job's runs may start at now: it has no
// window, or its window is open.
func (js *jobState) inWindow(now time.Time) bool {
	if js.window == nil {
		return true
	}
	if js.window.Cron == "" {
		return false // unreadable
	}
	open, _ := js.window.OpenAt(now)
	return open
}

// windowsOpened reports whether the window of an open job has opened since
// the last call: then the tick walks the jobs to send their runs.
func (d *Dispatcher) windowsOpened(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	opened := false
	for _, js := range d.jobs {
		if js.window == nil {
			continue
		}
		open := js.inWindow(now)
		if open && !js.windowOpen {
			opened = true
		}
		js.windowOpen = open
	}
	return opened
}

// counts returns a copy of the job's counts.
func (js *jobState) counts() store.Counts {
	return store.Counts{ByState: maps.Clone(js.byState), InFlight: len(js.inFlight), Undispatched: js.undispatched, Final: js.final}
}

// slots is how many more runs may be in flight now.
func (js *jobState) slots() int {
	if js.job.Concurrency <= 0 {
		return js.undispatched
	}
	return min(js.job.Concurrency-len(js.inFlight), js.undispatched)
}

// canaryBound returns the seq below which runs may be sent: the canary
// wave runs alone until it is all final (0: no bound).
func (js *jobState) canaryBound() int {
	if js.job.Canary > 0 && js.canaryFinal < min(js.job.Canary, js.job.Total) {
		return js.job.Canary
	}
	return 0
}

// offlineUnsent estimates how many runs never sent are on offline agents:
// those the scheduler passed because their agent was offline, less those
// whose agent has come back.
func (js *jobState) offlineUnsent() int {
	n := js.behind
	for _, r := range js.candidates {
		if r.Seq <= js.cursor {
			n--
		}
	}
	return max(0, min(n, js.undispatched))
}

// leaveUnsent removes a run from the runs never sent.
func (js *jobState) leaveUnsent(runID string, seq int) {
	js.undispatched--
	if seq <= js.cursor && js.behind > 0 {
		js.behind--
	}
	delete(js.candidates, runID)
}

func (js *jobState) move(from, to string) {
	if js.byState[from]--; js.byState[from] <= 0 {
		delete(js.byState, from)
	}
	js.byState[to]++
}

// claimed records that a run never sent is now in flight. Called with mu
// held.
func (d *Dispatcher) claimed(js *jobState, r store.Run) {
	js.leaveUnsent(r.ID, r.Seq)
	js.inFlight[r.ID] = &flight{agentID: r.AgentID, seq: r.Seq, state: store.RunPending}
	if d.tier != nil {
		js.inFlight[r.ID].at = time.Now()
	}
	d.runs[r.ID] = js
}

// started records that the store moved a run from pending to running; seq
// is needed only for a run not in flight (sent by an earlier relay process
// that stopped before recording it). Called with mu held.
func (d *Dispatcher) started(js *jobState, runID, agentID string, seq int) {
	js.move(store.RunPending, store.RunRunning)
	d.changed(js.id)
	if f := js.inFlight[runID]; f != nil {
		f.state = store.RunRunning
		return
	}
	js.leaveUnsent(runID, seq)
	js.inFlight[runID] = &flight{agentID: agentID, seq: seq, state: store.RunRunning}
	d.runs[runID] = js
}

// finished records that the store moved a run to the final state to; seq
// as for started. Called with mu held.
func (d *Dispatcher) finished(js *jobState, runID, to string, seq int) {
	if f := js.inFlight[runID]; f != nil {
		js.move(f.state, to)
		seq = f.seq
		delete(js.inFlight, runID)
		delete(d.runs, runID)
	} else {
		js.move(store.RunPending, to)
		js.leaveUnsent(runID, seq)
	}
	js.final++
	d.metrics.RunsFinished(to, 1)
	delete(js.retries, runID)
	if seq < js.job.Canary {
		js.canaryFinal++
	}
	d.changed(js.id)
}

// finishedUnsent records that the store moved n runs never sent to the
// final state to (expiry, halt, cancel). Called with mu held.
func (js *jobState) finishedUnsent(n int, to string) {
	if n == 0 {
		return
	}
	if js.byState[store.RunPending] -= n; js.byState[store.RunPending] <= 0 {
		delete(js.byState, store.RunPending)
	}
	js.byState[to] += n
	js.undispatched -= n
	js.final += n
	js.behind = 0
	clear(js.candidates)
	clear(js.retries) // every run never sent is final now
}
