package wire

import (
	"fmt"
	"regexp"
	"time"

	"github.com/patchbay/patchbay/internal/receipt"
)

// Control messages of remediation runs. A run is one job on one agent.
//
//	relay -> agent  run         RunRequest   (again after every reconnect until a result is acknowledged)
//	agent -> relay  run_started RunStarted   (the agent journaled the start and is launching)
//	agent -> relay  run_result  RunResult    (again after every reconnect until acknowledged)
//	relay -> agent  run_ack     RunAck       (the result is committed to the relay's store)
//	relay -> agent  run_cancel  RunCancel    (stop if running; report cancelled)
//	agent -> relay  run_not_started RunNotStarted (nothing ran: the plugin could not be fetched; send it again later)
//
// Delivery is at least once in both directions; the agent's journal makes
// execution exactly once per run ID.
const (
	MsgRun        = "run"
	MsgRunStarted = "run_started"
	MsgRunResult  = "run_result"
	MsgRunAck     = "run_ack"
	MsgRunCancel  = "run_cancel"
	// MsgRunNotStarted: the agent could not start the run (its plugin or
	// script could not be downloaded from the relay: the relay went away,
	// or answered with an error) and forgot it. Nothing ran, so the relay
	// puts the run back to pending and sends it again later; until then a
	// redelivery of the same run is simply run. Not acknowledged: if it is
	// lost with the link, the relay sends the run again when the agent
	// reconnects, which has the same effect.
	MsgRunNotStarted = "run_not_started"
)

// Run states. Every run ends in exactly one of the final states.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateSkipped   = "skipped" // Check found nothing to fix, or the fix was not consented to (RunResult.Consent)
	StateCancelled = "cancelled"
	StateHalted    = "halted"
	StateExpired   = "expired"
	// StateNotStarted is never a result on the wire: the agent's runner
	// returns it for a run that could not start because a download from
	// the relay failed, and the agent sends MsgRunNotStarted instead.
	StateNotStarted = "not_started"
)

// Limits on run messages.
const (
	MaxRunParams   = 64
	MaxParamValue  = 8 << 10
	MaxOutputBytes = 256 << 10 // output tail a result may carry
	MaxRunTimeout  = 24 * time.Hour
	MaxRunReason   = 1024 // a job's reason as a run request carries it
)

var (
	hexSHA256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	artNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	paramNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// ValidSHA256 reports whether s is a lower-case hex SHA-256.
func ValidSHA256(s string) bool { return hexSHA256RE.MatchString(s) }

// ValidUUID reports whether s is a lower-case canonical UUID.
func ValidUUID(s string) bool { return uuidRE.MatchString(s) }

// ArtifactRef names one catalog file by content.
type ArtifactRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

func (a *ArtifactRef) validate(what string) error {
	if !artNameRE.MatchString(a.Name) {
		return fmt.Errorf("%s name %q invalid", what, a.Name)
	}
	if len(a.Version) == 0 || len(a.Version) > 64 || !printable(a.Version) {
		return fmt.Errorf("%s version %q invalid", what, a.Version)
	}
	if !ValidSHA256(a.SHA256) {
		return fmt.Errorf("%s sha256 %q is not 64 lower-case hex digits", what, a.SHA256)
	}
	if a.Size <= 0 || a.Size > 1<<30 {
		return fmt.Errorf("%s size %d outside 1..1GiB", what, a.Size)
	}
	return nil
}

// RunRequest asks an agent to run a plugin.
type RunRequest struct {
	RunID          string            `json:"run_id"`
	JobID          string            `json:"job_id"`
	Plugin         ArtifactRef       `json:"plugin"`
	Script         *ArtifactRef      `json:"script,omitempty"` // for the script plugin
	Params         map[string]string `json:"params,omitempty"`
	DryRun         bool              `json:"dry_run,omitempty"`
	Timeout        Duration          `json:"timeout"`
	AllowDowngrade bool              `json:"allow_downgrade,omitempty"`
	Requester      string            `json:"requester"`        // who created the job: the agent's log, and the consent prompt
	Reason         string            `json:"reason,omitempty"` // the job's reason (e.g. a ticket), shown in the consent prompt
	// Reboot is what the job asks of a restart its fix requires (patch
	// policies); nil: the endpoint's consent policy alone decides. The
	// relay sends it only to agents that understand it (older agents
	// decode run requests strictly and would refuse the message).
	Reboot *RunReboot `json:"reboot,omitempty"`
}

// Restart modes a job may ask for (RunReboot.Mode), as patch policies name them.
const (
	RebootAsk           = "ask"             // as the endpoint's policy says (the default)
	RebootNever         = "never"           // do not restart; the result says a restart is pending
	RebootForceInWindow = "force-in-window" // restart without asking while the window is open and nobody is logged in
)

// RunReboot is a job's wish for the restart its fix may require. The
// endpoint's own consent policy stays the authority (agent/consent): the
// wish can only make a restart less likely, except that force-in-window
// restarts without asking when nobody is logged in and the window is open.
type RunReboot struct {
	Mode string `json:"mode"`
	// WindowEnd is when the job's maintenance window closes (the relay's
	// clock); force-in-window restarts only before it by the agent's clock.
	WindowEnd time.Time `json:"window_end,omitzero"`
}

func (r *RunReboot) validate() error {
	switch r.Mode {
	case RebootAsk, RebootNever:
	case RebootForceInWindow:
		if r.WindowEnd.IsZero() {
			return fmt.Errorf("reboot force-in-window without window_end")
		}
	default:
		return fmt.Errorf("reboot mode %q: want ask, never or force-in-window", r.Mode)
	}
	return nil
}

// Validate checks the request's shape; the agent validates parameters
// against the plugin's own manifest before anything runs.
func (r *RunRequest) Validate() error {
	if !ValidUUID(r.RunID) || !ValidUUID(r.JobID) {
		return fmt.Errorf("run_id and job_id must be UUIDs")
	}
	if err := r.Plugin.validate("plugin"); err != nil {
		return err
	}
	if r.Script != nil {
		if err := r.Script.validate("script"); err != nil {
			return err
		}
	}
	if len(r.Params) > MaxRunParams {
		return fmt.Errorf("%d parameters, at most %d", len(r.Params), MaxRunParams)
	}
	for k, v := range r.Params {
		if !paramNameRE.MatchString(k) {
			return fmt.Errorf("parameter name %q invalid", k)
		}
		if len(v) > MaxParamValue {
			return fmt.Errorf("parameter %q longer than %d bytes", k, MaxParamValue)
		}
	}
	if d := time.Duration(r.Timeout); d < time.Second || d > MaxRunTimeout {
		return fmt.Errorf("timeout %v outside 1s..24h", d)
	}
	if len(r.Requester) > 256 {
		return fmt.Errorf("requester longer than 256 bytes")
	}
	if len(r.Reason) > MaxRunReason {
		return fmt.Errorf("reason longer than %d bytes", MaxRunReason)
	}
	if r.Reboot != nil {
		return r.Reboot.validate()
	}
	return nil
}

// RunStarted tells the relay a run has begun.
type RunStarted struct {
	RunID   string    `json:"run_id"`
	Started time.Time `json:"started"`
}

// Validate checks the run ID.
func (r *RunStarted) Validate() error {
	if !ValidUUID(r.RunID) {
		return fmt.Errorf("run_id must be a UUID")
	}
	return nil
}

// RunResult is the outcome of one run.
type RunResult struct {
	RunID          string `json:"run_id"`
	State          string `json:"state"`  // a final state
	Needed         bool   `json:"needed"` // what Check said
	Changed        bool   `json:"changed,omitempty"`
	RebootRequired bool   `json:"reboot_required,omitempty"`
	Summary        string `json:"summary,omitempty"`
	Error          string `json:"error,omitempty"`
	Details        string `json:"details,omitempty"`
	Output         string `json:"output,omitempty"` // tail, at most MaxOutputBytes
	Signer         string `json:"signer,omitempty"` // principal and key fingerprint that signed what ran
	Version        string `json:"version,omitempty"`
	// Consent is the decision on a fix that needs consent (its manifest or
	// script header says needs_consent); nil when nobody was asked.
	Consent *RunConsent `json:"consent,omitempty"`
	Started time.Time   `json:"started"`
	Ended   time.Time   `json:"ended"`
}

// RunConsent is the endpoint's decision on a fix that needs consent: the
// person at the machine's answer, or the endpoint policy's (agent/consent).
type RunConsent struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`                // a local user, or policy, timeout, agent, no-user
	Message  string `json:"message,omitempty"` // e.g. "denied by the user", "no answer within 60s"
	Mode     string `json:"mode,omitempty"`    // the endpoint's consent mode: prompt, notify, unattended
	// Receipt is the decision signed by the agent's key (internal/receipt,
	// kind "fix", the run's ID and job, decision "approved" or "denied").
	// The relay keeps it in the run's audit record, where `patchbay audit
	// verify` checks the signature.
	Receipt *receipt.Signed `json:"receipt,omitempty"`
	At      time.Time       `json:"at"`
}

func (c *RunConsent) validate() error {
	if len(c.By) > 128 || len(c.Message) > 1024 || len(c.Mode) > 32 {
		return fmt.Errorf("consent by, message or mode too long")
	}
	return checkReceipt(c.Receipt)
}

// Validate checks the state and sizes.
func (r *RunResult) Validate() error {
	if !ValidUUID(r.RunID) {
		return fmt.Errorf("run_id must be a UUID")
	}
	switch r.State {
	case StateSucceeded, StateFailed, StateSkipped, StateCancelled:
	default:
		return fmt.Errorf("result state %q: want succeeded, failed, skipped or cancelled", r.State)
	}
	if len(r.Output) > MaxOutputBytes {
		return fmt.Errorf("output of %d bytes exceeds %d", len(r.Output), MaxOutputBytes)
	}
	if len(r.Summary) > 4096 || len(r.Error) > 16<<10 || len(r.Details) > 64<<10 || len(r.Signer) > 512 || len(r.Version) > 64 {
		return fmt.Errorf("summary, error, details, signer or version too long")
	}
	if r.Consent != nil {
		return r.Consent.validate()
	}
	return nil
}

// RunAck tells the agent the result of RunID is stored.
type RunAck struct {
	RunID string `json:"run_id"`
}

// Validate checks the run ID.
func (r *RunAck) Validate() error {
	if !ValidUUID(r.RunID) {
		return fmt.Errorf("run_id must be a UUID")
	}
	return nil
}

// RunCancel asks the agent to stop RunID.
type RunCancel = RunAck

// RunNotStarted tells the relay that RunID did not start and why.
type RunNotStarted struct {
	RunID string `json:"run_id"`
	Error string `json:"error,omitempty"`
}

// Validate checks the run ID and the error's size.
func (r *RunNotStarted) Validate() error {
	if !ValidUUID(r.RunID) {
		return fmt.Errorf("run_id must be a UUID")
	}
	if len(r.Error) > 16<<10 {
		return fmt.Errorf("error longer than %d bytes", 16<<10)
	}
	return nil
}

// UpgradePlugin is the reserved plugin name of an agent self-update job
// (patchbay agents upgrade): the run's Plugin.Version is the release to
// install, Plugin.SHA256 the relay's idea of this agent's binary (the
// agent trusts only the signed SHA256SUMS), and Params may hold
// UpgradeRollbackAfter. No catalog plugin may have this name.
const UpgradePlugin = "patchbay-agent"

// UpgradeRollbackAfter is the self-update parameter (a Go duration) within
// which the new version must reconnect, else the agent restores the old one.
const UpgradeRollbackAfter = "rollback_after"
