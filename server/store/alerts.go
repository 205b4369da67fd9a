package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// Alerts (migration 00024): see server/alerts for what raises them.

// Alert states.
const (
	AlertOpen         = "open"
	AlertAcknowledged = "acknowledged"
	AlertResolved     = "resolved"
)

// Alert severities, in rising order.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// SeverityRank orders severities (info 1, warning 2, critical 3); 0 for
// anything else.
func SeverityRank(s string) int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// ErrAlertState is returned when an alert cannot move to the state asked
// for (acknowledging a resolved alert).
var ErrAlertState = errors.New("alert state does not allow this")

// Alert is one alert. Its JSON form is what webhooks receive (see the
// README, "Alerts").
type Alert struct {
	ID         string            `json:"id"`
	Kind       string            `json:"kind"`
	AgentID    string            `json:"agent_id,omitempty"`
	Hostname   string            `json:"hostname,omitempty"` // filled in by the queries
	Check      string            `json:"check,omitempty"`
	SiteID     string            `json:"site_id,omitempty"`
	Severity   string            `json:"severity"`
	State      string            `json:"state"`
	Summary    string            `json:"summary"`
	Details    map[string]string `json:"details,omitempty"`
	Count      int               `json:"count"`
	OpenedAt   time.Time         `json:"opened_at"`
	LastSeen   time.Time         `json:"last_seen"`
	AckedAt    time.Time         `json:"acknowledged_at,omitzero"`
	AckedBy    string            `json:"acknowledged_by,omitempty"`
	ResolvedAt time.Time         `json:"resolved_at,omitzero"`
	ResolvedBy string            `json:"resolved_by,omitempty"`
	Note       string            `json:"note,omitempty"`
}

// AlertKey is what deduplicates alerts: one live (not resolved) alert per
// key.
type AlertKey struct {
	Kind, AgentID, Check string
}

func (k AlertKey) String() string { return k.Kind + "\x1f" + k.AgentID + "\x1f" + k.Check }

// Key returns the alert's dedup key.
func (a Alert) Key() AlertKey { return AlertKey{Kind: a.Kind, AgentID: a.AgentID, Check: a.Check} }

const alertCols = `a.id, a.kind, a.agent_id, a.check_name, a.site_id, a.severity, a.state, a.summary, a.details,
	a.count, a.opened_at, a.last_seen, a.acked_at, a.acked_by, a.resolved_at, a.resolved_by, a.note, COALESCE(g.hostname, '')`

const alertFrom = ` FROM alerts a LEFT JOIN agents g ON g.id = a.agent_id`

func scanAlert(sc scanner) (Alert, error) {
	var (
		a                             Alert
		details                       string
		opened, last, acked, resolved sql.NullTime
	)
	if err := sc.Scan(&a.ID, &a.Kind, &a.AgentID, &a.Check, &a.SiteID, &a.Severity, &a.State, &a.Summary, &details,
		&a.Count, &opened, &last, &acked, &a.AckedBy, &resolved, &a.ResolvedBy, &a.Note, &a.Hostname); err != nil {
		return Alert{}, err
	}
	var err error
	if a.Details, err = decodeMap(details); err != nil {
		return Alert{}, fmt.Errorf("alert %s: details: %w", a.ID, err)
	}
	a.OpenedAt, a.LastSeen, a.AckedAt, a.ResolvedAt = fromNull(opened), fromNull(last), fromNull(acked), fromNull(resolved)
	return a, nil
}

func (s *Store) queryAlerts(ctx context.Context, q queryer, query string, args ...any) ([]Alert, error) {
	return queryRows(ctx, q, scanAlert, query, args...)
}

// queryRows runs query and scans every row with scan.
func queryRows[T any](ctx context.Context, q queryer, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		x, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// RaiseAlert opens the alert a describes (Kind, AgentID, Check, Severity,
// Summary, Details), or, when one with its key is live (open or
// acknowledged), bumps that one's count and last-seen and updates its
// severity, summary and details. An alert about an agent is in the agent's
// site; one about no agent in a.SiteID ("" for none). Opening is audited
// (actor) and queued for the alert routes that match, in the same
// transaction; a bump is neither. It returns the stored alert and whether
// it was opened.
func (s *Store) RaiseAlert(ctx context.Context, a Alert, actor string, now time.Time) (Alert, bool, error) {
	details, err := encodeMap(a.Details)
	if err != nil {
		return Alert{}, false, fmt.Errorf("raise alert: %w", err)
	}
	key := a.Key().String()
	var opened bool
	for try := 0; ; try++ {
		opened = false
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE alerts SET count = count + 1, last_seen = $1, severity = $2, summary = $3, details = $4
				WHERE dedup_key = $5 AND state <> 'resolved'`, dbTime(now), a.Severity, a.Summary, details, key)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n > 0 {
				return err
			}
			a.ID, a.State, a.Count, a.OpenedAt, a.LastSeen = NewID(), AlertOpen, 1, now, now
			if a.AgentID != "" {
				a.SiteID = ""
				if err := tx.QueryRowContext(ctx, `SELECT site_id FROM agents WHERE id = $1`, a.AgentID).Scan(&a.SiteID); err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO alerts (id, kind, agent_id, check_name, dedup_key, site_id, severity, state, summary, details, count, opened_at, last_seen)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				a.ID, a.Kind, a.AgentID, a.Check, key, a.SiteID, a.Severity, a.State, a.Summary, details, a.Count, dbTime(now), dbTime(now)); err != nil {
				return err
			}
			opened = true
			return s.alertEventTx(ctx, tx, a.ID, "alert.open", actor, "", now)
		})
		if err != nil && isUniqueViolation(err) && try < 3 {
			continue // another relay opened it meanwhile: bump that one
		}
		break
	}
	if err != nil {
		return Alert{}, false, fmt.Errorf("raise alert %s: %w", a.Kind, err)
	}
	got, err := s.alertByKey(ctx, key)
	return got, opened, err
}

func (s *Store) alertByKey(ctx context.Context, key string) (Alert, error) {
	as, err := s.queryAlerts(ctx, s.db, `SELECT `+alertCols+alertFrom+` WHERE a.dedup_key = $1 ORDER BY a.opened_at DESC, a.id DESC LIMIT 1`, key)
	if err != nil {
		return Alert{}, fmt.Errorf("read alert: %w", err)
	}
	if len(as) == 0 {
		return Alert{}, ErrNotFound
	}
	return as[0], nil
}

// ClearAlert resolves the live alert with key, if there is one (the
// condition cleared), audited as actor. It reports whether one was.
func (s *Store) ClearAlert(ctx context.Context, key AlertKey, actor, note string, now time.Time) (bool, error) {
	var cleared bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, `UPDATE alerts SET state = 'resolved', resolved_at = $1, resolved_by = $2, note = $3
			WHERE dedup_key = $4 AND state <> 'resolved' RETURNING id`, dbTime(now), actor, note, key.String()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		cleared = true
		return s.alertEventTx(ctx, tx, id, "alert.resolve", actor, note, now)
	})
	if err != nil {
		return false, fmt.Errorf("clear alert %s: %w", key.Kind, err)
	}
	return cleared, nil
}

// SetAlertState acknowledges (AlertAcknowledged) or resolves
// (AlertResolved) the alert id that scope reaches, audited as actor with
// note. ErrNotFound when scope does not reach it, ErrAlertState when it
// is resolved already.
func (s *Store) SetAlertState(ctx context.Context, scope Scope, id, state, actor, note string, now time.Time) (Alert, error) {
	var (
		set    string
		action string
	)
	switch state {
	case AlertAcknowledged:
		set, action = `state = 'acknowledged', acked_at = $1, acked_by = $2, note = $3`, "alert.ack"
	case AlertResolved:
		set, action = `state = 'resolved', resolved_at = $1, resolved_by = $2, note = $3`, "alert.resolve"
	default:
		return Alert{}, fmt.Errorf("set alert state: unknown state %q", state)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		l := argList{args: []any{dbTime(now), actor, note}}
		where := `id = ` + l.add(id) + ` AND ` + scope.where("site_id", l.add)
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET `+set+` WHERE `+where+` AND state <> 'resolved'`, l.args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var cur string
			var l2 argList
			if err := tx.QueryRowContext(ctx, `SELECT state FROM alerts WHERE id = `+l2.add(id)+` AND `+scope.where("site_id", l2.add), l2.args...).Scan(&cur); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return ErrNotFound
				}
				return err
			}
			return ErrAlertState
		}
		return s.alertEventTx(ctx, tx, id, action, actor, note, now)
	})
	if err != nil {
		return Alert{}, fmt.Errorf("alert %s: %w", id, err)
	}
	as, err := s.queryAlerts(ctx, s.db, `SELECT `+alertCols+alertFrom+` WHERE a.id = $1`, id)
	if err != nil || len(as) == 0 {
		return Alert{}, fmt.Errorf("read alert %s: %v", id, err)
	}
	return as[0], nil
}

// alertEventTx audits an alert's change of state and queues its
// notification for every route that matches its site and severity.
func (s *Store) alertEventTx(ctx context.Context, tx *sql.Tx, id, action, actor, note string, now time.Time) error {
	as, err := s.queryAlerts(ctx, tx, `SELECT `+alertCols+alertFrom+` WHERE a.id = $1`, id)
	if err != nil {
		return err
	}
	if len(as) == 0 {
		return ErrNotFound
	}
	a := as[0]
	detail := map[string]string{"kind": a.Kind, "severity": a.Severity, "state": a.State}
	if a.AgentID != "" {
		detail["agent"] = a.AgentID
	}
	if a.Check != "" {
		detail["check"] = a.Check
	}
	if note != "" {
		detail["note"] = note
	}
	if a.SiteID != "" {
		detail = withSite(detail, a.SiteID)
	}
	r := audit.Record{Time: now, Actor: actor, Action: action, Target: a.ID, Detail: detail}
	enc, err := prepareAudit(&r)
	if err != nil {
		return err
	}
	if err := appendAuditTx(ctx, tx, &r, enc); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	event := strings.TrimPrefix(action, "alert.")
	body, err := json.Marshal(AlertEvent{Event: event, Time: now.UTC(), Actor: actor, Alert: a})
	if err != nil {
		return err
	}
	routes, err := s.alertRoutes(ctx, tx)
	if err != nil {
		return err
	}
	for _, rt := range routes {
		if !rt.Matches(a) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox (id, route_id, alert_id, event, body, created_at, next_attempt)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, NewID(), rt.ID, a.ID, event, string(body), dbTime(now), dbTime(now)); err != nil {
			return fmt.Errorf("queue notification: %w", err)
		}
	}
	return nil
}

// AlertEvent is the JSON body a webhook receives: what happened
// ("open", "ack", "resolve"), when, by whom, and the alert as it is now.
type AlertEvent struct {
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
	Actor string    `json:"actor"`
	Alert Alert     `json:"alert"`
}

// AlertFilter selects alerts for ListAlerts; zero fields match all.
type AlertFilter struct {
	State, SiteID, Kind, AgentID string
}

// ListAlerts returns up to limit (default 500) alerts scope reaches,
// newest first.
func (s *Store) ListAlerts(ctx context.Context, scope Scope, f AlertFilter, limit int) ([]Alert, error) {
	if limit <= 0 {
		limit = 500
	}
	var l argList
	conds := []string{scope.where("a.site_id", l.add)}
	if f.State != "" {
		conds = append(conds, "a.state = "+l.add(f.State))
	}
	if f.SiteID != "" {
		conds = append(conds, "a.site_id = "+l.add(f.SiteID))
	}
	if f.Kind != "" {
		conds = append(conds, "a.kind = "+l.add(f.Kind))
	}
	if f.AgentID != "" {
		conds = append(conds, "a.agent_id = "+l.add(f.AgentID))
	}
	q := `SELECT ` + alertCols + alertFrom + ` WHERE ` + strings.Join(conds, " AND ") + ` ORDER BY a.opened_at DESC, a.id DESC LIMIT ` + l.add(limit)
	out, err := s.queryAlerts(ctx, s.db, q, l.args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// FindAlerts returns the alert scope reaches with ID ref, or else those
// whose ID starts with ref (at most limit, by ID).
func (s *Store) FindAlerts(ctx context.Context, scope Scope, ref string, limit int) ([]Alert, error) {
	var l argList
	q := `SELECT ` + alertCols + alertFrom + ` WHERE a.id = ` + l.add(ref) + ` AND ` + scope.where("a.site_id", l.add)
	out, err := s.queryAlerts(ctx, s.db, q, l.args...)
	if err != nil || len(out) == 1 {
		return out, err
	}
	l = argList{}
	in := scope.where("a.site_id", l.add)
	where, args, ok := prefixWhere(ref, len(l.args)+1)
	if !ok {
		return nil, nil
	}
	l.args = append(l.args, args...)
	out, err = s.queryAlerts(ctx, s.db, `SELECT `+alertCols+alertFrom+` WHERE `+in+` AND `+strings.ReplaceAll(where, "id", "a.id")+` ORDER BY a.id LIMIT `+l.add(limit), l.args...)
	if err != nil {
		return nil, fmt.Errorf("find alert %q: %w", ref, err)
	}
	return out, nil
}

// OfflineAgent is an agent last seen before some time.
type OfflineAgent struct {
	ID, Hostname, SiteID string
	LastSeen             time.Time
}

// AgentsSeenBefore returns the agents (not revoked) last seen before t:
// those a relay may consider offline when no relay holds them.
func (s *Store) AgentsSeenBefore(ctx context.Context, t time.Time) ([]OfflineAgent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, hostname, site_id, last_seen FROM agents
		WHERE revoked_at IS NULL AND last_seen IS NOT NULL AND last_seen < $1 ORDER BY id`, dbTime(t))
	if err != nil {
		return nil, fmt.Errorf("agents seen before %s: %w", t.Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []OfflineAgent
	for rows.Next() {
		var (
			a    OfflineAgent
			last sql.NullTime
		)
		if err := rows.Scan(&a.ID, &a.Hostname, &a.SiteID, &last); err != nil {
			return nil, err
		}
		a.LastSeen = fromNull(last)
		out = append(out, a)
	}
	return out, rows.Err()
}
