package checks

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/wire"
)

// PluginRunner runs a plugin (agent/runner.Runner).
type PluginRunner interface {
	Run(ctx context.Context, req wire.RunRequest, hooks runner.Hooks) wire.RunResult
}

// PluginCheck runs a plugin check through r as a dry run: the plugin is
// verified against the agent's allowed_signers like any run, and only its
// Check is called (nothing changes, so no journal entry). Check found
// nothing to fix: passed; found something: failed; could not run: error.
func PluginCheck(r PluginRunner) func(ctx context.Context, p wire.Policy) (state, summary string) {
	return func(ctx context.Context, p wire.Policy) (string, string) {
		timeout := checkTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = max(time.Until(dl), time.Second)
		}
		res := r.Run(ctx, wire.RunRequest{
			RunID: uuid.Must(uuid.NewV7()).String(), JobID: p.ID, Plugin: *p.Plugin, Params: p.Params,
			DryRun: true, Timeout: wire.Duration(timeout), Requester: "policy " + p.Name,
		}, runner.Hooks{})
		switch {
		case res.State == wire.StateSkipped && !res.Needed:
			return wire.CheckPassed, clipSummary(res.Summary)
		case res.State == wire.StateSucceeded && res.Needed:
			return wire.CheckFailed, clipSummary(res.Summary)
		}
		msg := res.Error
		if msg == "" {
			msg = res.Summary
		}
		return wire.CheckError, clipSummary("plugin " + p.Check + ": " + res.State + ": " + msg)
	}
}
