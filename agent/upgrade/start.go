package upgrade

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/journal"
)

// MaxStarts is how many times the new version may start without
// connecting: at the start after that many it restores the previous binary.
const MaxStarts = 3

// CountStart is called by "patchbay-agent run" as early as it can, before
// anything that could crash (connecting above all). For a pending upgrade
// to version it records one more start of the new version, durably (the
// journal writes atomically), and the first start's time. It then decides
// whether to roll back now:
//
//   - more than MaxStarts starts: the new version crashed (or was stopped)
//     that many times before it connected; under a service manager it would
//     crash-loop on it forever;
//   - the rollback window, measured from the FIRST start of the new version
//     (see deadline), has passed: a restart does not get the window again.
//
// Then it records the reason with the upgrade (so the old version reports
// the run failed with it, once), restores EXE.prev and returns true: the
// caller restarts into the restored binary and starts nothing else. If the
// record or the restore fails it logs that and returns false: the agent goes
// on with the new version (Resume retries a recorded rollback).
func CountStart(j *journal.Journal, version string, now time.Time, log zerolog.Logger) bool {
	entries, err := j.PendingUpgrades()
	if err != nil {
		log.Error().Err(err).Msg("upgrade: read the pending upgrades at start")
		return false
	}
	now = now.UTC()
	for _, e := range entries {
		up := *e.Upgrade
		if up.To != version || up.RolledBack != "" {
			continue
		}
		l := log.With().Str("run_id", e.RunID).Str("from", up.From).Str("to", up.To).Logger()
		up.Starts++
		if up.FirstStart.IsZero() {
			up.FirstStart = now
		}
		switch dl := deadline(up, now); {
		case up.Starts > MaxStarts:
			up.RolledBack = fmt.Sprintf("rolled back: %s crashed %d times before it connected", up.To, up.Starts-1)
		case now.After(dl):
			up.RolledBack = fmt.Sprintf("rolled back: %s did not reconnect within %s", up.To, up.Deadline.Sub(up.Swapped))
		}
		if _, err := j.Upgrade(e.RunID, up, now); err != nil {
			l.Error().Err(err).Msg("upgrade: cannot record this start of the new version")
			return false
		}
		if up.RolledBack == "" {
			l.Info().Int("start", up.Starts).Int("max_starts", MaxStarts).Time("deadline", deadline(up, now)).Msg("upgrade: start of the new version recorded")
			return false
		}
		if err := restore(up.Exe); err != nil {
			l.Error().Err(err).Str("reason", up.RolledBack).Msg("upgrade: cannot restore the previous binary; keeping the new version")
			return false
		}
		l.Warn().Str("reason", up.RolledBack).Msg("upgrade: previous binary restored; restarting into it")
		return true
	}
	return false
}

// deadline is when the new version of up must have connected: the
// rollback window from its first start (now if it has not started yet), or
// the deadline recorded at the swap if that is later. A machine shut down
// right after the swap thus gets the whole window at its next boot, but
// later restarts (crashes) do not extend it.
func deadline(up journal.Upgrade, now time.Time) time.Time {
	first := up.FirstStart
	if first.IsZero() {
		first = now
	}
	if d := first.Add(up.Deadline.Sub(up.Swapped)); d.After(up.Deadline) {
		return d
	}
	return up.Deadline
}
