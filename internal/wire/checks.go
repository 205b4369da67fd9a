package wire

import (
	"fmt"
	"regexp"
	"time"
)

// Control messages of checks and policies (issue 17):
//
//	agent -> relay  policies_request  PoliciesRequest (after each welcome: this agent runs policies)
//	relay -> agent  policies          Policies       (the answer, and whenever they change: the agent's whole set)
//	agent -> relay  check_results     CheckResults   (again after every reconnect until acknowledged)
//	relay -> agent  check_ack         CheckAck       (the results are stored)
//	agent -> relay  selfheal          SelfHeal       (a check failed; run the policy's fix here)
//	relay -> agent  selfheal_answer   SelfHealAnswer (the job created for it, or why not)
//
// Only agents that asked get policies: an agent from before policies would
// take the message for a protocol violation.
//
// A self-heal is a job the relay creates for the agent on its request, so
// its fix reaches the agent as an ordinary run (MsgRun) and lands in the
// same journal, runs and audit log as a person's fix.
const (
	MsgPoliciesRequest = "policies_request"
	MsgPolicies        = "policies"
	MsgCheckResults    = "check_results"
	MsgCheckAck        = "check_ack"
	MsgSelfHeal        = "selfheal"
	MsgSelfHealAnswer  = "selfheal_answer"
)

// Check states.
const (
	CheckPassed = "passed"
	CheckFailed = "failed"
	CheckError  = "error" // the check itself could not run
)

// Self-heal outcomes a result may carry (CheckResult.Fix).
const (
	FixHelped    = "helped"
	FixNotHelped = "not_helped"
)

// BuiltinChecks are the checks agents have built in (agent/checks runs
// them), each with the parameters it reads: the relay refuses a policy
// naming another builtin:NAME.
var BuiltinChecks = map[string][]string{
	"builtin:disk-space":        {"path", "min_free_pct", "min_free_bytes", "threshold"},
	"builtin:dir-size":          {"path", "max_bytes", "threshold"},
	"builtin:service-down":      {"unit"},
	"builtin:pending-reboot":    {"path"},
	"builtin:stuck-print-queue": {"queue", "max_age", "cups_server"},
	"builtin:cert-expiry":       {"path", "host", "days", "timeout", "threshold"},
}

// Limits on check messages.
const (
	MaxPolicies       = 256
	MaxCheckResults   = 256
	MaxCheckSummary   = 1024
	MinCheckInterval  = 10 * time.Second
	MaxCheckInterval  = 7 * 24 * time.Hour
	MaxPolicyNameLen  = 64
	MaxCheckNameLen   = 80
	maxSelfHealReason = 256
)

var (
	policyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	checkNameRE  = regexp.MustCompile(`^(builtin:[a-z][a-z0-9-]{0,63}|[a-z][a-z0-9_-]{0,63})$`)
)

// ValidPolicyName reports whether s may name a policy.
func ValidPolicyName(s string) bool { return policyNameRE.MatchString(s) }

// ValidCheckName reports whether s may name a check: builtin:NAME or a plugin.
func ValidCheckName(s string) bool { return checkNameRE.MatchString(s) }

// Policy is one policy as an agent runs it.
type Policy struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Check    string            `json:"check"`
	Params   map[string]string `json:"params,omitempty"`
	Interval Duration          `json:"interval"`
	// Fix: the policy names a fix; the agent asks the relay for it
	// (MsgSelfHeal) when the check fails.
	Fix         bool `json:"fix,omitempty"`
	MaxFixesDay int  `json:"max_fixes_day,omitempty"`
	// Plugin is the build of a plugin check (Check names a plugin) for the
	// agent's OS and architecture; nil when the catalog has none.
	Plugin *ArtifactRef `json:"plugin,omitempty"`
}

// PoliciesRequest asks for the agent's policies.
type PoliciesRequest struct {
	Proto int `json:"proto"` // 1
}

// Validate checks the version of the policy messages.
func (m *PoliciesRequest) Validate() error {
	if m.Proto != 1 {
		return fmt.Errorf("policy messages version %d, this side speaks 1", m.Proto)
	}
	return nil
}

// Policies is an agent's whole set of policies.
type Policies struct {
	Policies []Policy `json:"policies"`
}

func validParams(p map[string]string) error {
	if len(p) > MaxRunParams {
		return fmt.Errorf("%d parameters, at most %d", len(p), MaxRunParams)
	}
	for k, v := range p {
		if !paramNameRE.MatchString(k) {
			return fmt.Errorf("parameter name %q invalid", k)
		}
		if len(v) > MaxParamValue {
			return fmt.Errorf("parameter %q longer than %d bytes", k, MaxParamValue)
		}
	}
	return nil
}

// Validate bounds every policy.
func (m *Policies) Validate() error {
	if len(m.Policies) > MaxPolicies {
		return fmt.Errorf("%d policies, at most %d", len(m.Policies), MaxPolicies)
	}
	for i := range m.Policies {
		p := &m.Policies[i]
		if !ValidUUID(p.ID) || !ValidPolicyName(p.Name) || !ValidCheckName(p.Check) {
			return fmt.Errorf("policy %d: invalid id, name or check", i)
		}
		if err := validParams(p.Params); err != nil {
			return fmt.Errorf("policy %s: %v", p.Name, err)
		}
		if d := time.Duration(p.Interval); d < MinCheckInterval || d > MaxCheckInterval {
			return fmt.Errorf("policy %s: interval %v outside %v..%v", p.Name, d, MinCheckInterval, MaxCheckInterval)
		}
		if p.MaxFixesDay < 0 || p.MaxFixesDay > 1000 {
			return fmt.Errorf("policy %s: max_fixes_day %d outside 0..1000", p.Name, p.MaxFixesDay)
		}
		if p.Plugin != nil {
			if err := p.Plugin.validate("policy " + p.Name + " plugin"); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckResult is one check's outcome on the agent.
type CheckResult struct {
	ID       string    `json:"id"` // a UUID the agent gives the result: the relay stores each once
	PolicyID string    `json:"policy_id"`
	State    string    `json:"state"`
	Summary  string    `json:"summary,omitempty"`
	Fix      string    `json:"fix,omitempty"`     // FixHelped or FixNotHelped: the re-check after a self-heal
	FixJob   string    `json:"fix_job,omitempty"` // that self-heal's job
	At       time.Time `json:"at"`
}

// CheckResults carries results in the order they were found.
type CheckResults struct {
	Results []CheckResult `json:"results"`
}

// Validate bounds every result.
func (m *CheckResults) Validate() error {
	if len(m.Results) == 0 || len(m.Results) > MaxCheckResults {
		return fmt.Errorf("%d results, want 1..%d", len(m.Results), MaxCheckResults)
	}
	for i := range m.Results {
		r := &m.Results[i]
		if !ValidUUID(r.ID) || !ValidUUID(r.PolicyID) {
			return fmt.Errorf("result %d: id and policy_id must be UUIDs", i)
		}
		switch r.State {
		case CheckPassed, CheckFailed, CheckError:
		default:
			return fmt.Errorf("result %d: state %q", i, r.State)
		}
		switch r.Fix {
		case "", FixHelped, FixNotHelped:
		default:
			return fmt.Errorf("result %d: fix %q", i, r.Fix)
		}
		if r.FixJob != "" && !ValidUUID(r.FixJob) {
			return fmt.Errorf("result %d: fix_job must be a UUID", i)
		}
		if len(r.Summary) > MaxCheckSummary || !printable(r.Summary) {
			return fmt.Errorf("result %d: summary must be at most %d printable bytes", i, MaxCheckSummary)
		}
		if r.At.IsZero() {
			return fmt.Errorf("result %d: no time", i)
		}
	}
	return nil
}

// CheckAck acknowledges stored results by ID.
type CheckAck struct {
	IDs []string `json:"ids"`
}

// Validate bounds the list.
func (m *CheckAck) Validate() error {
	if len(m.IDs) > MaxCheckResults {
		return fmt.Errorf("%d ids, at most %d", len(m.IDs), MaxCheckResults)
	}
	for _, id := range m.IDs {
		if !ValidUUID(id) {
			return fmt.Errorf("id %q is not a UUID", id)
		}
	}
	return nil
}

// SelfHeal asks the relay to run a policy's fix on this agent.
type SelfHeal struct {
	RequestID string `json:"request_id"` // a repeated request gets the same job
	PolicyID  string `json:"policy_id"`
	Summary   string `json:"summary,omitempty"` // what the check found
}

// Validate checks the IDs and bounds the summary.
func (m *SelfHeal) Validate() error {
	if !ValidUUID(m.RequestID) || !ValidUUID(m.PolicyID) {
		return fmt.Errorf("request_id and policy_id must be UUIDs")
	}
	if len(m.Summary) > MaxCheckSummary || !printable(m.Summary) {
		return fmt.Errorf("summary must be at most %d printable bytes", MaxCheckSummary)
	}
	return nil
}

// SelfHealAnswer is the relay's answer: the job that runs the fix, or why
// there is none.
type SelfHealAnswer struct {
	RequestID string `json:"request_id"`
	JobID     string `json:"job_id,omitempty"`
	Refused   string `json:"refused,omitempty"`
}

// Validate checks the IDs.
func (m *SelfHealAnswer) Validate() error {
	if !ValidUUID(m.RequestID) || (m.JobID != "" && !ValidUUID(m.JobID)) {
		return fmt.Errorf("request_id and job_id must be UUIDs")
	}
	if (m.JobID == "") == (m.Refused == "") {
		return fmt.Errorf("exactly one of job_id and refused")
	}
	if len(m.Refused) > maxSelfHealReason*4 || !printable(m.Refused) {
		return fmt.Errorf("refused must be at most %d printable bytes", maxSelfHealReason*4)
	}
	return nil
}
