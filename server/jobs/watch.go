package jobs

// Watching a job: the console's job screen follows a job's progress over a
// server-sent event stream (GET /v1/jobs/{id}/events) instead of polling.
// The dispatcher owns no goroutine for it: every change it makes to a job's
// counts or state (a run started or finished, runs ended unsent, the job
// halted, cancelled or ended, or loaded) wakes the job's watchers, and each
// stream's handler reads the job again (Progress) on its own goroutine. A
// wake never blocks and coalesces: a watcher that is behind reads the
// latest state once.

// Watch returns a channel (capacity 1) that receives when the job with
// jobID changes, and a function that stops the watch. Watch before reading
// the job, so that no change between the read and the watch is missed.
func (d *Dispatcher) Watch(jobID string) (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	d.wmu.Lock()
	if d.watchers == nil {
		d.watchers = map[string]map[chan struct{}]struct{}{}
	}
	set := d.watchers[jobID]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		d.watchers[jobID] = set
	}
	set[c] = struct{}{}
	d.wmu.Unlock()
	return c, func() {
		d.wmu.Lock()
		defer d.wmu.Unlock()
		delete(d.watchers[jobID], c)
		if len(d.watchers[jobID]) == 0 {
			delete(d.watchers, jobID)
		}
	}
}

// Watchers returns how many watches are open.
func (d *Dispatcher) Watchers() int {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	n := 0
	for _, set := range d.watchers {
		n += len(set)
	}
	return n
}

// changed wakes the job's watchers. It never blocks; it may be called with
// mu held (wmu is taken after mu, never before).
func (d *Dispatcher) changed(jobID string) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	for c := range d.watchers[jobID] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}
