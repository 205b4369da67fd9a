package service

import "context"

// Run runs the agent's loop, run, until ctx ends or run returns. When this
// process was started by the Windows service manager, it runs as that
// service instead: it reports Running, answers Interrogate, and turns Stop
// and Shutdown into cancelling run's context, then waits for run to return.
// Elsewhere (and for a Windows agent started from a console) it is run(ctx):
// on Unix the caller stops it with SIGTERM/SIGINT through ctx.
func Run(ctx context.Context, run func(context.Context) error) error {
	return runService(ctx, run)
}

// Control is a request of a service manager, as the Windows one sends them.
type Control int

const (
	ControlInterrogate Control = iota // report the current state again
	ControlStop                       // stop the service
	ControlShutdown                   // the machine shuts down: stop
	ControlOther                      // anything else: ignored
)

// State is what the service reports to its manager.
type State int

const (
	StateStarting State = iota
	StateRunning
	StateStopping
)

// Supervise runs run under a service manager: it reports StateStarting, then
// StateRunning while run runs on a goroutine it owns; it answers
// ControlInterrogate with the current state, and ControlStop or
// ControlShutdown by reporting StateStopping, cancelling run's context and
// waiting for run to return. It returns when run has returned (also when
// run ends by itself, or ctx ends), with run's error. The Windows service
// handler is a thin translation of this to golang.org/x/sys/windows/svc.
func Supervise(ctx context.Context, run func(context.Context) error, controls <-chan Control, report func(State)) (stopped bool, err error) {
	report(StateStarting)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	state := StateRunning
	report(state)
	for {
		select {
		case err := <-done:
			report(StateStopping)
			return false, err
		case c := <-controls:
			switch c {
			case ControlInterrogate:
				report(state)
			case ControlStop, ControlShutdown:
				state = StateStopping
				report(state)
				cancel()
				return true, <-done
			}
		}
	}
}
