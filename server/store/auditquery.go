package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// AuditQuery selects audit records. The zero value selects every record,
// oldest first, a page of 1000. Filters combine with AND.
type AuditQuery struct {
	After  int64 // only records with seq > After
	Before int64 // only records with seq < Before, when Before > 0
	Limit  int   // at most this many records; 0 or less means 1000
	// Newest returns the newest matching records first (seq descending), for
	// "the last N records that match"; otherwise oldest first.
	Newest bool

	// Actor matches records whose actor contains it, ignoring the case of
	// ASCII letters ("alice" matches "alice (admin, api token 1a2b3c4d)").
	Actor string
	// Action matches records of exactly that action, or, when it ends in
	// "*", of every action starting with what comes before ("session.*").
	Action string
	// AgentID matches records about one agent: its ID is the target, or
	// appears in the actor ("agent <id> (...)": the endpoint's own consent
	// decisions) or in a detail value ("agent_id", "agent"), or the target
	// is one of that agent's sessions. Give a full agent ID: the API
	// resolves hostnames and prefixes before it asks.
	AgentID string
	// Since and Until bound the record time: Since <= time < Until. Zero
	// means unbounded.
	Since, Until time.Time

	// Site matches records about one site (their detail "site"; a full
	// site ID: the API resolves names).
	Site string
	// Scope limits records to those about the sites it reaches; a scope
	// that is not All sees no relay-wide record (one without a site). The
	// zero Scope sees nothing: callers set it.
	Scope Scope
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// auditWhere builds the WHERE clause of q and its arguments, placeholders
// numbered in order of appearance (the store's convention for both engines).
func auditWhere(q AuditQuery) (string, []any) {
	var (
		conds []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds = append(conds, "seq > "+arg(q.After))
	if q.Before > 0 {
		conds = append(conds, "seq < "+arg(q.Before))
	}
	if q.Actor != "" {
		conds = append(conds, `LOWER(actor) LIKE `+arg("%"+likeEscape(strings.ToLower(q.Actor))+"%")+` ESCAPE '\'`)
	}
	if prefix, ok := strings.CutSuffix(q.Action, "*"); ok {
		if prefix != "" {
			conds = append(conds, `action LIKE `+arg(likeEscape(prefix)+"%")+` ESCAPE '\'`)
		}
	} else if q.Action != "" {
		conds = append(conds, "action = "+arg(q.Action))
	}
	if q.AgentID != "" {
		pat := "%" + likeEscape(q.AgentID) + "%"
		conds = append(conds, "(target = "+arg(q.AgentID)+
			` OR actor LIKE `+arg(pat)+` ESCAPE '\'`+
			` OR detail LIKE `+arg(pat)+` ESCAPE '\'`+
			" OR target IN (SELECT id FROM sessions WHERE agent_id = "+arg(q.AgentID)+"))")
	}
	if q.Site != "" {
		conds = append(conds, "site_id = "+arg(q.Site))
	}
	conds = append(conds, q.Scope.where("site_id", arg))
	if !q.Since.IsZero() {
		conds = append(conds, "at >= "+arg(dbTime(q.Since)))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "at < "+arg(dbTime(q.Until)))
	}
	return strings.Join(conds, " AND "), args
}

// QueryAudit returns the records q selects, in seq order (descending when
// q.Newest). The filters run in SQL: an action filter reads the
// audit_log_action index, the others walk the log in seq order from the
// page's start, so paging through a whole export stays linear.
func (s *Store) QueryAudit(ctx context.Context, q AuditQuery) ([]audit.Record, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = auditPage
	}
	where, args := auditWhere(q)
	order := "seq"
	if q.Newest {
		order = "seq DESC"
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+auditCols+` FROM audit_log WHERE `+where+` ORDER BY `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	defer rows.Close()
	var recs []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("query audit: %w", err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit: %w", err)
	}
	return recs, nil
}

// AuditCursor returns the seq of the last record the audit forwarder name
// has delivered (0 when it has delivered none yet).
func (s *Store) AuditCursor(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM audit_forward WHERE name = $1`, name).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read audit forward cursor %s: %w", name, err)
	}
	return seq, nil
}

// SetAuditCursor records that the audit forwarder name has delivered every
// record up to seq.
func (s *Store) SetAuditCursor(ctx context.Context, name string, seq int64, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO audit_forward (name, seq, updated_at) VALUES ($1, $2, $3)
		 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`, name, seq, dbTime(now))
	if err != nil {
		return fmt.Errorf("save audit forward cursor %s: %w", name, err)
	}
	return nil
}
