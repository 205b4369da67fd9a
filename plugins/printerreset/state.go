package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// cupsState is what Check found on a CUPS system (and what Fix re-reads at
// the end). It is the Details JSON of a Check.
type cupsState struct {
	Server    string  `json:"server,omitempty"` // cups_server, when given
	Running   bool    `json:"scheduler_running"`
	OlderThan string  `json:"older_than"`
	Queue     string  `json:"queue,omitempty"` // the queue parameter
	Queues    []queue `json:"queues"`          // every queue in scope
	Stuck     []job   `json:"stuck_jobs"`
	// Waiting counts unfinished jobs in scope that are not stuck: young
	// jobs when older_than is set, jobs on enabled queues otherwise.
	Waiting int `json:"waiting_jobs"`
}

// isStuck is the plugin's definition of a stuck job. A job lpstat -o lists
// is unfinished (pending, held or processing). With older_than zero it is
// stuck when its queue is disabled (stopped): nothing will ever print it.
// With older_than set it is stuck when it was submitted more than older_than
// ago, whatever its queue's state (a job waiting that long on an enabled
// queue is as stuck, for instance behind an unreachable printer); younger
// jobs are left alone even on a disabled queue, and print once the queue is
// re-enabled. A job whose date lpstat printed in a form the plugin does not
// read is never stuck by age.
func isStuck(j job, q queue, known bool, olderThan time.Duration, now time.Time) bool {
	if olderThan <= 0 {
		return known && !q.Enabled
	}
	return !j.Submitted.IsZero() && now.Sub(j.Submitted) > olderThan
}

// newCUPSState keeps the queues and jobs in scope (all, or the one queue)
// and sorts the jobs into stuck and waiting.
func newCUPSState(o options, qs []queue, jobs []job, now time.Time) (cupsState, error) {
	st := cupsState{Server: o.server, Running: true, OlderThan: o.olderThan.String(), Queue: o.queue,
		Queues: []queue{}, Stuck: []job{}}
	byName := map[string]queue{}
	for _, q := range qs {
		if o.queue != "" && q.Name != o.queue {
			continue
		}
		byName[q.Name] = q
		st.Queues = append(st.Queues, q)
	}
	if o.queue != "" && len(st.Queues) == 0 {
		return cupsState{}, fmt.Errorf("queue %s: no such CUPS queue", o.queue)
	}
	for _, j := range jobs {
		if o.queue != "" && j.Queue != o.queue {
			continue
		}
		q, known := byName[j.Queue]
		if isStuck(j, q, known, o.olderThan, now) {
			st.Stuck = append(st.Stuck, j)
		} else {
			st.Waiting++
		}
	}
	return st, nil
}

// problems lists what is wrong, one short phrase each, for summaries.
func (s cupsState) problems() []string {
	if !s.Running {
		where := "the CUPS scheduler"
		if s.Server != "" {
			where = "the CUPS scheduler at " + s.Server
		}
		return []string{where + " is not running"}
	}
	var p []string
	for _, q := range s.Queues {
		if !q.Problem() {
			continue
		}
		switch {
		case !q.Enabled && !q.Accepting:
			p = append(p, "queue "+q.Name+" disabled and rejecting jobs")
		case !q.Enabled:
			p = append(p, "queue "+q.Name+" disabled")
		case !q.Accepting:
			p = append(p, "queue "+q.Name+" rejecting jobs")
		}
	}
	if len(p) > 3 {
		p = append(p[:3], fmt.Sprintf("%d more queues", len(p)-3))
	}
	if n := len(s.Stuck); n > 0 {
		p = append(p, plural(n, "stuck job", "stuck jobs"))
	}
	return p
}

// checkResult turns the state into a Check result.
func (s cupsState) checkResult() (sdk.CheckResult, error) {
	details, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("details: %w", err)
	}
	p := s.problems()
	if len(p) == 0 {
		summary := fmt.Sprintf("%s, nothing stuck", plural(len(s.Queues), "queue", "queues"))
		if s.Waiting > 0 {
			summary += fmt.Sprintf(" (%s waiting)", plural(s.Waiting, "job", "jobs"))
		}
		return sdk.CheckResult{Summary: summary, Details: string(details)}, nil
	}
	return sdk.CheckResult{Needed: true, Summary: strings.Join(p, "; "), Details: string(details)}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
