package apiv1

import "time"

// ReportSummary is the answer of GET /v1/reports/summary: the figures of
// the period [From, To) in one site (Site, "ORG/SITE") or every site the
// caller reaches (Site "").
type ReportSummary struct {
	Site            string           `json:"site,omitempty"`
	From            time.Time        `json:"from"`
	To              time.Time        `json:"to"`
	Incidents       ReportIncidents  `json:"incidents"`
	Fixes           ReportRuns       `json:"fixes"`
	SelfHeals       ReportRuns       `json:"self_heals"`
	AlertsByKind    []ReportCount    `json:"alerts_by_kind"`
	TopProblems     []ReportProblem  `json:"top_problems"`
	AgentsByOS      []ReportCount    `json:"agents_by_os"`
	AgentsByVersion []ReportCount    `json:"agents_by_version"`
	PatchCompliance ReportCompliance `json:"patch_compliance"`
}

// ReportIncidents counts incidents opened and resolved in the period, and
// the time the resolved ones took (seconds).
type ReportIncidents struct {
	Opened               int     `json:"opened"`
	Resolved             int     `json:"resolved"`
	MedianResolveSeconds float64 `json:"median_resolve_seconds"`
	MeanResolveSeconds   float64 `json:"mean_resolve_seconds"`
}

// ReportRuns counts runs that ended in the period; SuccessRate is
// Succeeded / Ended (0 when none ended).
type ReportRuns struct {
	Ended       int     `json:"ended"`
	Succeeded   int     `json:"succeeded"`
	Failed      int     `json:"failed"`
	SuccessRate float64 `json:"success_rate"`
}

// ReportCount is one group of a report.
type ReportCount struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// ReportProblem is a recurring problem: alerts of one kind and check,
// how many were opened and how often they were raised.
type ReportProblem struct {
	Kind   string `json:"kind"`
	Check  string `json:"check,omitempty"`
	Alerts int    `json:"alerts"`
	Raised int    `json:"raised"`
}

// ReportCompliance is patch compliance now (not over the period): the
// agents with no pending update (as their last patchinstall run listed
// them) among all agents, per site and per agent. When Collected is false,
// Reason says why there is no figure (a relay from before it was kept).
type ReportCompliance struct {
	Collected bool         `json:"collected"`
	Reason    string       `json:"reason,omitempty"`
	Agents    int          `json:"agents,omitempty"`
	Compliant int          `json:"compliant,omitempty"`
	Share     float64      `json:"share,omitempty"`
	Sites     []PatchSite  `json:"sites,omitempty"`
	PerAgent  []PatchAgent `json:"per_agent,omitempty"`
}
