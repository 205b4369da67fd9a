package checks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/internal/wire"
)

// Files in the engine's directory, each written atomically with mode 0600.
const (
	policiesFile = "policies.json" // the relay's last policy set
	stateFile    = "state.json"    // results not yet acknowledged, per-policy state
)

// maxQueue bounds the results kept while the relay is unreachable; the
// oldest go first. A result unchanged from the one before it replaces it
// (only its time moves on), so the queue grows only with state changes.
const maxQueue = 1024

// state is what the engine keeps across restarts.
type state struct {
	Queue    []wire.CheckResult      `json:"queue"`
	Policies map[string]*policyState `json:"policies"` // by policy ID
}

// policyState is one policy's history on this agent.
type policyState struct {
	Last   string    `json:"last,omitempty"` // last state found
	LastAt time.Time `json:"last_at"`        // when it was found
	// NoRepeat: a self-heal did not help; no fix is asked for again until
	// the check has passed once.
	NoRepeat bool        `json:"no_repeat,omitempty"`
	Fixes    []time.Time `json:"fixes,omitempty"` // self-heals granted within the last day
	Pending  *pendingFix `json:"pending,omitempty"`
}

// pendingFix is a self-heal asked for and not yet checked again.
type pendingFix struct {
	RequestID string    `json:"request_id"`
	Summary   string    `json:"summary,omitempty"`
	JobID     string    `json:"job_id,omitempty"` // set by the relay's answer
	Done      bool      `json:"done,omitempty"`   // the fix's run ended: check again
	At        time.Time `json:"at"`
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checks: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("checks: %s is damaged (%v): delete it; the relay sends the policies again and results start over", path, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checks: encode %s: %w", filepath.Base(path), err)
	}
	if err := atomicfile.WriteSecret(path, b); err != nil {
		return fmt.Errorf("checks: write %s: %w", path, err)
	}
	return nil
}
