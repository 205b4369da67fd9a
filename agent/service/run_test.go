package service

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// supervised runs Supervise on a goroutine; states carries its reports.
type supervised struct {
	controls chan Control
	states   chan State
	done     chan struct{}
	stopped  bool
	err      error
}

func supervise(ctx context.Context, run func(context.Context) error) *supervised {
	s := &supervised{controls: make(chan Control), states: make(chan State, 16), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.stopped, s.err = Supervise(ctx, run, s.controls, func(st State) { s.states <- st })
	}()
	return s
}

func (s *supervised) next(t *testing.T) State {
	t.Helper()
	select {
	case st := <-s.states:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("no state reported within 10s")
		return 0
	}
}

func (s *supervised) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Supervise did not return within 10s")
	}
}

func TestSuperviseStop(t *testing.T) {
	for _, c := range []Control{ControlStop, ControlShutdown} {
		cancelled := make(chan struct{})
		s := supervise(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			close(cancelled)
			return nil
		})
		var got []State
		got = append(got, s.next(t), s.next(t))
		s.controls <- ControlOther
		s.controls <- ControlInterrogate
		got = append(got, s.next(t))
		s.controls <- c
		got = append(got, s.next(t))
		s.wait(t)
		<-cancelled
		if want := []State{StateStarting, StateRunning, StateRunning, StateStopping}; !slices.Equal(got, want) {
			t.Errorf("control %d: states %v, want %v", c, got, want)
		}
		if !s.stopped || s.err != nil {
			t.Errorf("control %d: stopped %v, err %v; want true, nil", c, s.stopped, s.err)
		}
	}
}

func TestSuperviseRunEnds(t *testing.T) {
	boom := errors.New("boom")
	s := supervise(context.Background(), func(context.Context) error { return boom })
	var got []State
	for range 3 {
		got = append(got, s.next(t))
	}
	s.wait(t)
	if want := []State{StateStarting, StateRunning, StateStopping}; !slices.Equal(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	if s.stopped || !errors.Is(s.err, boom) {
		t.Errorf("stopped %v, err %v; want false, boom", s.stopped, s.err)
	}

	// The caller's context ending (SIGTERM on a console run) stops run too.
	ctx, cancel := context.WithCancel(context.Background())
	s = supervise(ctx, func(ctx context.Context) error { <-ctx.Done(); return nil })
	s.next(t)
	s.next(t)
	cancel()
	s.wait(t)
	if s.stopped || s.err != nil {
		t.Errorf("after ctx ended: stopped %v, err %v", s.stopped, s.err)
	}
}
