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
