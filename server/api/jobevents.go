package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/server/sse"
	"github.com/patchbay/patchbay/server/store"
)

// JobWatcher pushes a job's changes (*jobs.Dispatcher implements it).
type JobWatcher interface {
	// Watch returns a channel that receives (coalesced, never blocking the
	// dispatcher) when the job changes, and a function that stops the watch.
	Watch(jobID string) (<-chan struct{}, func())
}

// Job event stream tuning.
const (
	// jobEventGap is the least time between two events of one stream: a
	// large job changes every few milliseconds; the page needs no more.
	jobEventGap = 250 * time.Millisecond
	// jobLiveResults: a job of at most this many runs also gets its
	// results pushed as they change (the page shows them live); a larger
	// one gets counts only, and its results are read when it ends.
	jobLiveResults = 500
	// jobStreamKeepalive: a comment line this often keeps proxies from
	// closing an idle stream and finds browsers that left.
	jobStreamKeepalive = 20 * time.Second
	// jobStreamMaxAge bounds a stream: then it ends and the browser's
	// EventSource reconnects, which checks the cookie or token again (a
	// logged-out or revoked credential stops there).
	jobStreamMaxAge       = 5 * time.Minute
	jobStreamWriteTimeout = 10 * time.Second
)

// RegisterStreams adds the routes that stream for long: GET
// /v1/jobs/{id}/events. They end when streams ends (the relay cancels it
// when it starts shutting down) or the client goes.
func (a *API) RegisterStreams(mux *http.ServeMux, streams context.Context) {
	mux.Handle("GET /v1/jobs/{id}/events", a.auth(apiv1.RoleViewer, func(w http.ResponseWriter, r *http.Request, c caller) {
		a.handleJobEvents(streams, w, r, c)
	}))
}

// handleJobEvents is GET /v1/jobs/{id}/events: a server-sent event stream
// of the job's progress. Events: "progress" (the job without results, as
// GET /v1/jobs/{id}?results=false answers) whenever its counts or state
// change; "results" (every run's result, jobs of at most jobLiveResults
// runs) after each progress event; "end" (the job, ended) last, after
// which the stream closes. The handler's goroutine owns the stream; the
// dispatcher only wakes it.
func (a *API) handleJobEvents(streams context.Context, w http.ResponseWriter, r *http.Request, c caller) {
	watcher, ok := a.Jobs.(JobWatcher)
	if !ok {
		WriteError(w, http.StatusServiceUnavailable, "this relay does not stream job progress: poll GET /v1/jobs/{id}?results=false")
		return
	}
	j, _, _, ok := a.getJob(w, r, c, "stream job events") // 404 for an unknown job, before the stream starts
	if !ok {
		return
	}
	id := j.ID
	wake, stop := watcher.Watch(id) // before the first read: no change is missed
	defer stop()

	sw, ok := sse.Start(w, jobStreamWriteTimeout)
	if !ok {
		return
	}
	ctx := r.Context()
	var last []byte
	// send writes the job's state if it changed since the last event; done
	// is true once the stream should end (job ended, or a write failed).
	send := func() (done bool) {
		j, counts, offline, err := a.jobNow(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				a.Log.Error().Err(err).Str("job_id", id).Msg("stream job events")
				sw.Event("failed", strconv.AppendQuote(nil, "reading the job failed on the relay; see its log"))
			}
			return true
		}
		out := a.jobJSON(j, counts, nil)
		out.Offline = offline
		data, err := json.Marshal(out)
		if err != nil {
			return true
		}
		if !j.EndedAt.IsZero() {
			sw.Event("end", data)
			return true
		}
		if string(data) == string(last) {
			return false
		}
		last = data
		if !sw.Event("progress", data) {
			return true
		}
		if j.Total > jobLiveResults {
			return false
		}
		runs, err := a.Store.JobRuns(ctx, id, -1, jobLiveResults)
		if err != nil {
			if ctx.Err() == nil {
				a.Log.Error().Err(err).Str("job_id", id).Msg("stream job results")
			}
			return true
		}
		results := make([]apiv1.RunResult, 0, len(runs))
		for _, run := range runs {
			results = append(results, runJSON(run))
		}
		if data, err = json.Marshal(results); err != nil {
			return true
		}
		return !sw.Event("results", data)
	}
	keepalive := time.NewTicker(jobStreamKeepalive)
	defer keepalive.Stop()
	maxAge := time.NewTimer(jobStreamMaxAge)
	defer maxAge.Stop()
	for {
		if send() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-streams.Done():
			return
		case <-maxAge.C:
			return // the EventSource reconnects, authenticating again
		case <-keepalive.C:
			if !sw.Keepalive() {
				return
			}
			continue // and read again: the count of offline agents may have moved
		case <-wake:
		}
		// Coalesce a burst of changes into one event.
		gap := time.NewTimer(jobEventGap)
		select {
		case <-ctx.Done():
			gap.Stop()
			return
		case <-streams.Done():
			gap.Stop()
			return
		case <-gap.C:
		}
	}
}

// jobNow reads a job's current state: from the dispatcher while it is open,
// else from the store.
func (a *API) jobNow(ctx context.Context, id string) (store.Job, map[string]int, int, error) {
	if j, c, offline, ok := a.Jobs.Progress(id); ok {
		return j, c.ByState, offline, nil
	}
	j, err := a.Store.GetJob(ctx, id)
	if err != nil {
		return store.Job{}, nil, 0, err
	}
	return a.jobState(ctx, j)
}
