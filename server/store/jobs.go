package store

import (
	"context"
	"database/sql"
	"encoding/json"
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
	CreatedBy      string // the actor, as in the audit log
	CreatedByToken string // the API token's ID
	CreatedByUser  string // its user's ID; "" for a token without a user
	CreatedAt      time.Time
	ExpiresAt      time.Time
	EndedAt        time.Time
	// Counts are the job's final runs by state, stored when it ended; nil
	// while it runs (and for jobs that ended before they were stored).
	Counts map[string]int
	// Sites are the sites of the job's agents, written by CreateJobStream
	// after produce (job_sites; not read back by GetJob: see JobSites).
	Sites []string
	// Window is the maintenance window the job's runs start in, as JSON
	// (schedule.Window); "" when they may start at any time.
	Window string
	// Reboot is what the job asks of a restart its fix requires (patch
	// policies: ask, never or force-in-window); "" leaves it to the
	// endpoint's policy. Sent with each run (wire.RunReboot).
	Reboot string
	// ScheduleID is the schedule that created the job ("" by hand).
	ScheduleID string
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
	// Consent is the decision on the fix, as JSON
	// ({"approved","by","message","mode","at"}), when the plugin or script
	// needs consent; "" when nobody was asked.
	Consent      string
	DispatchedAt time.Time
	StartedAt    time.Time
	EndedAt      time.Time
}

// CreateJob stores a job and all its runs in one transaction.
func (s *Store) CreateJob(ctx context.Context, j Job, runs []Run) error {
	return s.CreateJobStream(ctx, &j, func(_ context.Context, emit func([]Run) error) error { return emit(runs) })
}

// CreateJobStream stores a job and its runs in one transaction; produce
// calls emit with the runs a page at a time, so that a job over 100,000
// agents is never held in memory whole. After produce returns, j.Total,
// j.Canary, j.MaxFailures and j.MaxFailuresBP (which may depend on the total) are written as
// they are then. An error from produce rolls everything back. emit keeps
// no reference to the slice it is given, so produce may reuse it.
//
// produce gets a context whose reads (TargetPage, ListArtifacts,
// ResolveArtifact, GetArtifact) run inside the job's transaction: it must
// read through it, never wait on another connection.
func (s *Store) CreateJobStream(ctx context.Context, j *Job, produce func(ctx context.Context, emit func([]Run) error) error) error {
	params, err := encodeMap(j.Params)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if claim, ok := ctx.Value(firingKey{}).(firing); ok {
			if err := claim.claim(ctx, tx, j.ID); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, plugin, plugin_version, script, script_sha256, script_version,
			script_size, params, target, dry_run, concurrency, canary, max_failures, timeout_ms, allow_downgrade, reason,
			state, total, created_by, created_at, expires_at, max_failures_bp, created_by_token, created_by_user,
			maint_window, schedule_id, reboot)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)`,
			j.ID, j.Plugin, j.PluginVersion, j.Script, j.ScriptSHA256, j.ScriptVersion, j.ScriptSize, params, j.Target,
			j.DryRun, j.Concurrency, j.Canary, j.MaxFailures, j.Timeout.Milliseconds(), j.AllowDowngrade, j.Reason,
			j.State, j.Total, j.CreatedBy, dbTime(j.CreatedAt), dbTime(j.ExpiresAt), j.MaxFailuresBP, j.CreatedByToken, j.CreatedByUser,
			j.Window, j.ScheduleID, j.Reboot)
		if err != nil {
			return fmt.Errorf("job: %w", err)
		}
		ins, err := tx.PrepareContext(ctx, insertRunSQL)
		if err != nil {
			return fmt.Errorf("runs: %w", err)
		}
		defer ins.Close()
		var insMany *sql.Stmt // prepared for the first full group
		rctx := rowContext(ctx)
		one := func(r Run) error {
			if _, err := ins.ExecContext(rctx, r.ID, j.ID, r.Seq, r.AgentID, r.Hostname, r.State, r.PluginSHA256,
				r.PluginSize, r.Version, r.Error, dbTime(r.EndedAt)); err != nil {
				return fmt.Errorf("run %s: %w", r.ID, err)
			}
			return nil
		}
		// Pending runs on the same build go in groups of runGroup, one
		// statement each (see insertRunsSQL); the rest one at a time.
		group := make([]Run, 0, runGroup)
		args := make([]any, 0, 4+4*runGroup)
		flush := func() error {
			if len(group) == runGroup {
				if insMany == nil {
					if insMany, err = tx.PrepareContext(ctx, insertRunsSQL); err != nil {
						return fmt.Errorf("runs: %w", err)
					}
				}
				g := group[0]
				args = append(args[:0], j.ID, g.PluginSHA256, g.PluginSize, g.Version)
				for _, r := range group {
					args = append(args, r.ID, r.Seq, r.AgentID, r.Hostname)
				}
				if _, err := insMany.ExecContext(rctx, args...); err != nil {
					return fmt.Errorf("runs %s..%s: %w", g.ID, group[len(group)-1].ID, err)
				}
			} else {
				for _, r := range group {
					if err := one(r); err != nil {
						return err
					}
				}
			}
			group = group[:0]
			return nil
		}
		emit := func(runs []Run) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			for _, r := range runs {
				if r.State != RunPending || r.Error != "" || !r.EndedAt.IsZero() {
					if err := one(r); err != nil {
						return err
					}
					continue
				}
				if len(group) > 0 && !sameBuild(group[0], r) {
					if err := flush(); err != nil {
						return err
					}
				}
				if group = append(group, r); len(group) == runGroup {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			return nil
		}
		defer func() {
			if insMany != nil {
				insMany.Close()
			}
		}()
		if err := produce(context.WithValue(ctx, txKey{}, tx), emit); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		for _, site := range dedupe(j.Sites) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_sites (job_id, site_id) VALUES ($1, $2)`, j.ID, site); err != nil {
				return fmt.Errorf("job sites: %w", err)
			}
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

// rowContext returns ctx without its cancellation, for the statements of a
// loop over many rows: the driver watches a cancellable context with a
// goroutine per statement, which cost more than a one-row statement
// itself. Such loops check ctx.Err() between batches of rows instead.
func rowContext(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// insertRunSQL inserts one run, through a statement prepared once per job
// (SQLite resolves $N parameters by a linear search, so a multi-row INSERT
// with thousands of them costs more to parse than the rows cost to write:
// insertRunsSQL has a few hundred).
const insertRunSQL = `INSERT INTO runs (id, job_id, seq, agent_id, hostname, state, plugin_sha256, plugin_size, version, error, ended_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// runGroup is how many runs insertRunsSQL inserts.
const runGroup = 64

// insertRunsSQL inserts runGroup pending runs of one job on one plugin
// build: the job and the build are bound once ($1-$4), each run brings its
// ID, seq, agent and hostname. Per row, binding its values cost as much as
// writing it; this binds 4 per run instead of 11 and runs one statement per
// 64 runs. Its text is built once, at start.
var insertRunsSQL = func() string {
	var b strings.Builder
	b.WriteString(`INSERT INTO runs (id, job_id, seq, agent_id, hostname, state, plugin_sha256, plugin_size, version, error, ended_at)
	SELECT column1, $1, CAST(column2 AS INTEGER), column3, column4, 'pending', $2, CAST($3 AS BIGINT), $4, '', NULL
	FROM (VALUES `)
	for i := range runGroup {
		if i > 0 {
			b.WriteString(", ")
		}
		p := 5 + 4*i
		if i == 0 {
			// PostgreSQL types a VALUES column from its rows: without this cast the
			// seq column would be text and an integer could not be bound to it.
			fmt.Fprintf(&b, "($%d, CAST($%d AS INTEGER), $%d, $%d)", p, p+1, p+2, p+3)
			continue
		}
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d)", p, p+1, p+2, p+3)
	}
	b.WriteString(") AS v")
	return b.String()
}()

// sameBuild reports whether two runs have the same plugin build.
func sameBuild(a, b Run) bool {
	return a.PluginSHA256 == b.PluginSHA256 && a.PluginSize == b.PluginSize && a.Version == b.Version
}

// RunningJobsOfUser returns the jobs started by the user's tokens that have
// not ended (for an admin who disables the user and stops their jobs).
func (s *Store) RunningJobsOfUser(ctx context.Context, userID string) ([]Job, error) {
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE created_by_user = $1 AND ended_at IS NULL ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("running jobs of user: %w", err)
	}
	return jobs, nil
}

const jobColumns = `id, plugin, plugin_version, script, script_sha256, script_version, script_size, params, target,
	dry_run, concurrency, canary, max_failures, timeout_ms, allow_downgrade, reason, state, total, created_by,
	created_at, expires_at, ended_at, max_failures_bp, counts, created_by_token, created_by_user, maint_window, schedule_id, reboot`

func scanJob(sc scanner) (Job, error) {
	var j Job
	var params, counts string
	var timeoutMS int64
	var created, expires, ended sql.NullTime
	err := sc.Scan(&j.ID, &j.Plugin, &j.PluginVersion, &j.Script, &j.ScriptSHA256, &j.ScriptVersion, &j.ScriptSize,
		&params, &j.Target, &j.DryRun, &j.Concurrency, &j.Canary, &j.MaxFailures, &timeoutMS, &j.AllowDowngrade,
		&j.Reason, &j.State, &j.Total, &j.CreatedBy, &created, &expires, &ended, &j.MaxFailuresBP, &counts,
		&j.CreatedByToken, &j.CreatedByUser, &j.Window, &j.ScheduleID, &j.Reboot)
	if err != nil {
		return Job{}, err
	}
	if j.Params, err = decodeMap(params); err != nil {
		return Job{}, fmt.Errorf("job %s params: %w", j.ID, err)
	}
	if counts != "" {
		if err := json.Unmarshal([]byte(counts), &j.Counts); err != nil {
			return Job{}, fmt.Errorf("job %s counts: %w", j.ID, err)
		}
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

// ListJobs returns the newest jobs first, at most limit, of those whose
// every site scope reaches.
func (s *Store) ListJobs(ctx context.Context, scope Scope, limit int) ([]Job, error) {
	var l argList
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE `+jobScopeWhere("id", scope, l.add)+
		` ORDER BY id DESC LIMIT `+l.add(limit), l.args...)
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

// SetJobState sets a running job's state (halted, cancelled).
func (s *Store) SetJobState(ctx context.Context, id, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = $1 WHERE id = $2`, state, id)
	if err != nil {
		return fmt.Errorf("set job %s state: %w", id, err)
	}
	return nil
}

// EndJob records that a job ended at t in state, with its final counts.
func (s *Store) EndJob(ctx context.Context, id, state string, t time.Time, counts map[string]int) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return fmt.Errorf("end job %s: %w", id, err)
	}
	_, err = s.db.ExecContext(ctx, `UPDATE jobs SET state = $1, ended_at = COALESCE(ended_at, $2), counts = $3 WHERE id = $4`,
		state, dbTime(t), string(b), id)
	if err != nil {
		return fmt.Errorf("end job %s: %w", id, err)
	}
	return nil
}

// Counts summarises a job's runs. A run is undispatched while it is
// pending and was never sent, in flight once sent (or started) until it
// is final.
type Counts struct {
	ByState      map[string]int
	InFlight     int // dispatched (or started), not final
	Undispatched int // pending, never sent
	Final        int
}

// RunCounts counts a job's runs by state, those with seq below beforeSeq
// only when beforeSeq > 0. It reads every run of the job: the dispatcher
// keeps open jobs' counts in memory and ended jobs store theirs
// (Job.Counts), so this serves jobs that ended before counts were stored.
func (s *Store) RunCounts(ctx context.Context, jobID string, beforeSeq int) (Counts, error) {
	if beforeSeq <= 0 {
		beforeSeq = int(^uint32(0) >> 1)
	}
	_, below, err := s.count(ctx, jobID, beforeSeq)
	return below, err
}

// Tally is what the dispatcher keeps of an open job: its counts, how many
// runs of its canary wave are final, and its runs in flight.
type Tally struct {
	Counts      Counts
	CanaryFinal int // final runs with seq below the job's canary
	InFlight    []Flight
}

// Flight is a run in flight.
type Flight struct {
	RunID, AgentID string
	Seq            int
	State          string // pending (sent, not started) or running
}

// JobTally reads an open job's counts and runs in flight (as many as the
// agents it was sent to; runs never sent are only counted). It reads every
// run of the job, which suits loading the open jobs when the relay starts;
// NewJobTally is for a job just created.
func (s *Store) JobTally(ctx context.Context, jobID string, canary int) (Tally, error) {
	all, below, err := s.count(ctx, jobID, canary)
	if err != nil {
		return Tally{}, err
	}
	t := Tally{Counts: all, CanaryFinal: below.Final}
	rows, err := s.db.QueryContext(ctx, `SELECT id, agent_id, seq, state FROM runs
		WHERE job_id = $1 AND (state = 'running' OR (state = 'pending' AND dispatched_at IS NOT NULL))`, jobID)
	if err != nil {
		return Tally{}, fmt.Errorf("runs in flight of %s: %w", jobID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var f Flight
		if err := rows.Scan(&f.RunID, &f.AgentID, &f.Seq, &f.State); err != nil {
			return Tally{}, fmt.Errorf("runs in flight of %s: %w", jobID, err)
		}
		t.InFlight = append(t.InFlight, f)
	}
	if err := rows.Err(); err != nil {
		return Tally{}, fmt.Errorf("runs in flight of %s: %w", jobID, err)
	}
	if len(t.InFlight) != all.InFlight {
		return Tally{}, fmt.Errorf("runs in flight of %s: counted %d, read %d (written meanwhile?)", jobID, all.InFlight, len(t.InFlight))
	}
	return t, nil
}

// NewJobTally is JobTally for a job just created, before anything was sent:
// its runs are pending, or failed at creation (no build for the agent).
// It counts from the index of runs never sent, without reading the runs.
func (s *Store) NewJobTally(ctx context.Context, j Job) (Tally, error) {
	var pending int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE job_id = $1 AND state = 'pending' AND dispatched_at IS NULL`,
		j.ID).Scan(&pending)
	if err != nil {
		return Tally{}, fmt.Errorf("count runs of %s: %w", j.ID, err)
	}
	failed := j.Total - pending
	t := Tally{Counts: Counts{ByState: map[string]int{}, Undispatched: pending, Final: failed}}
	if pending > 0 {
		t.Counts.ByState[RunPending] = pending
	}
	if failed > 0 {
		t.Counts.ByState[RunFailed] = failed
		if j.Canary > 0 {
			err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE job_id = $1 AND seq < $2 AND state = 'failed'`,
				j.ID, j.Canary).Scan(&t.CanaryFinal)
			if err != nil {
				return Tally{}, fmt.Errorf("count runs of %s: %w", j.ID, err)
			}
		}
	}
	return t, nil
}

// count counts a job's runs: all of them, and those with seq below split.
func (s *Store) count(ctx context.Context, jobID string, split int) (all, below Counts, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, CASE WHEN dispatched_at IS NULL THEN 1 ELSE 0 END,
		CASE WHEN seq < $1 THEN 1 ELSE 0 END, COUNT(*) FROM runs WHERE job_id = $2 GROUP BY 1, 2, 3`, split, jobID)
	if err != nil {
		return all, below, fmt.Errorf("count runs of %s: %w", jobID, err)
	}
	defer rows.Close()
	all.ByState, below.ByState = map[string]int{}, map[string]int{}
	for rows.Next() {
		var state string
		var undispatched, isBelow, n int
		if err := rows.Scan(&state, &undispatched, &isBelow, &n); err != nil {
			return all, below, fmt.Errorf("count runs of %s: %w", jobID, err)
		}
		add := func(c *Counts) {
			c.ByState[state] += n
			switch {
			case state != RunPending && state != RunRunning:
				c.Final += n
			case state == RunPending && undispatched == 1:
				c.Undispatched += n
			default:
				c.InFlight += n
			}
		}
		add(&all)
		if isBelow == 1 {
			add(&below)
		}
	}
	if err := rows.Err(); err != nil {
		return all, below, fmt.Errorf("count runs of %s: %w", jobID, err)
	}
	return all, below, nil
}

const runColumns = `id, job_id, seq, agent_id, hostname, state, plugin_sha256, plugin_size, version, needed, changed,
	reboot_required, summary, error, details, output, signer, consent, dispatched_at, started_at, ended_at`

func scanRun(sc scanner) (Run, error) {
	var r Run
	var disp, start, end sql.NullTime
	err := sc.Scan(&r.ID, &r.JobID, &r.Seq, &r.AgentID, &r.Hostname, &r.State, &r.PluginSHA256, &r.PluginSize,
		&r.Version, &r.Needed, &r.Changed, &r.RebootRequired, &r.Summary, &r.Error, &r.Details, &r.Output,
		&r.Signer, &r.Consent, &disp, &start, &end)
	if err != nil {
		return Run{}, err
	}
	r.DispatchedAt, r.StartedAt, r.EndedAt = fromNull(disp), fromNull(start), fromNull(end)
	return r, nil
}

// sendColumns are what sending a run needs (scanSendRun).
const sendColumns = `id, job_id, seq, agent_id, state, plugin_sha256, plugin_size, version, dispatched_at`

func scanSendRun(sc scanner) (Run, error) {
	var r Run
	var disp sql.NullTime
	if err := sc.Scan(&r.ID, &r.JobID, &r.Seq, &r.AgentID, &r.State, &r.PluginSHA256, &r.PluginSize, &r.Version, &disp); err != nil {
		return Run{}, err
	}
	r.DispatchedAt = fromNull(disp)
	return r, nil
}

// unsentColumns are sendColumns less what a run never sent of a known job
// has anyway (scanUnsentRun).
const unsentColumns = `id, seq, agent_id, plugin_sha256, plugin_size, version`

func scanUnsentRun(sc scanner) (Run, error) {
	r := Run{State: RunPending}
	err := sc.Scan(&r.ID, &r.Seq, &r.AgentID, &r.PluginSHA256, &r.PluginSize, &r.Version)
	return r, err
}

// queryRuns runs q and scans each row with scan. want is how many rows the
// caller expects at most (its LIMIT; 0 when unknown): the result is sized
// for that, up to a page, instead of growing a Run (~300 bytes) at a time.
func (s *Store) queryRuns(ctx context.Context, scan func(scanner) (Run, error), want int, q string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Run, 0, min(max(want, 0), 1024))
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// JobRuns returns a page of a job's runs in seq order after afterSeq.
func (s *Store) JobRuns(ctx context.Context, jobID string, afterSeq, limit int) ([]Run, error) {
	runs, err := s.queryRuns(ctx, scanRun, limit, `SELECT `+runColumns+` FROM runs WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		jobID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("runs of job %s: %w", jobID, err)
	}
	return runs, nil
}

// UndispatchedRuns returns pending runs never sent, in seq order, with
// afterSeq < seq < beforeSeq (beforeSeq 0: no upper bound), with the
// columns sending them needs (no results). The query's conditions are
// those of the partial index runs_undispatched, word for word, so that
// SQLite uses it.
func (s *Store) UndispatchedRuns(ctx context.Context, jobID string, afterSeq, beforeSeq, limit int) ([]Run, error) {
	if beforeSeq <= 0 {
		beforeSeq = int(^uint32(0) >> 1)
	}
	runs, err := s.queryRuns(ctx, scanUnsentRun, limit, `SELECT `+unsentColumns+` FROM runs
		WHERE job_id = $1 AND state = 'pending' AND dispatched_at IS NULL AND seq > $2 AND seq < $3
		ORDER BY seq LIMIT $4`, jobID, afterSeq, beforeSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("undispatched runs of job %s: %w", jobID, err)
	}
	for i := range runs {
		runs[i].JobID = jobID
	}
	return runs, nil
}

// AgentOpenRuns returns an agent's runs that are not final, sent or not,
// with the columns sending them needs (no results).
func (s *Store) AgentOpenRuns(ctx context.Context, agentID string) ([]Run, error) {
	runs, err := s.queryRuns(ctx, scanSendRun, 0, `SELECT `+sendColumns+` FROM runs
		WHERE agent_id = $1 AND state IN ('pending', 'running')`, agentID)
	if err != nil {
		return nil, fmt.Errorf("open runs of agent %s: %w", agentID, err)
	}
	return runs, nil
}

// claimChunk is how many run IDs one dispatch UPDATE names.
const claimChunk = 100

// ClaimRuns records that runs are sent at t, for those of ids that are
// still pending and were never sent, and returns those (in the order of
// ids). A run is claimed before it is sent: a relay that stops in between
// sends it again when its agent reconnects. One prepared statement names
// claimChunk IDs (a short chunk repeats its last ID).
func (s *Store) ClaimRuns(ctx context.Context, ids []string, t time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var in strings.Builder
	for i := 0; i < claimChunk; i++ {
		if i > 0 {
			in.WriteString(", ")
		}
		fmt.Fprintf(&in, "$%d", i+2)
	}
	at := t.UTC().Truncate(time.Microsecond) // as dbTime stores it
	var claimed []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		claimed = claimed[:0]
		upd, err := tx.PrepareContext(ctx, `UPDATE runs SET dispatched_at = $1
			WHERE state = 'pending' AND dispatched_at IS NULL AND id IN (`+in.String()+`) RETURNING id`)
		if err != nil {
			return err
		}
		defer upd.Close()
		args := make([]any, claimChunk+1)
		args[0] = at
		for start := 0; start < len(ids); start += claimChunk {
			chunk := ids[start:min(start+claimChunk, len(ids))]
			for i := 0; i < claimChunk; i++ {
				args[i+1] = chunk[min(i, len(chunk)-1)]
			}
			mine, err := returnedIDs(upd.QueryContext(ctx, args...))
			if err != nil {
				return err
			}
			claimed = appendMine(claimed, chunk, mine)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim runs: %w", err)
	}
	return claimed, nil
}

// ClaimSeqRange is ClaimRuns for a whole page of UndispatchedRuns: runs
// are the page's runs with afterSeq < seq <= their last seq, all of the
// job's runs never sent in that range. One statement claims them through
// the index of runs never sent, without looking up each ID.
func (s *Store) ClaimSeqRange(ctx context.Context, jobID string, afterSeq int, runs []Run, t time.Time) ([]string, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	at := t.UTC().Truncate(time.Microsecond)
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	mine, err := returnedIDs(s.db.QueryContext(ctx, `UPDATE runs SET dispatched_at = $1
		WHERE job_id = $2 AND state = 'pending' AND dispatched_at IS NULL AND seq > $3 AND seq <= $4 RETURNING id`,
		at, jobID, afterSeq, runs[len(runs)-1].Seq))
	if err != nil {
		return nil, fmt.Errorf("claim runs: %w", err)
	}
	return appendMine(nil, ids, mine), nil
}

// returnedIDs reads the ids that an UPDATE ... RETURNING id returned: exactly
// the rows that statement changed, also when another relay sharing the database
// claims some of the same runs at the same time (comparing dispatched_at with the
// claim's time, as this did before, could not tell two claims at the same
// microsecond apart).
func returnedIDs(rows *sql.Rows, err error) (map[string]bool, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// appendMine appends the ids in mine to claimed, in the order of ids.
func appendMine(claimed, ids []string, mine map[string]bool) []string {
	for _, id := range ids {
		if mine[id] {
			claimed = append(claimed, id)
		}
	}
	return claimed
}

// Started is an agent's report that a run began.
type Started struct {
	RunID, AgentID string
	At             time.Time
}

// Result is an agent's report of a finished run.
type Result struct {
	AgentID string
	Run     Run // ID, State, Needed, Changed, RebootRequired, Summary, Error, Details, Output, Signer, Consent, Version, StartedAt, EndedAt
}

// SaveReports applies start reports and results in one transaction. A
// report only moves a run forward and only for the agent it belongs to: a
// result for a final run, or from another agent, changes nothing. It
// returns, for each start report and each result, whether it changed its
// run. (One plain UPDATE per report: with RETURNING each cost three times
// as much, and multi-row UPDATEs were slower still in SQLite.)
func (s *Store) SaveReports(ctx context.Context, started []Started, results []Result) (startedOK, resultOK []bool, err error) {
	startedOK, resultOK = make([]bool, len(started)), make([]bool, len(results))
	rctx := rowContext(ctx)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if len(started) > 0 {
			start, err := tx.PrepareContext(ctx, `UPDATE runs SET state = 'running', started_at = $1
				WHERE id = $2 AND agent_id = $3 AND state = 'pending'`)
			if err != nil {
				return err
			}
			defer start.Close()
			for i, st := range started {
				if i%256 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				res, err := start.ExecContext(rctx, dbTime(st.At), st.RunID, st.AgentID)
				if err != nil {
					return fmt.Errorf("run %s started: %w", st.RunID, err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("run %s started: %w", st.RunID, err)
				}
				startedOK[i] = n > 0
			}
		}
		if len(results) > 0 {
			// Most results carry no error, details, output, signer or
			// consent: a statement that writes those as literals binds 10
			// values instead of 15.
			var full, lean *sql.Stmt
			defer func() {
				for _, st := range []*sql.Stmt{full, lean} {
					if st != nil {
						st.Close()
					}
				}
			}()
			for i, res := range results {
				if i%256 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				r := res.Run
				var out sql.Result
				var err error
				if r.Error == "" && r.Details == "" && r.Output == "" && r.Signer == "" && r.Consent == "" {
					if lean == nil {
						if lean, err = tx.PrepareContext(ctx, saveResultLeanSQL); err != nil {
							return err
						}
					}
					out, err = lean.ExecContext(rctx, r.State, r.Needed, r.Changed, r.RebootRequired, r.Summary, r.Version,
						dbTime(r.StartedAt), dbTime(r.EndedAt), r.ID, res.AgentID)
				} else {
					if full == nil {
						if full, err = tx.PrepareContext(ctx, saveResultSQL); err != nil {
							return err
						}
					}
					out, err = full.ExecContext(rctx, r.State, r.Needed, r.Changed, r.RebootRequired, r.Summary, r.Error, r.Details,
						r.Output, r.Signer, r.Version, dbTime(r.StartedAt), dbTime(r.EndedAt), r.Consent, r.ID, res.AgentID)
				}
				if err != nil {
					return fmt.Errorf("run %s result: %w", r.ID, err)
				}
				n, err := out.RowsAffected()
				if err != nil {
					return fmt.Errorf("run %s result: %w", r.ID, err)
				}
				resultOK[i] = n > 0
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("save run reports: %w", err)
	}
	return startedOK, resultOK, nil
}

// saveResultSQL stores a result; saveResultLeanSQL one without error,
// details, output, signer or consent. Both only move a run forward, and only for its
// own agent.
const (
	saveResultSQL = `UPDATE runs SET state = $1, needed = $2, changed = $3, reboot_required = $4,
		summary = $5, error = $6, details = $7, output = $8, signer = $9, version = $10,
		started_at = COALESCE(started_at, $11), ended_at = $12, consent = $13
		WHERE id = $14 AND agent_id = $15 AND state IN ('pending', 'running')`
	saveResultLeanSQL = `UPDATE runs SET state = $1, needed = $2, changed = $3, reboot_required = $4,
		summary = $5, error = '', details = '', output = '', signer = '', consent = '', version = $6,
		started_at = COALESCE(started_at, $7), ended_at = $8
		WHERE id = $9 AND agent_id = $10 AND state IN ('pending', 'running')`
)

// RunRef is where a run belongs.
type RunRef struct {
	JobID string
	Seq   int
}

// RunRefs returns the job and seq of each of ids that exists.
func (s *Store) RunRefs(ctx context.Context, ids []string) (map[string]RunRef, error) {
	out := make(map[string]RunRef, len(ids))
	for _, id := range ids {
		var r RunRef
		err := s.db.QueryRowContext(ctx, `SELECT job_id, seq FROM runs WHERE id = $1`, id).Scan(&r.JobID, &r.Seq)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", id, err)
		}
		out[id] = r
	}
	return out, nil
}

// FinishUndispatched moves a job's runs never sent to the final state to,
// with reason as their error, and returns how many changed.
func (s *Store) FinishUndispatched(ctx context.Context, jobID, to, reason string, t time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE runs SET state = $1, error = $2, ended_at = $3
		WHERE job_id = $4 AND state = 'pending' AND dispatched_at IS NULL`, to, reason, dbTime(t), jobID)
	if err != nil {
		return 0, fmt.Errorf("finish runs of %s: %w", jobID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("finish runs of %s: %w", jobID, err)
	}
	return int(n), nil
}
