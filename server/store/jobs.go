package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Halted reports whether failed runs out of finished ones exceed the job's
// --max-failures: a count, or a share of the runs finished so far.
func (j *Job) Halted(failed, finished int) bool {
	switch {
	case j.MaxFailuresBP >= 0:
		return finished > 0 && failed*10000 > j.MaxFailuresBP*finished
	case j.MaxFailures >= 0:
		return failed > j.MaxFailures
	}
	return false
}

// Job states. A job is "running" until every run is final; then it is
// "done", or "halted" when its failure threshold stopped it, or
// "cancelled". EndedAt is set when the last run became final.
const (
	JobRunning   = "running"
	JobDone      = "done"
	JobHalted    = "halted"
	JobCancelled = "cancelled"
)

// Run states (the same strings as package wire's).
const (
	RunPending   = "pending"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunSkipped   = "skipped"
	RunCancelled = "cancelled"
	RunHalted    = "halted"
	RunExpired   = "expired"
)

// Job is one plugin run across a set of agents.
type Job struct {
	ID             string
	Plugin         string
	PluginVersion  string
	Script         string // for the script plugin: the script's name, sha256, version and size
	ScriptSHA256   string
	ScriptVersion  string
	ScriptSize     int64
	Params         map[string]string
	Target         string
	DryRun         bool
	Concurrency    int // 0: no limit
	Canary         int // agents in the first wave; 0: none
	MaxFailures    int // failed runs tolerated before the job halts; -1: no limit (or a percentage)
	MaxFailuresBP  int // failures tolerated as basis points of the runs finished so far; -1: not a percentage
	Timeout        time.Duration
	AllowDowngrade bool
	Reason         string
	State          string
	Total          int
	CreatedBy      string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	EndedAt        time.Time
}

// Run is one job on one agent.
type Run struct {
	ID             string
	JobID          string
	Seq            int // dispatch order within the job, canary first
	AgentID        string
	Hostname       string
	State          string
	PluginSHA256   string
	PluginSize     int64
	Version        string
	Needed         bool
	Changed        bool
	RebootRequired bool
	Summary        string
	Error          string
	Details        string
	Output         string
	Signer         string
	DispatchedAt   time.Time
	StartedAt      time.Time
	EndedAt        time.Time
}

// CreateJob stores a job and all its runs in one transaction.
func (s *Store) CreateJob(ctx context.Context, j Job, runs []Run) error {
	return s.CreateJobStream(ctx, &j, func(emit func([]Run) error) error { return emit(runs) })
}

// CreateJobStream stores a job and its runs in one transaction; produce
// calls emit with the runs a page at a time, so that a job over 100,000
// agents is never held in memory whole. After produce returns, j.Total,
// j.Canary, j.MaxFailures and j.MaxFailuresBP (which may depend on the total) are written as
// they are then. An error from produce rolls everything back.
func (s *Store) CreateJobStream(ctx context.Context, j *Job, produce func(emit func([]Run) error) error) error {
	params, err := encodeMap(j.Params)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, plugin, plugin_version, script, script_sha256, script_version,
			script_size, params, target, dry_run, concurrency, canary, max_failures, timeout_ms, allow_downgrade, reason,
			state, total, created_by, created_at, expires_at, max_failures_bp)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
			j.ID, j.Plugin, j.PluginVersion, j.Script, j.ScriptSHA256, j.ScriptVersion, j.ScriptSize, params, j.Target,
			j.DryRun, j.Concurrency, j.Canary, j.MaxFailures, j.Timeout.Milliseconds(), j.AllowDowngrade, j.Reason,
			j.State, j.Total, j.CreatedBy, dbTime(j.CreatedAt), dbTime(j.ExpiresAt), j.MaxFailuresBP)
		if err != nil {
			return fmt.Errorf("job: %w", err)
		}
		ins, err := tx.PrepareContext(ctx, insertRunSQL)
		if err != nil {
			return fmt.Errorf("runs: %w", err)
		}
		defer ins.Close()
		emit := func(runs []Run) error {
			for _, r := range runs {
				if _, err := ins.ExecContext(ctx, r.ID, j.ID, r.Seq, r.AgentID, r.Hostname, r.State, r.PluginSHA256,
					r.PluginSize, r.Version, r.Error, dbTime(r.EndedAt)); err != nil {
					return fmt.Errorf("run %s: %w", r.ID, err)
				}
			}
			return nil
		}
		if err := produce(emit); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET total = $1, canary = $2, max_failures = $3, max_failures_bp = $4 WHERE id = $5`,
			j.Total, j.Canary, j.MaxFailures, j.MaxFailuresBP, j.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("create job: %w", err)
	}
	return nil
}

// insertRunSQL inserts one run. Rows go in one at a time through a
// statement prepared once per job: SQLite resolves $N parameters by a linear
// search, so a multi-row INSERT with thousands of them costs more to parse
// than the rows cost to write.
const insertRunSQL = `INSERT INTO runs (id, job_id, seq, agent_id, hostname, state, plugin_sha256, plugin_size, version, error, ended_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

const jobColumns = `id, plugin, plugin_version, script, script_sha256, script_version, script_size, params, target,
	dry_run, concurrency, canary, max_failures, timeout_ms, allow_downgrade, reason, state, total, created_by,
	created_at, expires_at, ended_at, max_failures_bp`

func scanJob(sc scanner) (Job, error) {
	var j Job
	var params string
	var timeoutMS int64
	var created, expires, ended sql.NullTime
	err := sc.Scan(&j.ID, &j.Plugin, &j.PluginVersion, &j.Script, &j.ScriptSHA256, &j.ScriptVersion, &j.ScriptSize,
		&params, &j.Target, &j.DryRun, &j.Concurrency, &j.Canary, &j.MaxFailures, &timeoutMS, &j.AllowDowngrade,
		&j.Reason, &j.State, &j.Total, &j.CreatedBy, &created, &expires, &ended, &j.MaxFailuresBP)
	if err != nil {
		return Job{}, err
	}
	if j.Params, err = decodeMap(params); err != nil {
		return Job{}, fmt.Errorf("job %s params: %w", j.ID, err)
	}
	j.Timeout = time.Duration(timeoutMS) * time.Millisecond
	j.CreatedAt, j.ExpiresAt, j.EndedAt = fromNull(created), fromNull(expires), fromNull(ended)
	return j, nil
}

// GetJob returns one job.
func (s *Store) GetJob(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return j, nil
}

func (s *Store) queryJobs(ctx context.Context, q string, args ...any) ([]Job, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// ListJobs returns the newest jobs first, at most limit.
func (s *Store) ListJobs(ctx context.Context, limit int) ([]Job, error) {
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// OpenJobs returns the jobs with runs not yet final.
func (s *Store) OpenJobs(ctx context.Context) ([]Job, error) {
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE ended_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("open jobs: %w", err)
	}
	return jobs, nil
}

// SetJobState sets a job's state, and its end time when ended is not zero.
func (s *Store) SetJobState(ctx context.Context, id, state string, ended time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = $1, ended_at = COALESCE(ended_at, $2) WHERE id = $3`, state, dbTime(ended), id)
	if err != nil {
		return fmt.Errorf("set job %s state: %w", id, err)
	}
	return nil
}

// Counts summarises a job's runs.
type Counts struct {
	ByState      map[string]int
	InFlight     int // dispatched, not final
	Undispatched int // pending, never sent
	Final        int
}

// RunCounts counts a job's runs by state. Runs with seq below beforeSeq
// only, when beforeSeq > 0 (the canary wave). Two index-only queries: one
// grouped by state, one for the pending runs never sent.
func (s *Store) RunCounts(ctx context.Context, jobID string, beforeSeq int) (Counts, error) {
	if beforeSeq <= 0 {
		beforeSeq = int(^uint32(0) >> 1)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM runs WHERE job_id = $1 AND seq < $2 GROUP BY state`, jobID, beforeSeq)
	if err != nil {
		return Counts{}, fmt.Errorf("count runs of %s: %w", jobID, err)
	}
	defer rows.Close()
	c := Counts{ByState: map[string]int{}}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return Counts{}, fmt.Errorf("count runs of %s: %w", jobID, err)
		}
		c.ByState[state] = n
		switch state {
		case RunPending, RunRunning:
			c.InFlight += n
		default:
			c.Final += n
		}
	}
	if err := rows.Err(); err != nil {
		return Counts{}, fmt.Errorf("count runs of %s: %w", jobID, err)
	}
	if c.ByState[RunPending] > 0 {
		err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE job_id = $1 AND state = 'pending'
			AND dispatched_at IS NULL AND seq < $2`, jobID, beforeSeq).Scan(&c.Undispatched)
		if err != nil {
			return Counts{}, fmt.Errorf("count runs of %s: %w", jobID, err)
		}
		c.InFlight -= c.Undispatched
	}
	return c, nil
}

const runColumns = `id, job_id, seq, agent_id, hostname, state, plugin_sha256, plugin_size, version, needed, changed,
	reboot_required, summary, error, details, output, signer, dispatched_at, started_at, ended_at`

func scanRun(sc scanner) (Run, error) {
	var r Run
	var disp, start, end sql.NullTime
	err := sc.Scan(&r.ID, &r.JobID, &r.Seq, &r.AgentID, &r.Hostname, &r.State, &r.PluginSHA256, &r.PluginSize,
		&r.Version, &r.Needed, &r.Changed, &r.RebootRequired, &r.Summary, &r.Error, &r.Details, &r.Output,
		&r.Signer, &disp, &start, &end)
	if err != nil {
		return Run{}, err
	}
	r.DispatchedAt, r.StartedAt, r.EndedAt = fromNull(disp), fromNull(start), fromNull(end)
	return r, nil
}

func (s *Store) queryRuns(ctx context.Context, q string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// JobRuns returns a page of a job's runs in seq order after afterSeq.
func (s *Store) JobRuns(ctx context.Context, jobID string, afterSeq, limit int) ([]Run, error) {
	runs, err := s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		jobID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("runs of job %s: %w", jobID, err)
	}
	return runs, nil
}

// UndispatchedRuns returns pending runs never sent, in seq order, with
// afterSeq < seq < beforeSeq (beforeSeq 0: no upper bound).
func (s *Store) UndispatchedRuns(ctx context.Context, jobID string, afterSeq, beforeSeq, limit int) ([]Run, error) {
	if beforeSeq <= 0 {
		beforeSeq = int(^uint32(0) >> 1)
	}
	runs, err := s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs
		WHERE job_id = $1 AND state = 'pending' AND dispatched_at IS NULL AND seq > $2 AND seq < $3
		ORDER BY seq LIMIT $4`, jobID, afterSeq, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("undispatched runs of job %s: %w", jobID, err)
	}
	return runs, nil
}

// InFlightRuns returns an agent's runs that were sent but are not final.
func (s *Store) InFlightRuns(ctx context.Context, agentID string) ([]Run, error) {
	runs, err := s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs
		WHERE agent_id = $1 AND state IN ('pending', 'running') AND dispatched_at IS NOT NULL ORDER BY id`, agentID)
	if err != nil {
		return nil, fmt.Errorf("in-flight runs of agent %s: %w", agentID, err)
	}
	return runs, nil
}

// markChunk is how many run IDs one dispatch UPDATE names.
const markChunk = 100

// MarkDispatched records that runs were sent at t, markChunk IDs per
// statement (one prepared statement; a short chunk repeats its last ID).
func (s *Store) MarkDispatched(ctx context.Context, ids []string, t time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`UPDATE runs SET dispatched_at = $1 WHERE dispatched_at IS NULL AND id IN (`)
	for i := 0; i < markChunk; i++ {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "$%d", i+2)
	}
	q.WriteString(")")
	return s.inTx(ctx, func(tx *sql.Tx) error {
		upd, err := tx.PrepareContext(ctx, q.String())
		if err != nil {
			return fmt.Errorf("mark runs dispatched: %w", err)
		}
		defer upd.Close()
		args := make([]any, markChunk+1)
		args[0] = dbTime(t)
		for start := 0; start < len(ids); start += markChunk {
			chunk := ids[start:min(start+markChunk, len(ids))]
			for i := 0; i < markChunk; i++ {
				args[i+1] = chunk[min(i, len(chunk)-1)]
			}
			if _, err := upd.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("mark runs dispatched: %w", err)
			}
		}
		return nil
	})
}

// Started is an agent's report that a run began.
type Started struct {
	RunID, AgentID string
	At             time.Time
}

// Result is an agent's report of a finished run.
type Result struct {
	AgentID string
	Run     Run // ID, State, Needed, Changed, RebootRequired, Summary, Error, Details, Output, Signer, Version, StartedAt, EndedAt
}

// SaveReports applies start reports and results in one transaction. A
// report only moves a run forward and only for the agent it belongs to: a
// result for a final run, or from another agent, changes nothing. It
// returns the IDs of the jobs whose runs changed.
func (s *Store) SaveReports(ctx context.Context, started []Started, results []Result) (map[string]bool, error) {
	jobs := map[string]bool{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		start, err := tx.PrepareContext(ctx, `UPDATE runs SET state = 'running', started_at = $1
				WHERE id = $2 AND agent_id = $3 AND state = 'pending' RETURNING job_id`)
		if err != nil {
			return err
		}
		defer start.Close()
		finish, err := tx.PrepareContext(ctx, `UPDATE runs SET state = $1, needed = $2, changed = $3, reboot_required = $4,
				summary = $5, error = $6, details = $7, output = $8, signer = $9, version = $10,
				started_at = COALESCE(started_at, $11), ended_at = $12
				WHERE id = $13 AND agent_id = $14 AND state IN ('pending', 'running') RETURNING job_id`)
		if err != nil {
			return err
		}
		defer finish.Close()
		for _, st := range started {
			var job string
			err := start.QueryRowContext(ctx, dbTime(st.At), st.RunID, st.AgentID).Scan(&job)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("run %s started: %w", st.RunID, err)
			}
			if job != "" {
				jobs[job] = true
			}
		}
		for _, res := range results {
			r := res.Run
			var job string
			err := finish.QueryRowContext(ctx, r.State, r.Needed, r.Changed, r.RebootRequired, r.Summary, r.Error, r.Details, r.Output, r.Signer,
				r.Version, dbTime(r.StartedAt), dbTime(r.EndedAt), r.ID, res.AgentID).Scan(&job)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("run %s result: %w", r.ID, err)
			}
			if job != "" {
				jobs[job] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("save run reports: %w", err)
	}
	return jobs, nil
}

// FinishRuns moves a job's runs in state from (and, if undispatchedOnly,
// never sent) to the final state to, with reason as their error. It
// returns how many changed.
func (s *Store) FinishRuns(ctx context.Context, jobID, from, to, reason string, undispatchedOnly bool, t time.Time) (int, error) {
	q := `UPDATE runs SET state = $1, error = $2, ended_at = $3 WHERE job_id = $4 AND state = $5`
	if undispatchedOnly {
		q += ` AND dispatched_at IS NULL`
	}
	res, err := s.db.ExecContext(ctx, q, to, reason, dbTime(t), jobID, from)
	if err != nil {
		return 0, fmt.Errorf("finish runs of %s: %w", jobID, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// EachPendingAgent calls fn with the agent ID of every pending run of a
// job, streaming (nothing is collected in memory).
func (s *Store) EachPendingAgent(ctx context.Context, jobID string, fn func(agentID string)) error {
	rows, err := s.db.QueryContext(ctx, `SELECT agent_id FROM runs WHERE job_id = $1 AND state = 'pending'`, jobID)
	if err != nil {
		return fmt.Errorf("pending agents of %s: %w", jobID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("pending agents of %s: %w", jobID, err)
		}
		fn(id)
	}
	return rows.Err()
}
