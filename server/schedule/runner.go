package schedule

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/server/store"
)

// Grace is how late a firing may still run: a firing missed while every
// relay was down (or the database was unreachable) runs once when a relay
// is back within Grace of its time; one older than that is skipped. Either
// way the firings missed in between are not made up one by one: the next
// fire time is the first one after now.
const Grace = time.Hour

// Firer creates the job of a due schedule's firing at sc.NextFire, moving
// the schedule's next fire time to next (api.API.Fire).
type Firer interface {
	Fire(ctx context.Context, sc store.Schedule, next time.Time) (jobID string, err error)
}

// Runner fires due schedules. Every relay of a tier runs one: each firing
// is claimed in the store in the transaction that creates its job, so the
// job is created once whichever relay gets there first.
//
// Ownership: Start starts its one goroutine; Close stops it and waits.
type Runner struct {
	st   *store.Store
	fire Firer
	log  zerolog.Logger
	now  func() time.Time
	tick time.Duration

	stop chan struct{}
	done chan struct{}
}

// NewRunner returns a runner that looks for due schedules every second.
func NewRunner(st *store.Store, f Firer, log zerolog.Logger) *Runner {
	return &Runner{st: st, fire: f, log: log, now: time.Now, tick: time.Second,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start starts the runner's goroutine.
func (r *Runner) Start() {
	go r.loop()
}

// Close stops the runner and waits for it (a firing under way finishes).
func (r *Runner) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

func (r *Runner) loop() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		r.runDue(ctx)
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// runDue fires every schedule due now.
func (r *Runner) runDue(ctx context.Context) {
	now := r.now()
	due, err := r.st.DueSchedules(ctx, now)
	if err != nil {
		r.log.Error().Err(err).Msg("due schedules")
		return
	}
	for _, sc := range due {
		if err := r.one(ctx, sc, now); err != nil && !errors.Is(err, context.Canceled) {
			r.log.Error().Err(err).Str("schedule", sc.Name).Msg("fire schedule")
		}
	}
}

func (r *Runner) one(ctx context.Context, sc store.Schedule, now time.Time) error {
	spec, err := Parse(sc.Cron, sc.TZ)
	if err != nil {
		_, serr := r.st.SkipFiring(ctx, sc.ID, sc.NextFire, now.Add(24*time.Hour), err.Error())
		return errors.Join(err, serr)
	}
	last, next, run := plan(spec, sc.NextFire, now)
	if !run {
		ok, err := r.st.SkipFiring(ctx, sc.ID, sc.NextFire, next, "missed: no relay ran at "+last.Format(time.RFC3339))
		if ok {
			r.log.Warn().Str("schedule", sc.Name).Time("missed", last).Msg("firing missed by more than the grace period: skipped")
		}
		return err
	}
	id, err := r.fire.Fire(ctx, sc, next)
	if id != "" {
		r.log.Info().Str("schedule", sc.Name).Str("job_id", id).Time("fire", last).Msg("scheduled job created")
	}
	return err
}

// plan decides a due firing stored at stored: last is the latest fire time
// at or before now (stored, or a later one missed while no relay ran),
// next the first after now, and run whether last is within Grace of now.
// The loop is bounded for a seconds spec missed for long.
func plan(spec Spec, stored, now time.Time) (last, next time.Time, run bool) {
	last = stored
	for range 100000 {
		n := spec.Next(last)
		if n.After(now) {
			break
		}
		last = n
	}
	return last, spec.Next(now), now.Sub(last) <= Grace
}
