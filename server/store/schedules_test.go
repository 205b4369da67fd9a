package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Claiming a firing twice, in turn and at once from two stores over one
// database (two relays of a tier), creates one job; the next firing is then
// free to claim.
func TestFiringClaimedOnce(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	s2 := openTestStore(t, url) // a second relay on the same database
	mkToken(t, s, "tok", func(e *EnrollToken) { e.UsesAllowed = 0 })
	if _, _, err := s.EnrollAgent(ctx, "tok", Agent{Hostname: "h1"}, ts); err != nil {
		t.Fatal(err)
	}
	first := ts.Add(time.Minute).Truncate(time.Minute)
	sc := Schedule{ID: NewID(), Name: "nightly", Kind: ScheduleJob, Cron: "* * * * *", TZ: "UTC", Request: `{"plugin":"p","target":"all"}`,
		NextFire: first, CreatedBy: "t", CreatedAt: ts}
	if err := s.CreateSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSchedule(ctx, Schedule{ID: NewID(), Name: "nightly", Kind: ScheduleJob, Request: "{}", NextFire: first, CreatedBy: "t", CreatedAt: ts}); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("second schedule named nightly: %v, want ErrNameTaken", err)
	}
	due, err := s.DueSchedules(ctx, first)
	if err != nil || len(due) != 1 || !due[0].NextFire.Equal(first) {
		t.Fatalf("due at %s = %+v, %v; want the schedule", first, due, err)
	}
	if due, _ := s.DueSchedules(ctx, first.Add(-time.Second)); len(due) != 0 {
		t.Fatalf("due before its time: %+v", due)
	}
	fire := func(st *Store, at time.Time) (string, error) {
		j := Job{ID: NewID(), Plugin: "p", PluginVersion: "1.0.0", Target: "all", State: JobRunning, MaxFailures: -1, MaxFailuresBP: -1,
			CreatedAt: at, ExpiresAt: at.Add(time.Hour), ScheduleID: sc.ID, Window: `{"name":"w"}`, Sites: []string{DefaultSiteID}}
		fctx := WithFiring(ctx, sc.ID, at, at.Add(time.Minute))
		err := st.CreateJobStream(fctx, &j, func(ctx context.Context, emit func([]Run) error) error {
			page, err := st.TargetPage(ctx, Scope{All: true}, "", 10, false)
			if err != nil {
				return err
			}
			for _, a := range page {
				if err := emit([]Run{{ID: NewID(), Seq: j.Total, AgentID: a.ID, Hostname: a.Hostname, State: RunPending}}); err != nil {
					return err
				}
				j.Total++
			}
			return nil
		})
		return j.ID, err
	}
	// In turn: the second claim of the same fire time fails.
	id, err := fire(s, first)
	if err != nil {
		t.Fatalf("first claim: %v", err)
	}
	if _, err := fire(s2, first); !errors.Is(err, ErrFiringClaimed) {
		t.Fatalf("second claim of the same firing: %v, want ErrFiringClaimed", err)
	}
	j, err := s.GetJob(ctx, id)
	if err != nil || j.ScheduleID != sc.ID || j.Window != `{"name":"w"}` {
		t.Fatalf("job = %+v, %v; want schedule %s and its window", j, err, sc.ID)
	}
	got, err := s.GetSchedule(ctx, sc.ID)
	if err != nil || !got.NextFire.Equal(first.Add(time.Minute)) || got.LastJob != id || !got.LastFire.Equal(first) {
		t.Fatalf("schedule after firing = %+v, %v", got, err)
	}
	// At once, from both stores: exactly one wins.
	second := first.Add(time.Minute)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		st := s
		if i%2 == 1 {
			st = s2
		}
		wg.Go(func() { _, errs[i] = fire(st, second) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrFiringClaimed):
			t.Errorf("concurrent claim: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d claims of one firing won, want 1", won)
	}
	jobs, err := s.ListJobs(ctx, Scope{All: true}, 100)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("jobs = %d, %v; want 2 (one per firing)", len(jobs), err)
	}
	// A skipped firing is claimed once too, and makes no job.
	third := second.Add(time.Minute)
	if ok, err := s.SkipFiring(ctx, sc.ID, third, third.Add(time.Minute), "outside window"); !ok || err != nil {
		t.Fatalf("skip = %v, %v", ok, err)
	}
	if ok, err := s2.SkipFiring(ctx, sc.ID, third, third.Add(time.Minute), "outside window"); ok || err != nil {
		t.Fatalf("second skip = %v, %v; want false", ok, err)
	}
	// A paused schedule's firing cannot be claimed.
	if err := s.SetSchedulePaused(ctx, sc.ID, true, third.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := fire(s, third.Add(time.Minute)); !errors.Is(err, ErrFiringClaimed) {
		t.Fatalf("firing a paused schedule: %v, want ErrFiringClaimed", err)
	}
	if due, _ := s.DueSchedules(ctx, third.Add(time.Hour)); len(due) != 0 {
		t.Fatalf("paused schedule due: %+v", due)
	}
	if err := s.DeleteSchedule(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSchedule(ctx, sc.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted schedule: %v", err)
	}
}

func TestWindows(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	w := MaintWindow{ID: NewID(), Name: "nights", SiteID: DefaultSiteID, Cron: "0 22 * * *", TZ: "Europe/Paris", Duration: 2 * time.Hour, CreatedBy: "t", CreatedAt: ts}
	if err := s.CreateWindow(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWindow(ctx, MaintWindow{ID: NewID(), Name: "nights", SiteID: DefaultSiteID, Cron: "x", CreatedAt: ts}); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("same name on the site: %v", err)
	}
	got, err := s.GetWindow(ctx, w.ID)
	if err != nil || got.Duration != 2*time.Hour || got.TZ != "Europe/Paris" {
		t.Fatalf("window = %+v, %v", got, err)
	}
	if l, _ := s.ListWindows(ctx, ScopeOf([]string{"other"})); len(l) != 0 {
		t.Fatalf("window seen out of scope: %+v", l)
	}
	sc := Schedule{ID: NewID(), Name: "p", Kind: SchedulePatchPolicy, WindowID: w.ID, Request: "{}", NextFire: ts, CreatedBy: "t", CreatedAt: ts}
	if err := s.CreateSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWindow(ctx, w.ID); !errors.Is(err, ErrWindowInUse) {
		t.Fatalf("delete a window in use: %v", err)
	}
	if err := s.DeleteSchedule(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWindow(ctx, w.ID); err != nil {
		t.Fatal(fmt.Errorf("delete window: %w", err))
	}
}
