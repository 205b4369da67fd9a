package jobs

import (
	"testing"
	"time"

	"github.com/patchbay/patchbay/server/store"
)

// A watch wakes when a run of its job finishes and when the job ends, and
// not for another job; stopping it removes it.
func TestWatchWakesOnChanges(t *testing.T) {
	f := newFixture(t, 2)
	for _, a := range f.agents {
		a.hold = true
	}
	j := f.createJob(nil)
	wake, stop := f.d.Watch(j.ID)
	other, stopOther := f.d.Watch("another-job")
	defer stopOther()
	f.waitHeld(1, f.agents...)
	drain(wake) // the job being loaded and its runs sent

	await := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case <-time.After(20 * time.Second):
			t.Fatalf("no wake after %s", what)
		}
	}
	f.agents[0].finish(store.RunSucceeded)
	await("a run finished")
	waitFor(t, "the first result counted", func() bool {
		_, c, _, ok := f.d.Progress(j.ID)
		return ok && c.ByState[store.RunSucceeded] == 1
	})
	f.agents[1].finish(store.RunSucceeded)
	f.waitEnd(j.ID)
	await("the job ended")
	select {
	case <-other:
		t.Fatal("a watch of another job woke")
	default:
	}
	if n := f.d.Watchers(); n != 2 {
		t.Fatalf("%d watches open, want 2", n)
	}
	stop()
	if n := f.d.Watchers(); n != 1 {
		t.Fatalf("%d watches open after stop, want 1", n)
	}
}

func drain(c <-chan struct{}) {
	select {
	case <-c:
	default:
	}
}
