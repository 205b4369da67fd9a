package upgrade

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/internal/wire"
)

// Resume handles the journaled upgrades at the agent's start, before the
// worker starts (its Recover leaves them alone). ctx is the agent's: when it
// ends the agent is stopping (or restarting).
//
//   - This is the old version back after a rollback: the run is finished
//     failed with the reason.
//   - This is the old version and no rollback was recorded: the agent
//     stopped before the new binary took over; the run is finished failed.
//   - This is the new version: it waits for Connected until the rollback
//     window, from its first start (CountStart), has passed, then rolls
//     back (a goroutine, stopped by Close). CountStart, called earlier, has
//     already rolled back a version that keeps crashing.
func (u *Upgrader) Resume(ctx context.Context) error {
	u.mu.Lock()
	u.ctx = ctx
	u.mu.Unlock()
	entries, err := u.cfg.Journal.PendingUpgrades()
	if err != nil {
		return err
	}
	now := u.cfg.Now().UTC()
	for i := range entries {
		e := entries[i]
		up := *e.Upgrade
		log := u.cfg.Log.With().Str("run_id", e.RunID).Str("from", up.From).Str("to", up.To).Logger()
		res := wire.RunResult{RunID: e.RunID, State: wire.StateFailed, Started: e.Begun, Ended: now, Version: u.cfg.Version,
			Details: Details{Before: up.From, After: u.cfg.Version, RolledBack: up.RolledBack != ""}.String()}
		switch {
		case u.cfg.Version == up.To && u.pendingSet():
			res.Error = "another upgrade to the same version was pending; this one was not carried out"
		case u.cfg.Version == up.To:
			u.arm(&e)
			log.Info().Time("deadline", up.Deadline).Msg("upgrade: running the new version; waiting for the link to the relay")
			continue
		case up.RolledBack != "":
			res.Error = up.RolledBack
		case u.cfg.Version == up.From:
			res.Error = fmt.Sprintf("interrupted: the agent stopped before it switched to %s; it still runs %s", up.To, up.From)
		default:
			res.Error = fmt.Sprintf("the agent restarted as version %s, neither %s nor %s: someone else replaced %s", u.cfg.Version, up.From, up.To, up.Exe)
		}
		log.Warn().Str("error", res.Error).Msg("upgrade failed")
		if err := u.cfg.Journal.Finish(res, now); err != nil {
			return err
		}
	}
	return nil
}

func (u *Upgrader) pendingSet() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pending != nil
}

// arm remembers the pending upgrade to this version and starts the
// rollback timer.
func (u *Upgrader) arm(e *journal.Entry) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pending = e
	ctx, cancel := context.WithCancel(u.ctx)
	u.stop, u.done = cancel, make(chan struct{})
	// The window runs from the new version's first start (CountStart
	// records it): a machine shut down right after the swap gets it whole
	// at its next boot, a restart does not get it again.
	deadline := deadline(*e.Upgrade, u.cfg.Now())
	if e.Upgrade.RolledBack != "" {
		deadline = time.Time{} // decided already: finish the rollback at once
	}
	go func() {
		defer close(u.done)
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-u.connected:
		case <-t.C:
			u.rollback()
		}
	}()
}

// Connected is called when the link is up, before the worker resends
// results: a pending upgrade to this version is finished succeeded.
func (u *Upgrader) Connected() {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.pending
	if e == nil {
		return
	}
	u.pending = nil
	if e.Upgrade.RolledBack != "" {
		return // too late: the rollback is under way
	}
	up := *e.Upgrade
	now := u.cfg.Now().UTC()
	res := wire.RunResult{
		RunID: e.RunID, State: wire.StateSucceeded, Needed: true, Changed: true, Version: up.To,
		Summary: fmt.Sprintf("upgraded from %s to %s", up.From, up.To),
		Details: Details{Before: up.From, After: up.To, Reconnected: now.Sub(up.Swapped).Round(time.Millisecond).String(),
			RollbackAfter: up.Deadline.Sub(up.Swapped).String()}.String(),
		Started: e.Begun, Ended: now,
	}
	if err := u.cfg.Journal.Finish(res, now); err != nil {
		u.cfg.Log.Error().Err(err).Str("run_id", e.RunID).Msg("upgrade: journal the result")
		return
	}
	close(u.connected)
	u.cfg.Log.Info().Str("run_id", e.RunID).Str("from", up.From).Str("to", up.To).Msg("upgrade succeeded: connected on the new version")
}

// rollback restores the previous binary: journaled first (so the old
// version reports the run failed), then renamed back, then a restart.
func (u *Upgrader) rollback() {
	u.mu.Lock()
	e := u.pending
	if e == nil {
		u.mu.Unlock()
		return
	}
	up := *e.Upgrade
	log := u.cfg.Log.With().Str("run_id", e.RunID).Str("from", up.From).Str("to", up.To).Logger()
	if up.RolledBack == "" {
		up.RolledBack = fmt.Sprintf("rolled back: %s did not reconnect within %s", up.To, up.Deadline.Sub(up.Swapped))
		if _, err := u.cfg.Journal.Upgrade(e.RunID, up, u.cfg.Now().UTC()); err != nil {
			u.mu.Unlock()
			log.Error().Err(err).Msg("upgrade: cannot record the rollback; keeping the new version")
			return
		}
		e.Upgrade = &up
	}
	u.mu.Unlock()
	if err := restore(up.Exe); err != nil {
		log.Error().Err(err).Msg("upgrade: cannot restore the previous binary; keeping the new version")
		return
	}
	log.Warn().Str("reason", up.RolledBack).Msg("upgrade: previous binary restored; restarting into it")
	u.restart()
}

// Details are a self-update run's details, as JSON (patchbay jobs show
// -o json has them under details.data).
type Details struct {
	Before        string `json:"version_before"`
	After         string `json:"version_after"`
	Reconnected   string `json:"reconnected_after,omitempty"` // from the swap to the new version's link
	RollbackAfter string `json:"rollback_after,omitempty"`
	RolledBack    bool   `json:"rolled_back,omitempty"`
}

func (d Details) String() string {
	b, _ := json.Marshal(d)
	return string(b)
}

// Close stops the rollback timer and waits for it.
func (u *Upgrader) Close() {
	u.mu.Lock()
	stop, done := u.stop, u.done
	u.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}
