package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// Incidents (migration 00027). An incident is about one site: scoped
// people see, note, link and resolve the incidents of their sites only
// (ErrNotFound otherwise). Every change is audited in its transaction.

// Incident states.
const (
	IncidentOpen     = "open"
	IncidentResolved = "resolved"
)

// Kinds of incident links.
const (
	LinkSession = "session"
	LinkJob     = "job"
	LinkAlert   = "alert"
)

// ErrIncidentResolved is returned when a resolved incident is resolved
// again.
var ErrIncidentResolved = errors.New("incident is resolved already")

// Incident is one incident; Notes and Links are filled in by GetIncident.
type Incident struct {
	ID, Title, Ticket, SiteID string
	Agents                    []string
	Severity, State           string
	Resolution, KnownFix      string
	CreatedAt                 time.Time
	CreatedBy                 string
	ResolvedAt                time.Time
	ResolvedBy                string
	Notes                     []IncidentNote
	Links                     []IncidentLink
}

// IncidentNote is one note (Markdown), never changed once added.
type IncidentNote struct {
	ID, Author, Body string
	CreatedAt        time.Time
}

// IncidentLink ties an incident to a session, job or alert.
type IncidentLink struct {
	Kind, RefID string
	CreatedAt   time.Time
	CreatedBy   string
}

const incidentCols = `id, title, ticket, site_id, agents, severity, state, resolution, known_fix, created_at, created_by, resolved_at, resolved_by`

func scanIncident(sc scanner) (Incident, error) {
	var (
		x                 Incident
		agents            string
		created, resolved sql.NullTime
	)
	if err := sc.Scan(&x.ID, &x.Title, &x.Ticket, &x.SiteID, &agents, &x.Severity, &x.State, &x.Resolution, &x.KnownFix,
		&created, &x.CreatedBy, &resolved, &x.ResolvedBy); err != nil {
		return Incident{}, err
	}
	var err error
	if x.Agents, err = decodeList(agents); err != nil {
		return Incident{}, fmt.Errorf("incident %s: agents: %w", x.ID, err)
	}
	x.CreatedAt, x.ResolvedAt = fromNull(created), fromNull(resolved)
	return x, nil
}

func (s *Store) queryIncidents(ctx context.Context, q queryer, query string, args ...any) ([]Incident, error) {
	return queryRows(ctx, q, scanIncident, query, args...)
}

// CreateIncident stores x (open), with links (e.g. the alert or session it
// came from) and a first note (if body is not empty), audited as
// incident.create by actor. The caller checked x.SiteID is in its scope.
func (s *Store) CreateIncident(ctx context.Context, x Incident, links []IncidentLink, note, actor string, now time.Time) (Incident, error) {
	agents, err := encodeList(x.Agents)
	if err != nil {
		return Incident{}, fmt.Errorf("create incident: %w", err)
	}
	x.ID, x.State, x.CreatedAt, x.CreatedBy = NewID(), IncidentOpen, now.UTC().Truncate(time.Microsecond), actor
	detail := map[string]string{"title": x.Title, "severity": x.Severity}
	if x.Ticket != "" {
		detail["ticket"] = x.Ticket
	}
	if len(x.Agents) > 0 {
		detail["agents"] = strings.Join(x.Agents, ",")
	}
	for _, l := range links {
		detail[l.Kind] = l.RefID
	}
	rec := &audit.Record{Time: now, Actor: actor, Action: "incident.create", Target: x.ID, Detail: detail}
	_, err = s.withAudit(ctx, x.SiteID, rec, func(tx *sql.Tx) (bool, error) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, title, ticket, site_id, agents, severity, state, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, x.ID, x.Title, x.Ticket, x.SiteID, agents, x.Severity, x.State, dbTime(now), actor); err != nil {
			return false, err
		}
		for _, l := range links {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_links (incident_id, kind, ref_id, created_at, created_by) VALUES ($1, $2, $3, $4, $5)`,
				x.ID, l.Kind, l.RefID, dbTime(now), actor); err != nil {
				return false, err
			}
		}
		if note != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_notes (id, incident_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)`,
				NewID(), x.ID, actor, note, dbTime(now)); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return Incident{}, fmt.Errorf("create incident: %w", err)
	}
	return s.GetIncident(ctx, Scope{All: true}, x.ID)
}

// IncidentFilter selects incidents; zero fields match all.
type IncidentFilter struct {
	State, SiteID string
}

// ListIncidents returns up to limit (default 500) incidents scope reaches,
// newest first, without notes and links.
func (s *Store) ListIncidents(ctx context.Context, scope Scope, f IncidentFilter, limit int) ([]Incident, error) {
	if limit <= 0 {
		limit = 500
	}
	var l argList
	conds := []string{scope.where("site_id", l.add)}
	if f.State != "" {
		conds = append(conds, "state = "+l.add(f.State))
	}
	if f.SiteID != "" {
		conds = append(conds, "site_id = "+l.add(f.SiteID))
	}
	out, err := s.queryIncidents(ctx, s.db, `SELECT `+incidentCols+` FROM incidents WHERE `+strings.Join(conds, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT `+l.add(limit), l.args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return out, nil
}

// FindIncidents returns the incident scope reaches with ID ref, or else
// those whose ID starts with ref (at most limit, by ID).
func (s *Store) FindIncidents(ctx context.Context, scope Scope, ref string, limit int) ([]Incident, error) {
	var l argList
	q := `SELECT ` + incidentCols + ` FROM incidents WHERE id = ` + l.add(ref) + ` AND ` + scope.where("site_id", l.add)
	out, err := s.queryIncidents(ctx, s.db, q, l.args...)
	if err != nil || len(out) == 1 {
		return out, err
	}
	l = argList{}
	in := scope.where("site_id", l.add)
	where, args, ok := prefixWhere(ref, len(l.args)+1)
	if !ok {
		return nil, nil
	}
	l.args = append(l.args, args...)
	out, err = s.queryIncidents(ctx, s.db, `SELECT `+incidentCols+` FROM incidents WHERE `+in+` AND `+where+` ORDER BY id LIMIT `+l.add(limit), l.args...)
	if err != nil {
		return nil, fmt.Errorf("find incident %q: %w", ref, err)
	}
	return out, nil
}

// GetIncident returns incident id with its notes and links, when scope
// reaches it (ErrNotFound otherwise).
func (s *Store) GetIncident(ctx context.Context, scope Scope, id string) (Incident, error) {
	var l argList
	out, err := s.queryIncidents(ctx, s.db, `SELECT `+incidentCols+` FROM incidents WHERE id = `+l.add(id)+` AND `+scope.where("site_id", l.add), l.args...)
	if err != nil {
		return Incident{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	if len(out) == 0 {
		return Incident{}, ErrNotFound
	}
	x := out[0]
	rows, err := s.db.QueryContext(ctx, `SELECT id, author, body, created_at FROM incident_notes WHERE incident_id = $1 ORDER BY created_at, id`, id)
	if err != nil {
		return Incident{}, fmt.Errorf("read incident %s notes: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			n  IncidentNote
			at sql.NullTime
		)
		if err := rows.Scan(&n.ID, &n.Author, &n.Body, &at); err != nil {
			return Incident{}, fmt.Errorf("read incident %s notes: %w", id, err)
		}
		n.CreatedAt = fromNull(at)
		x.Notes = append(x.Notes, n)
	}
	if err := rows.Err(); err != nil {
		return Incident{}, fmt.Errorf("read incident %s notes: %w", id, err)
	}
	lrows, err := s.db.QueryContext(ctx, `SELECT kind, ref_id, created_at, created_by FROM incident_links WHERE incident_id = $1 ORDER BY created_at, kind, ref_id`, id)
	if err != nil {
		return Incident{}, fmt.Errorf("read incident %s links: %w", id, err)
	}
	defer lrows.Close()
	for lrows.Next() {
		var (
			k  IncidentLink
			at sql.NullTime
		)
		if err := lrows.Scan(&k.Kind, &k.RefID, &at, &k.CreatedBy); err != nil {
			return Incident{}, fmt.Errorf("read incident %s links: %w", id, err)
		}
		k.CreatedAt = fromNull(at)
		x.Links = append(x.Links, k)
	}
	if err := lrows.Err(); err != nil {
		return Incident{}, fmt.Errorf("read incident %s links: %w", id, err)
	}
	return x, nil
}

// incidentSite returns the site of incident id when scope reaches it.
func incidentSite(ctx context.Context, tx *sql.Tx, scope Scope, id string) (site, state string, err error) {
	var l argList
	err = tx.QueryRowContext(ctx, `SELECT site_id, state FROM incidents WHERE id = `+l.add(id)+` AND `+scope.where("site_id", l.add), l.args...).Scan(&site, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", ErrNotFound
	}
	return site, state, err
}

// auditTx appends an audit record of an incident's change inside tx.
func auditIncidentTx(ctx context.Context, tx *sql.Tx, site, action, actor, id string, detail map[string]string, now time.Time) error {
	rec := audit.Record{Time: now, Actor: actor, Action: action, Target: id, Detail: withSite(detail, site)}
	enc, err := prepareAudit(&rec)
	if err != nil {
		return err
	}
	if err := appendAuditTx(ctx, tx, &rec, enc); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// AddIncidentNote appends a note by actor to incident id that scope
// reaches, audited as incident.note.
func (s *Store) AddIncidentNote(ctx context.Context, scope Scope, id, body, actor string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		site, _, err := incidentSite(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		nid := NewID()
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_notes (id, incident_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)`,
			nid, id, actor, body, dbTime(now)); err != nil {
			return err
		}
		return auditIncidentTx(ctx, tx, site, "incident.note", actor, id, map[string]string{"note": nid, "bytes": fmt.Sprint(len(body))}, now)
	})
	if err != nil {
		return fmt.Errorf("incident %s: add note: %w", id, err)
	}
	return nil
}

// LinkIncident links incident id that scope reaches to a session, job or
// alert (the caller checked it reaches that too), audited as
// incident.link. A link that is there already is not added again; it
// reports whether it was added.
func (s *Store) LinkIncident(ctx context.Context, scope Scope, id string, link IncidentLink, actor string, now time.Time) (bool, error) {
	var added bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		site, _, err := incidentSite(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM incident_links WHERE incident_id = $1 AND kind = $2 AND ref_id = $3`,
			id, link.Kind, link.RefID).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_links (incident_id, kind, ref_id, created_at, created_by) VALUES ($1, $2, $3, $4, $5)`,
			id, link.Kind, link.RefID, dbTime(now), actor); err != nil {
			return err
		}
		added = true
		return auditIncidentTx(ctx, tx, site, "incident.link", actor, id, map[string]string{link.Kind: link.RefID}, now)
	})
	if err != nil && isUniqueViolation(err) {
		return false, nil // linked meanwhile by someone else
	}
	if err != nil {
		return false, fmt.Errorf("incident %s: link %s %s: %w", id, link.Kind, link.RefID, err)
	}
	return added, nil
}

// ResolveIncident resolves incident id that scope reaches with what fixed
// it (resolution, and the known fix's name if one did), audited as
// incident.resolve. ErrIncidentResolved when it is resolved already.
func (s *Store) ResolveIncident(ctx context.Context, scope Scope, id, resolution, knownFix, actor string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		site, _, err := incidentSite(ctx, tx, scope, id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE incidents SET state = 'resolved', resolution = $1, known_fix = $2, resolved_at = $3, resolved_by = $4
			WHERE id = $5 AND state <> 'resolved'`, resolution, knownFix, dbTime(now), actor, id)
		if err := mustAffect(res, err); errors.Is(err, ErrNotFound) {
			return ErrIncidentResolved
		} else if err != nil {
			return err
		}
		detail := map[string]string{"resolution": resolution}
		if knownFix != "" {
			detail["known_fix"] = knownFix
		}
		return auditIncidentTx(ctx, tx, site, "incident.resolve", actor, id, detail, now)
	})
	if err != nil {
		return fmt.Errorf("incident %s: resolve: %w", id, err)
	}
	return nil
}
