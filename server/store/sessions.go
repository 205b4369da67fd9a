package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// Session states. A session request ends in exactly one of denied, failed
// or ended; approved is the live state.
const (
	SessionRequested = "requested"
	SessionApproved  = "approved"
	SessionDenied    = "denied"
	SessionFailed    = "failed"
	SessionEnded     = "ended"
)

// Session is one interactive session request and what came of it.
type Session struct {
	ID, AgentID, Hostname string
	Technician            string // the API token's name
	TokenID               string // the API token that opened it ("" before migration 00016)
	Actor                 string // the audit actor of the requester
	Reason                string
	Capabilities          []string // requested
	Granted               []string // approved by the agent
	State                 string
	ConsentMode           string // the agent's policy: prompt, notify, unattended
	ConsentBackend        string // how the user was asked
	ConsentBy             string // who decided
	Message               string // why it was refused or failed
	EndBy, EndReason      string
	RecordingSize         int64
	RequestedAt           time.Time
	StartedAt, EndedAt    time.Time // zero until approved / ended
	SiteID                string    // the agent's site when the session was requested
	Node                  string    // the relay that brokers it (its stable ID; "" for a relay alone); written, not read back
}

const sessionCols = `id, agent_id, hostname, technician, actor, reason, capabilities, granted, state,
	consent_mode, consent_backend, consent_by, message, end_by, end_reason, recording_size,
	requested_at, started_at, ended_at, token_id, site_id`

func scanSession(sc scanner) (Session, error) {
	var s Session
	var caps, granted string
	var started, ended sql.NullTime
	err := sc.Scan(&s.ID, &s.AgentID, &s.Hostname, &s.Technician, &s.Actor, &s.Reason, &caps, &granted, &s.State,
		&s.ConsentMode, &s.ConsentBackend, &s.ConsentBy, &s.Message, &s.EndBy, &s.EndReason, &s.RecordingSize,
		&s.RequestedAt, &started, &ended, &s.TokenID, &s.SiteID)
	if err != nil {
		return s, err
	}
	s.RequestedAt = s.RequestedAt.UTC()
	s.StartedAt, s.EndedAt = fromNull(started), fromNull(ended)
	if s.Capabilities, err = decodeList(caps); err != nil {
		return s, err
	}
	s.Granted, err = decodeList(granted)
	return s, err
}

// withAudit runs change in one transaction with the append of rec (if not
// nil): a session change and its audit record commit together. change
// reports whether it changed anything; rec is appended only then. site
// (the session's) is added to rec's detail as "site" unless it has one.
func (s *Store) withAudit(ctx context.Context, site string, rec *audit.Record, change func(tx *sql.Tx) (bool, error)) (bool, error) {
	var detail string
	if rec != nil {
		if _, ok := rec.Detail["site"]; !ok && site != "" {
			rec.Detail = withSite(rec.Detail, site)
		}
		var err error
		if detail, err = prepareAudit(rec); err != nil {
			return false, err
		}
	}
	var changed bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if changed, err = change(tx); err != nil || !changed || rec == nil {
			return err
		}
		return appendAuditTx(ctx, tx, rec, detail)
	})
	return changed, err
}

// CreateSession records a new session request (state requested) and, in
// the same transaction, rec (may be nil).
func (s *Store) CreateSession(ctx context.Context, x Session, rec *audit.Record) error {
	caps, err := encodeList(x.Capabilities)
	if err != nil {
		return err
	}
	if x.SiteID == "" {
		// An unknown agent leaves the site empty: only those who reach
		// every site see the session.
		err := s.db.QueryRowContext(ctx, `SELECT site_id FROM agents WHERE id = $1`, x.AgentID).Scan(&x.SiteID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("create session: site of agent %s: %w", x.AgentID, err)
		}
	}
	_, err = s.withAudit(ctx, x.SiteID, rec, func(tx *sql.Tx) (bool, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, agent_id, hostname, technician, actor, reason,
			capabilities, state, requested_at, token_id, site_id, node) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			x.ID, x.AgentID, x.Hostname, x.Technician, x.Actor, x.Reason, caps, SessionRequested, dbTime(x.RequestedAt), x.TokenID, x.SiteID, x.Node)
		return true, err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Decision is an agent's answer to a session request.
type Decision struct {
	Approved                   bool
	Granted                    []string
	Mode, Backend, By, Message string
	At                         time.Time
}

// DecideSession records the agent's answer: approved (state approved, started
// now) or not (state denied, ended now), and rec (may be nil) with it. Only a
// requested session changes; ErrNotFound otherwise.
func (s *Store) DecideSession(ctx context.Context, id string, d Decision, rec *audit.Record) error {
	g, err := encodeList(d.Granted)
	if err != nil {
		return err
	}
	state, started, ended := SessionDenied, any(nil), dbTime(d.At)
	if d.Approved {
		state, started, ended = SessionApproved, dbTime(d.At), nil
	}
	_, err = s.withAudit(ctx, s.sessionSite(ctx, id), rec, func(tx *sql.Tx) (bool, error) {
		err := mustAffect(tx.ExecContext(ctx, `UPDATE sessions SET state = $1, granted = $2, consent_mode = $3,
			consent_backend = $4, consent_by = $5, message = $6, started_at = $7, ended_at = $8
			WHERE id = $9 AND state = $10`, state, g, d.Mode, d.Backend, d.By, d.Message, started, ended, id, SessionRequested))
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("record consent for session %s: %w", id, err)
	}
	return nil
}

// EndSession ends a session that is not yet final: an approved one becomes
// ended, a requested one failed; rec (may be nil) is appended only then. It
// reports whether the row changed (a session ends once; later calls keep the
// first reason).
func (s *Store) EndSession(ctx context.Context, id, by, reason string, t time.Time, rec *audit.Record) (bool, error) {
	changed, err := s.withAudit(ctx, s.sessionSite(ctx, id), rec, func(tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET
			state = CASE WHEN state = $1 THEN $2 ELSE $3 END,
			end_by = $4, end_reason = $5, ended_at = $6,
			message = CASE WHEN state = $7 THEN $8 ELSE message END
			WHERE id = $9 AND state IN ($10, $11)`,
			SessionApproved, SessionEnded, SessionFailed, by, reason, dbTime(t), SessionRequested, reason,
			id, SessionRequested, SessionApproved)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		return n > 0, err
	})
	if err != nil {
		return false, fmt.Errorf("end session %s: %w", id, err)
	}
	return changed, nil
}

// EndOpenSessions fails or ends the sessions not yet final that the relay
// node brokered (and those from before sessions recorded their relay); a
// relay calls it at start, since no session survives a relay restart. With
// node "" (a relay alone) it ends every open session.
func (s *Store) EndOpenSessions(ctx context.Context, node, reason string, t time.Time) (int, error) {
	q := `UPDATE sessions SET
		state = CASE WHEN state = $1 THEN $2 ELSE $3 END, end_by = $4, end_reason = $5, ended_at = $6
		WHERE state IN ($7, $8)`
	args := []any{SessionApproved, SessionEnded, SessionFailed, "relay", reason, dbTime(t), SessionRequested, SessionApproved}
	if node != "" {
		q += ` AND node IN ($9, '')`
		args = append(args, node)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("end open sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// SetRecordingSize records how many bytes of recording the relay stored.
func (s *Store) SetRecordingSize(ctx context.Context, id string, size int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sessions SET recording_size = $1 WHERE id = $2`, size, id)
	if err != nil {
		return fmt.Errorf("session %s recording size: %w", id, err)
	}
	return nil
}

// GetSession returns one session.
func (s *Store) GetSession(ctx context.Context, id string) (Session, error) {
	x, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return x, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return x, fmt.Errorf("get session %s: %w", id, err)
	}
	return x, nil
}

// sessionSite returns a session's site ("" when it cannot be read: the
// audit record then has no site, and only those who reach every site see
// it).
func (s *Store) sessionSite(ctx context.Context, id string) string {
	var site string
	s.db.QueryRowContext(ctx, `SELECT site_id FROM sessions WHERE id = $1`, id).Scan(&site)
	return site
}

// ListSessions returns the newest sessions first (IDs are UUIDv7), at most
// limit, of the sites scope reaches, optionally only those of one agent.
func (s *Store) ListSessions(ctx context.Context, scope Scope, agentID string, limit int) ([]Session, error) {
	var l argList
	q := `SELECT ` + sessionCols + ` FROM sessions WHERE ` + scope.where("site_id", l.add)
	if agentID != "" {
		q += ` AND agent_id = ` + l.add(agentID)
	}
	q += ` ORDER BY id DESC LIMIT ` + l.add(limit)
	rows, err := s.db.QueryContext(ctx, q, l.args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}
