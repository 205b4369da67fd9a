package apiv1

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// JobCreate is the body of POST /v1/jobs.
type JobCreate struct {
	Plugin         string            `json:"plugin"`
	Version        string            `json:"version,omitempty"` // default: the newest in the catalog
	Target         string            `json:"target"`
	Params         map[string]string `json:"params,omitempty"`
	DryRun         bool              `json:"dry_run,omitempty"`
	Concurrency    int               `json:"concurrency,omitempty"`  // 0: no limit
	Canary         string            `json:"canary,omitempty"`       // "N" or "P%"
	MaxFailures    string            `json:"max_failures,omitempty"` // "N" or "P%"; "": no limit
	Timeout        string            `json:"timeout,omitempty"`      // per run; default 30m
	Expires        string            `json:"expires,omitempty"`      // default 24h
	AllowDowngrade bool              `json:"allow_downgrade,omitempty"`
	Reason         string            `json:"reason,omitempty"`
	// Window is a maintenance window ("SITE/NAME", NAME or ID): runs start
	// only while it is open. "": any time.
	Window string `json:"window,omitempty"`
	// Reboot is what the job asks of a restart its fix requires: ask,
	// never or force-in-window (needs Window); "": the endpoint's consent
	// policy alone decides. Patch policies set it; the endpoint's own
	// policy stays the authority (see README, "Patch policies").
	Reboot string `json:"reboot,omitempty"`
}

// Job defaults and limits.
const (
	DefaultRunTimeout = 30 * time.Minute
	DefaultJobExpiry  = 24 * time.Hour
	MaxJobExpiry      = 30 * 24 * time.Hour
)

// Job is one plugin run across agents: GET /v1/jobs/{id}. Results is only
// filled by GET /v1/jobs/{id}.
type Job struct {
	ID          string            `json:"id"`
	Plugin      string            `json:"plugin"`
	Version     string            `json:"version"`
	Script      string            `json:"script,omitempty"`
	Target      string            `json:"target"`
	Params      map[string]string `json:"params,omitempty"`
	DryRun      bool              `json:"dry_run"`
	Concurrency int               `json:"concurrency"`
	Canary      int               `json:"canary"`
	MaxFailures int               `json:"max_failures"` // -1: no limit (or see max_failures_percent)
	// MaxFailuresPercent, when set, is the share of the runs finished so far
	// that may fail before the job halts.
	MaxFailuresPercent *float64       `json:"max_failures_percent,omitempty"`
	Timeout            string         `json:"timeout"`
	AllowDowngrade     bool           `json:"allow_downgrade,omitempty"`
	Reason             string         `json:"reason,omitempty"`
	State              string         `json:"state"` // running, done, halted, cancelled
	Total              int            `json:"total"`
	Counts             map[string]int `json:"counts"`  // runs by state
	Offline            int            `json:"offline"` // pending runs whose agent is offline (GET /v1/jobs/{id} only)
	CreatedBy          string         `json:"created_by"`
	CreatedAt          time.Time      `json:"created_at"`
	ExpiresAt          time.Time      `json:"expires_at"`
	EndedAt            *time.Time     `json:"ended_at,omitempty"`
	Results            []RunResult    `json:"results,omitempty"`
	// RevokedNotTargeted is how many revoked agents the target matched: a
	// job never runs on them. Only in the answer to POST /v1/jobs.
	RevokedNotTargeted int `json:"revoked_not_targeted,omitempty"`
	// Sites are the sites of the job's agents ("ORG/SITE"): only those who
	// reach every one of them see the job.
	Sites []string `json:"sites,omitempty"`
	// Window is the maintenance window the job's runs start in
	// ("NAME: CRON for DURATION (TZ)"); ScheduleID the schedule that created it.
	Window     string `json:"window,omitempty"`
	ScheduleID string `json:"schedule_id,omitempty"`
	Reboot     string `json:"reboot,omitempty"` // ask, never or force-in-window; "": the endpoint decides
}

// RunResult is one agent's part of a job.
type RunResult struct {
	RunID          string `json:"run_id"`
	AgentID        string `json:"agent_id"`
	Hostname       string `json:"hostname"`
	State          string `json:"state"`
	Needed         bool   `json:"needed"`
	Changed        bool   `json:"changed"`
	RebootRequired bool   `json:"reboot_required"`
	Version        string `json:"version,omitempty"`
	Summary        string `json:"summary"`
	Error          string `json:"error"`
	// Details is what the plugin reported beyond its summary (see
	// RunDetails); nil without any.
	Details *RunDetails `json:"details,omitempty"`
	Output  string      `json:"output"`
	Signer  string      `json:"signer,omitempty"`
	// Consent is the decision of the person at the machine (or the
	// endpoint's policy) on a fix that needs consent; nil when nobody was
	// asked. A fix not approved ends "skipped".
	Consent    *RunConsent `json:"consent,omitempty"`
	Started    *time.Time  `json:"started,omitempty"`
	Ended      *time.Time  `json:"ended,omitempty"`
	DurationMS int64       `json:"duration_ms,omitempty"`
}

// RunConsent is the endpoint's decision on a fix that needs consent. By is
// the local user who answered, or "policy" (notify or unattended mode),
// "timeout" (nobody answered in time), "no-user" (nobody was logged in and
// the policy decided) or "agent" (the agent could not ask). The decision,
// signed by the agent, is in the audit log (action fix.approved or
// fix.denied).
type RunConsent struct {
	Approved bool      `json:"approved"`
	By       string    `json:"by"`
	Message  string    `json:"message,omitempty"`
	Mode     string    `json:"mode,omitempty"`
	At       time.Time `json:"at"`
}

// Final reports whether the job has ended (every run in a final state).
func (j Job) Final() bool { return j.EndedAt != nil }

// JobCancel is the answer of POST /v1/jobs/{id}/cancel.
type JobCancel struct {
	ID        string `json:"id"`
	Cancelled int    `json:"cancelled"` // runs that never started
	State     string `json:"state"`
}

// ParsePercent parses "P%" into basis points; ok is false when s is not a
// percentage.
func ParsePercent(s string) (bp int, ok bool, err error) {
	p, isPct := strings.CutSuffix(s, "%")
	if !isPct {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(p, 64)
	if err != nil || f < 0 || f > 100 || math.IsNaN(f) {
		return 0, true, fmt.Errorf("%q: want a percentage from 0%% to 100%%", s)
	}
	return int(math.Round(f * 100)), true, nil
}

// ParseCount parses "N" or "P%" against total: P% rounds up, so "10%" of
// 5 agents is 1. Negative values and percentages over 100 are refused.
func ParseCount(s string, total int) (int, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 || math.IsNaN(f) {
			return 0, fmt.Errorf("%q: want a number of agents or a percentage such as 10%%", s)
		}
		return int(math.Ceil(f / 100 * float64(total))), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a number of agents or a percentage such as 10%%", s)
	}
	return n, nil
}

// JobCSVHeader is the header row of GET /v1/jobs/{id}/export?format=csv.
var JobCSVHeader = []string{"run_id", "agent_id", "hostname", "state", "needed", "changed", "reboot_required",
	"version", "started", "ended", "duration_ms", "summary", "error", "signer", "output"}
