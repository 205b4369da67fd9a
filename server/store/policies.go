package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrFixLimit is returned by RecordPolicyFix when a self-heal would exceed
// its policy's limit per site and hour, or per agent and day.
var ErrFixLimit = errors.New("self-heal limit reached")

// ErrPolicyFixExists is returned by ReservePolicyFix for a request ID
// recorded before (PolicyFixFor has its job).
var ErrPolicyFixExists = errors.New("self-heal request already recorded")

// Policy attaches a check, and optionally a fix, to agents (issue 17).
type Policy struct {
	ID, Name         string
	Target           string // selector; "" with SiteID set: every agent of the site
	SiteID           string
	Check            string // builtin:NAME or a plugin name
	Params           map[string]string
	Interval         time.Duration
	Fix              string // plugin name, or "script:NAME"; "" for none
	FixParams        map[string]string
	MaxFixesDay      int // per agent
	MaxFixesSiteHour int // per site
	CreatedBy        string
	CreatedAt        time.Time
}

const policyCols = `id, name, target, site_id, check_name, params, interval_s, fix, fix_params,
	max_fixes_day, max_fixes_site_hour, created_by, created_at`

func scanPolicy(sc scanner) (Policy, error) {
	var (
		p                 Policy
		params, fixParams string
		secs              int64
		created           sql.NullTime
	)
	if err := sc.Scan(&p.ID, &p.Name, &p.Target, &p.SiteID, &p.Check, &params, &secs, &p.Fix, &fixParams,
		&p.MaxFixesDay, &p.MaxFixesSiteHour, &p.CreatedBy, &created); err != nil {
		return Policy{}, err
	}
	var err error
	if p.Params, err = decodeMap(params); err != nil {
		return Policy{}, err
	}
	if p.FixParams, err = decodeMap(fixParams); err != nil {
		return Policy{}, err
	}
	p.Interval = time.Duration(secs) * time.Second
	p.CreatedAt = fromNull(created)
	return p, nil
}

// CreatePolicy stores a new policy; ErrNameTaken when the name is in use.
func (s *Store) CreatePolicy(ctx context.Context, p Policy) error {
	params, err := encodeMap(p.Params)
	if err != nil {
		return err
	}
	fixParams, err := encodeMap(p.FixParams)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO policies (`+policyCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		p.ID, p.Name, p.Target, p.SiteID, p.Check, params, int64(p.Interval/time.Second), p.Fix, fixParams,
		p.MaxFixesDay, p.MaxFixesSiteHour, p.CreatedBy, dbTime(p.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("policy %s: %w", p.Name, ErrNameTaken)
	}
	if err != nil {
		return fmt.Errorf("create policy: %w", err)
	}
	return nil
}

// ListPolicies returns every policy by name.
func (s *Store) ListPolicies(ctx context.Context) ([]Policy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+policyCols+` FROM policies ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// GetPolicy returns the policy with this name or ID.
func (s *Store) GetPolicy(ctx context.Context, nameOrID string) (Policy, error) {
	p, err := scanPolicy(s.db.QueryRowContext(ctx, `SELECT `+policyCols+` FROM policies WHERE name = $1 OR id = $1`, nameOrID))
	if errors.Is(err, sql.ErrNoRows) {
		return Policy{}, fmt.Errorf("policy %s: %w", nameOrID, ErrNotFound)
	}
	if err != nil {
		return Policy{}, fmt.Errorf("get policy: %w", err)
	}
	return p, nil
}

// DeletePolicy removes a policy and the check states it left.
func (s *Store) DeletePolicy(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM policies WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete policy: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("policy %s: %w", id, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM check_states WHERE policy_id = $1`, id); err != nil {
			return fmt.Errorf("delete policy: %w", err)
		}
		return nil
	})
}

// CheckEvent is one check result an agent sent: a state change, or the
// first result of a (agent, policy).
type CheckEvent struct {
	ID, AgentID, PolicyID string
	State                 string // "passed", "failed" or "error"
	Summary               string
	Fix                   string // "", "helped" or "not_helped": the result of a re-check after a self-heal
	At                    time.Time
}

// CheckState is the last known state of a check on an agent.
type CheckState struct {
	AgentID, PolicyID, State, Summary string
	ChangedAt                         time.Time
}

// SaveCheckEvent stores e exactly once (by its ID) and makes it the
// (agent, policy)'s current state. stored is false when e was stored before.
func (s *Store) SaveCheckEvent(ctx context.Context, e CheckEvent) (stored bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO check_events (id, agent_id, policy_id, state, summary, fix, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
			e.ID, e.AgentID, e.PolicyID, e.State, e.Summary, e.Fix, dbTime(e.At))
		if err != nil {
			return fmt.Errorf("save check event: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		stored = true
		_, err = tx.ExecContext(ctx, `INSERT INTO check_states (agent_id, policy_id, state, summary, changed_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (agent_id, policy_id) DO UPDATE SET state = excluded.state, summary = excluded.summary, changed_at = excluded.changed_at`,
			e.AgentID, e.PolicyID, e.State, e.Summary, dbTime(e.At))
		if err != nil {
			return fmt.Errorf("save check state: %w", err)
		}
		return nil
	})
	return stored, err
}

// CheckStates returns the check states of an agent ("" for every agent).
func (s *Store) CheckStates(ctx context.Context, agentID string) ([]CheckState, error) {
	out, err := queryRows(ctx, s.db, scanCheckState, `SELECT agent_id, policy_id, state, summary, changed_at FROM check_states
		WHERE $1 = '' OR agent_id = $1 ORDER BY agent_id, policy_id`, agentID)
	if err != nil {
		return nil, fmt.Errorf("check states: %w", err)
	}
	return out, nil
}

// CheckEvents returns the check history of an agent and a policy ("" for
// any), oldest first, at most limit events (the latest).
func (s *Store) CheckEvents(ctx context.Context, agentID, policyID string, limit int) ([]CheckEvent, error) {
	out, err := queryRows(ctx, s.db, scanCheckEvent, `SELECT id, agent_id, policy_id, state, summary, fix, at FROM (
		SELECT id, agent_id, policy_id, state, summary, fix, at FROM check_events
		WHERE ($1 = '' OR agent_id = $1) AND ($2 = '' OR policy_id = $2) ORDER BY at DESC, id DESC LIMIT $3) e
		ORDER BY at, id`, agentID, policyID, limit)
	if err != nil {
		return nil, fmt.Errorf("check events: %w", err)
	}
	return out, nil
}

// PolicyFix is one self-heal the relay allowed.
type PolicyFix struct {
	RequestID, PolicyID, AgentID, SiteID, JobID string
	CreatedAt                                   time.Time
}

// PolicyFixFor returns the job of an earlier request with this ID, or
// ErrNotFound.
func (s *Store) PolicyFixFor(ctx context.Context, requestID string) (string, error) {
	var job string
	err := s.db.QueryRowContext(ctx, `SELECT job_id FROM policy_fixes WHERE request_id = $1`, requestID).Scan(&job)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return job, err
}

// ReservePolicyFix records a self-heal of p on an agent if p's limits allow
// it, in one transaction: at most MaxFixesSiteHour self-heals of the policy
// in f.SiteID within the hour before f.CreatedAt, and MaxFixesDay on the
// agent within the day before; ErrFixLimit otherwise. Concurrent requests
// (several agents, several relays) cannot both take the last one. A request
// ID recorded before is left as it is, and ErrPolicyFixExists returned.
func (s *Store) ReservePolicyFix(ctx context.Context, p Policy, f PolicyFix) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockTx(ctx, tx, lockKeyPolicyFixes); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM policy_fixes WHERE request_id = $1`, f.RequestID).Scan(&n); err != nil {
			return fmt.Errorf("record self-heal: %w", err)
		} else if n > 0 {
			return ErrPolicyFixExists
		}
		var site, agent int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM policy_fixes WHERE site_id = $1 AND policy_id = $2 AND created_at > $3`,
			f.SiteID, p.ID, dbTime(f.CreatedAt.Add(-time.Hour))).Scan(&site); err != nil {
			return fmt.Errorf("count self-heals: %w", err)
		}
		if site >= p.MaxFixesSiteHour {
			return fmt.Errorf("policy %s: %d self-heals in this site within the hour, at most %d: %w", p.Name, site, p.MaxFixesSiteHour, ErrFixLimit)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM policy_fixes WHERE agent_id = $1 AND policy_id = $2 AND created_at > $3`,
			f.AgentID, p.ID, dbTime(f.CreatedAt.Add(-24*time.Hour))).Scan(&agent); err != nil {
			return fmt.Errorf("count self-heals: %w", err)
		}
		if agent >= p.MaxFixesDay {
			return fmt.Errorf("policy %s: %d self-heals on this agent within the day, at most %d: %w", p.Name, agent, p.MaxFixesDay, ErrFixLimit)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO policy_fixes (request_id, policy_id, agent_id, site_id, job_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id) DO NOTHING`,
			f.RequestID, p.ID, f.AgentID, f.SiteID, f.JobID, dbTime(f.CreatedAt))
		if err != nil {
			return fmt.Errorf("record self-heal: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrPolicyFixExists
		}
		return nil
	})
}

// ReleasePolicyFix forgets a reservation whose job could not be created.
func (s *Store) ReleasePolicyFix(ctx context.Context, requestID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM policy_fixes WHERE request_id = $1`, requestID); err != nil {
		return fmt.Errorf("release self-heal: %w", err)
	}
	return nil
}
