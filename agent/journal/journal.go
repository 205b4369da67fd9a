// Package journal is the agent's on-disk record of runs, which makes
// execution exactly once even though delivery is at least once.
//
// Each run is one small JSON file, DIR/<run id>.json, written atomically and
// fsynced (internal/atomicfile) at these points:
//
//	Begin   before the plugin is launched       (state "started")
//	Consent when the person at the machine (or the policy) decided on a fix
//	        that needs consent, before Fix runs  (decision kept)
//	Reboot  when the restart a fix requires was decided, before the restart
//	        command runs                         (decision and the result so far kept)
//	Upgrade when an agent self-update verified the new binary, before the
//	        binary is swapped and the agent restarts (agent/upgrade)
//	Finish  when the result is known            (state "done", result kept)
//	Ack     when the relay has stored the result (acked; result dropped)
//	Forget  when the run could not start because its plugin could not be
//	        downloaded (file removed: nothing ran, a redelivery runs it)
//
// A redelivered run whose file exists is never run again: a finished one
// sends its stored result again; one that was started but has no result
// (the agent died mid-run) is finished as failed ("interrupted") by Recover
// at start-up, or as skipped when the fix was denied consent (Fix never ran),
// or with the result kept by Reboot when the restart was decided (the agent
// most likely stopped because the machine restarted);
// either way its consent decision goes with the result, and nobody is asked
// twice. A run with an Upgrade record is left to agent/upgrade, which
// finishes it once the restarted agent knows how the upgrade went. Acked entries are kept as tombstones for Retain (default 30
// days, longer than any job's expiry) so late redeliveries are recognised,
// then pruned.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/internal/wire"
)

// DefaultRetain is how long acknowledged runs are remembered.
const DefaultRetain = 30 * 24 * time.Hour

// Entry states.
const (
	Started = "started"
	Done    = "done"
)

// ErrExists is returned by Begin for a run the journal already knows.
var ErrExists = errors.New("run already in the journal")

// Entry is one run's record.
type Entry struct {
	RunID   string           `json:"run_id"`
	JobID   string           `json:"job_id"`
	State   string           `json:"state"`
	Acked   bool             `json:"acked,omitempty"`
	Begun   time.Time        `json:"begun"`
	Updated time.Time        `json:"updated"`
	Result  *wire.RunResult  `json:"result,omitempty"`
	Plugin  wire.ArtifactRef `json:"plugin"`
	// Consent is the decision on a fix that needs consent, recorded before
	// Fix runs; nil when nobody was asked (yet).
	Consent *wire.RunConsent `json:"consent,omitempty"`
	// Reboot is the decision on the restart the fix required, recorded
	// before the restart command runs; nil when there was none (yet).
	Reboot *Reboot `json:"reboot,omitempty"`
	// Upgrade is a self-update of the agent in progress, recorded before
	// the binary is swapped; nil for plugin runs.
	Upgrade *Upgrade `json:"upgrade,omitempty"`
}

// Upgrade is a pending self-update as the journal keeps it: what the agent
// that restarts finds, to report the run (agent/upgrade).
type Upgrade struct {
	From     string    `json:"from"`     // the version that swapped the binary
	To       string    `json:"to"`       // the version it swapped in
	Exe      string    `json:"exe"`      // the executable's path; the previous binary is Exe+".prev"
	Swapped  time.Time `json:"swapped"`  // when the swap was decided
	Deadline time.Time `json:"deadline"` // To must have reconnected by then, else it restores From
	// Starts counts the starts of To while the upgrade is pending, recorded
	// at each start before anything that could crash; FirstStart is the
	// first of them. Too many starts (To crashes) or the window measured
	// from FirstStart passing make To restore From (agent/upgrade).
	Starts     int       `json:"starts,omitempty"`
	FirstStart time.Time `json:"first_start,omitzero"`
	// RolledBack is set by To before it restores the previous binary:
	// From reports the run failed with this reason.
	RolledBack string `json:"rolled_back,omitempty"`
}

// Reboot is a restart decision as the journal keeps it.
type Reboot struct {
	Choice string    `json:"choice,omitempty"` // now, 1h, tonight; "" no restart
	By     string    `json:"by"`
	Text   string    `json:"text"` // as the result's details say it
	At     time.Time `json:"at"`
	When   time.Time `json:"when,omitzero"` // when the machine restarts
	// Result is the run's result with Text in its details: what Recover
	// reports if the agent stops before Finish (the restart itself).
	Result wire.RunResult `json:"result"`
}

// Journal is safe for concurrent use.
type Journal struct {
	dir    string
	retain time.Duration
	mu     sync.Mutex // serialises read-modify-write of one file at a time
}

// Open opens (creating, 0700) the journal directory.
func Open(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &Journal{dir: dir, retain: DefaultRetain}, nil
}

func (j *Journal) path(runID string) (string, error) {
	if !wire.ValidUUID(runID) {
		return "", fmt.Errorf("journal: run id %q is not a UUID", runID)
	}
	return filepath.Join(j.dir, runID+".json"), nil
}

// Get returns the entry of runID, or ok=false if there is none.
func (j *Journal) Get(runID string) (Entry, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.get(runID)
}

func (j *Journal) get(runID string) (Entry, bool, error) {
	p, err := j.path(runID)
	if err != nil {
		return Entry{}, false, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("journal: read %s: %w", runID, err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, false, fmt.Errorf("journal: %s is corrupt: %w", p, err)
	}
	return e, true, nil
}

func (j *Journal) put(e Entry) error {
	p, err := j.path(e.RunID)
	if err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal: encode %s: %w", e.RunID, err)
	}
	if err := atomicfile.Write(p, b, 0o600); err != nil {
		return fmt.Errorf("journal: write %s: %w", e.RunID, err)
	}
	return nil
}

// Begin records that req is about to run. It returns the existing entry
// and ErrExists if the run is already known, in which case the caller must
// not run it.
func (j *Journal) Begin(req wire.RunRequest, now time.Time) (Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e, ok, err := j.get(req.RunID); err != nil {
		return Entry{}, err
	} else if ok {
		return e, ErrExists
	}
	e := Entry{RunID: req.RunID, JobID: req.JobID, State: Started, Begun: now, Updated: now, Plugin: req.Plugin}
	return e, j.put(e)
}

// Finish stores the result of a begun run.
func (j *Journal) Finish(res wire.RunResult, now time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok, err := j.get(res.RunID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("journal: finish %s: never begun", res.RunID)
	}
	if e.State == Done {
		return nil // first result wins
	}
	e.State, e.Result, e.Updated = Done, &res, now
	return j.put(e)
}

// Forget removes a begun run that never got further than downloading its
// plugin (the relay could not be reached), so that a redelivery runs it:
// nothing of it ran. It refuses a run that is done or has a consent or
// restart decision. A run it does not know is already forgotten.
func (j *Journal) Forget(runID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok, err := j.get(runID)
	if err != nil || !ok {
		return err
	}
	if e.State != Started || e.Consent != nil || e.Reboot != nil || e.Upgrade != nil {
		return fmt.Errorf("journal: forget %s: the run went further than its download; it stays recorded", runID)
	}
	p, _ := j.path(runID)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: forget %s: %w", runID, err)
	}
	return nil
}

// Consent records the decision on a begun run's fix before Fix runs. The
// first decision stays: a later call changes nothing.
func (j *Journal) Consent(runID string, c wire.RunConsent, now time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok, err := j.get(runID)
	if err != nil {
		return err
	}
	if !ok || e.State != Started {
		return fmt.Errorf("journal: consent for %s: not a run in progress", runID)
	}
	if e.Consent != nil {
		return nil
	}
	e.Consent, e.Updated = &c, now
	return j.put(e)
}

// Reboot records the restart decision of a begun run, before the restart
// command runs. The first decision stays: a later call changes nothing and
// returns the decision recorded first, which the caller must follow.
func (j *Journal) Reboot(runID string, r Reboot, now time.Time) (Reboot, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok, err := j.get(runID)
	if err != nil {
		return Reboot{}, err
	}
	if !ok || e.State != Started {
		return Reboot{}, fmt.Errorf("journal: reboot for %s: not a run in progress", runID)
	}
	if e.Reboot != nil {
		return *e.Reboot, nil
	}
	e.Reboot, e.Updated = &r, now
	return r, j.put(e)
}

// Upgrade records (or, once recorded, updates) the pending self-update of a
// begun run. It returns the record as stored.
func (j *Journal) Upgrade(runID string, u Upgrade, now time.Time) (Upgrade, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok, err := j.get(runID)
	if err != nil {
		return Upgrade{}, err
	}
	if !ok || e.State != Started {
		return Upgrade{}, fmt.Errorf("journal: upgrade for %s: not a run in progress", runID)
	}
	e.Upgrade, e.Updated = &u, now
	return u, j.put(e)
}

// PendingUpgrades returns the begun runs with an Upgrade record and no
// result yet, oldest first.
func (j *Journal) PendingUpgrades() ([]Entry, error) {
	entries, err := j.list()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		if e.State == Started && e.Upgrade != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// Ack records that the relay stored the result; the result itself is
// dropped and the entry kept as a tombstone.
func (j *Journal) Ack(runID string, now time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok, err := j.get(runID)
	if err != nil || !ok || e.State != Done || e.Acked {
		return err
	}
	e.Acked, e.Updated, e.Consent = true, now, nil
	if e.Reboot != nil { // keep the decision (redeliveries never restart twice), drop the copy of the result
		e.Reboot.Result = wire.RunResult{}
	}
	e.Result = &wire.RunResult{RunID: e.Result.RunID, State: e.Result.State, Ended: e.Result.Ended}
	return j.put(e)
}

// Recover finishes every run that was begun but has no result as failed
// (the agent stopped while it ran) and prunes tombstones older than the
// retention. Call it once at start-up, before any run starts.
func (j *Journal) Recover(now time.Time) (interrupted int, err error) {
	entries, err := j.list()
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		switch {
		case e.State == Started && e.Upgrade != nil:
			// A self-update: agent/upgrade finishes it (succeeded once the new
			// version is connected, failed once it was rolled back).
		case e.State == Started && e.Reboot != nil:
			// Fix succeeded and the restart was decided: most likely the
			// restart stopped the agent. Report what was decided.
			res := e.Reboot.Result
			res.RunID, res.Ended = e.RunID, now
			if err := j.Finish(res, now); err != nil {
				return interrupted, err
			}
			interrupted++
		case e.State == Started:
			res := wire.RunResult{
				RunID: e.RunID, State: wire.StateFailed, Version: e.Plugin.Version,
				Error:   "interrupted: the agent stopped while this run was in progress; it was not restarted, to avoid running a fix twice",
				Started: e.Begun, Ended: now, Consent: e.Consent,
			}
			if c := e.Consent; c != nil && !c.Approved {
				// Denied: Fix never ran, whatever stopped the agent after.
				res.State, res.Error, res.Needed = wire.StateSkipped, "", true
				res.Summary = "fix not run: " + c.Message
			}
			if err := j.Finish(res, now); err != nil {
				return interrupted, err
			}
			interrupted++
		case e.Acked && now.Sub(e.Updated) > j.retain:
			p, _ := j.path(e.RunID)
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return interrupted, fmt.Errorf("journal: prune %s: %w", e.RunID, err)
			}
		}
	}
	return interrupted, nil
}

// Unacked returns the results not yet acknowledged by the relay, oldest
// first; the agent sends them again after every reconnect.
func (j *Journal) Unacked() ([]wire.RunResult, error) {
	entries, err := j.list()
	if err != nil {
		return nil, err
	}
	var out []wire.RunResult
	for _, e := range entries {
		if e.State == Done && !e.Acked && e.Result != nil {
			out = append(out, *e.Result)
		}
	}
	return out, nil
}

// list reads every entry; run IDs are UUIDv7, so name order is time order.
func (j *Journal) list() ([]Entry, error) {
	names, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("journal: list: %w", err)
	}
	var out []Entry
	for _, d := range names {
		id, ok := strings.CutSuffix(d.Name(), ".json")
		if !ok || !wire.ValidUUID(id) {
			continue // atomicfile temp files and strangers
		}
		e, found, err := j.Get(id)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, e)
		}
	}
	return out, nil
}
