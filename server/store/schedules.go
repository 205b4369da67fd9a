package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrFiringClaimed is returned when a schedule's firing was already
// claimed (by another relay of the tier, or before a restart), or the
// schedule was paused or deleted meanwhile: no job was created.
var ErrFiringClaimed = errors.New("firing already claimed")

// ErrWindowInUse is returned when deleting a window that schedules use.
var ErrWindowInUse = errors.New("window in use")

// Schedule kinds.
const (
	ScheduleJob         = "job"
	SchedulePatchPolicy = "patch-policy"
)

// MaintWindow is a site's maintenance window: open from each fire time of
// Cron (in TZ) for Duration.
type MaintWindow struct {
	ID, Name, SiteID, Cron, TZ string
	Duration                   time.Duration
	CreatedBy                  string
	CreatedAt                  time.Time
}

// Schedule creates a job at each fire time of Cron (in TZ).
type Schedule struct {
	ID, Name, Kind string
	Cron, TZ       string
	WindowID       string // "" for none
	SiteID         string // patch policies: their site
	Reboot         string // patch policies: ask, never or force-in-window
	Request        string // the job request, as JSON (apiv1.JobCreate)
	Paused         bool
	NextFire       time.Time // second precision
	LastFire       time.Time
	LastJob        string
	LastError      string
	// The owner: the actor as the audit log names it, the token and its
	// user; OwnerRole and OwnerSites are the token's role and grants (used
	// when it has no user; a user's current role and grants are read at
	// each firing).
	CreatedBy, CreatedByToken, CreatedByUser string
	OwnerRole                                string
	OwnerSites                               []string
	CreatedAt                                time.Time
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// CreateWindow stores a maintenance window; ErrNameTaken when its site has
// one of that name.
func (s *Store) CreateWindow(ctx context.Context, w MaintWindow) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO maint_windows (id, name, site_id, cron, tz, duration_s, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, w.ID, w.Name, w.SiteID, w.Cron, w.TZ, int64(w.Duration/time.Second), w.CreatedBy, dbTime(w.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("create window %s: %w", w.Name, ErrNameTaken)
	}
	if err != nil {
		return fmt.Errorf("create window %s: %w", w.Name, err)
	}
	return nil
}

const windowCols = `id, name, site_id, cron, tz, duration_s, created_by, created_at`

// ListWindows returns the windows of the sites scope reaches, by site and name.
func (s *Store) ListWindows(ctx context.Context, scope Scope) ([]MaintWindow, error) {
	var l argList
	rows, err := s.db.QueryContext(ctx, `SELECT `+windowCols+` FROM maint_windows WHERE `+scope.where("site_id", l.add)+` ORDER BY site_id, name`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("list windows: %w", err)
	}
	defer rows.Close()
	var out []MaintWindow
	for rows.Next() {
		var w MaintWindow
		var d int64
		var created sql.NullTime
		if err := rows.Scan(&w.ID, &w.Name, &w.SiteID, &w.Cron, &w.TZ, &d, &w.CreatedBy, &created); err != nil {
			return nil, fmt.Errorf("list windows: %w", err)
		}
		w.Duration, w.CreatedAt = time.Duration(d)*time.Second, fromNull(created)
		out = append(out, w)
	}
	return out, rows.Err()
}

// GetWindow returns one window.
func (s *Store) GetWindow(ctx context.Context, id string) (MaintWindow, error) {
	ws, err := s.ListWindows(ctx, Scope{All: true})
	if err != nil {
		return MaintWindow{}, err
	}
	for _, w := range ws {
		if w.ID == id {
			return w, nil
		}
	}
	return MaintWindow{}, fmt.Errorf("window %s: %w", id, ErrNotFound)
}

// DeleteWindow deletes a window; ErrWindowInUse while a schedule uses it.
func (s *Store) DeleteWindow(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schedules WHERE window_id = $1`, id).Scan(&n); err != nil {
			return fmt.Errorf("delete window %s: %w", id, err)
		}
		if n > 0 {
			return fmt.Errorf("delete window %s: %d schedules use it: %w", id, n, ErrWindowInUse)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM maint_windows WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete window %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete window %s: %w", id, ErrNotFound)
		}
		return nil
	})
}

// CreateSchedule stores a schedule; ErrNameTaken when the name is.
func (s *Store) CreateSchedule(ctx context.Context, sc Schedule) error {
	sites, err := json.Marshal(sc.OwnerSites)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO schedules (id, name, kind, cron, tz, window_id, site_id, reboot, request, paused,
		next_fire, created_by, created_by_token, created_by_user, owner_role, owner_sites, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		sc.ID, sc.Name, sc.Kind, sc.Cron, sc.TZ, sc.WindowID, sc.SiteID, sc.Reboot, sc.Request, sc.Paused,
		unix(sc.NextFire), sc.CreatedBy, sc.CreatedByToken, sc.CreatedByUser, sc.OwnerRole, string(sites), dbTime(sc.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("create schedule %s: %w", sc.Name, ErrNameTaken)
	}
	if err != nil {
		return fmt.Errorf("create schedule %s: %w", sc.Name, err)
	}
	return nil
}

const scheduleCols = `id, name, kind, cron, tz, window_id, site_id, reboot, request, paused, next_fire, last_fire, last_job,
	last_error, created_by, created_by_token, created_by_user, owner_role, owner_sites, created_at`

func (s *Store) querySchedules(ctx context.Context, where string, args ...any) ([]Schedule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+scheduleCols+` FROM schedules `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("schedules: %w", err)
	}
	defer rows.Close()
	var out []Schedule
	for rows.Next() {
		var sc Schedule
		var next, last int64
		var sites string
		var created sql.NullTime
		if err := rows.Scan(&sc.ID, &sc.Name, &sc.Kind, &sc.Cron, &sc.TZ, &sc.WindowID, &sc.SiteID, &sc.Reboot, &sc.Request,
			&sc.Paused, &next, &last, &sc.LastJob, &sc.LastError, &sc.CreatedBy, &sc.CreatedByToken, &sc.CreatedByUser,
			&sc.OwnerRole, &sites, &created); err != nil {
			return nil, fmt.Errorf("schedules: %w", err)
		}
		if err := json.Unmarshal([]byte(sites), &sc.OwnerSites); err != nil {
			return nil, fmt.Errorf("schedule %s owner sites: %w", sc.ID, err)
		}
		sc.NextFire, sc.LastFire, sc.CreatedAt = fromUnix(next), fromUnix(last), fromNull(created)
		out = append(out, sc)
	}
	return out, rows.Err()
}

// ListSchedules returns every schedule of kind ("" every kind), by name.
func (s *Store) ListSchedules(ctx context.Context, kind string) ([]Schedule, error) {
	if kind == "" {
		return s.querySchedules(ctx, `ORDER BY name`)
	}
	return s.querySchedules(ctx, `WHERE kind = $1 ORDER BY name`, kind)
}

// DueSchedules returns the schedules not paused whose next fire time is at
// or before now.
func (s *Store) DueSchedules(ctx context.Context, now time.Time) ([]Schedule, error) {
	return s.querySchedules(ctx, `WHERE paused = $1 AND next_fire <= $2 ORDER BY next_fire, id`, false, now.Unix())
}

// GetSchedule returns one schedule.
func (s *Store) GetSchedule(ctx context.Context, id string) (Schedule, error) {
	l, err := s.querySchedules(ctx, `WHERE id = $1`, id)
	if err != nil {
		return Schedule{}, err
	}
	if len(l) == 0 {
		return Schedule{}, fmt.Errorf("schedule %s: %w", id, ErrNotFound)
	}
	return l[0], nil
}

// SetSchedulePaused pauses or resumes a schedule; resuming sets its next
// fire time (the firings while it was paused are not made up).
func (s *Store) SetSchedulePaused(ctx context.Context, id string, paused bool, next time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE schedules SET paused = $1, next_fire = $2 WHERE id = $3`, paused, unix(next), id)
	if err != nil {
		return fmt.Errorf("pause schedule %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %s: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteSchedule deletes a schedule (the jobs it made stay).
func (s *Store) DeleteSchedule(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM schedules WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %s: %w", id, ErrNotFound)
	}
	return nil
}

// firing is the claim of one fire time of a schedule, made in the
// transaction that creates its job (see WithFiring).
type firing struct {
	scheduleID string
	at, next   time.Time
}

type firingKey struct{}

func (f firing) claim(ctx context.Context, tx *sql.Tx, jobID string) error {
	res, err := tx.ExecContext(ctx, `UPDATE schedules SET next_fire = $1, last_fire = $2, last_job = $3, last_error = ''
		WHERE id = $4 AND next_fire = $5 AND paused = $6`,
		unix(f.next), unix(f.at), jobID, f.scheduleID, unix(f.at), false)
	if err != nil {
		return fmt.Errorf("claim firing of schedule %s at %s: %w", f.scheduleID, f.at.Format(time.RFC3339), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("schedule %s at %s: %w", f.scheduleID, f.at.Format(time.RFC3339), ErrFiringClaimed)
	}
	return nil
}

// WithFiring returns a context under which CreateJob and CreateJobStream
// first claim the firing of schedule id at fire time at (moving its next
// fire time to next) in the job's own transaction: the job is created only
// when the claim succeeds, else they return ErrFiringClaimed. Two relays,
// or a relay before and after a restart, thus never create a firing's job
// twice.
func WithFiring(ctx context.Context, id string, at, next time.Time) context.Context {
	return context.WithValue(ctx, firingKey{}, firing{scheduleID: id, at: at.Truncate(time.Second), next: next.Truncate(time.Second)})
}

// SkipFiring claims the firing of schedule id at without creating a job
// (outside its window, too late, or the job could not be created: why),
// and moves it to next. It reports whether this call claimed it.
func (s *Store) SkipFiring(ctx context.Context, id string, at, next time.Time, why string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE schedules SET next_fire = $1, last_error = $2 WHERE id = $3 AND next_fire = $4`,
		unix(next), why, id, unix(at))
	if err != nil {
		return false, fmt.Errorf("skip firing of schedule %s: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
