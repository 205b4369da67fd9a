package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Organisations and sites (migration 00019). Every agent belongs to one
// site; people and API tokens are granted sites (AllSites for every one).
const (
	// DefaultOrgID and DefaultSiteID are the organisation and site that
	// existed before sites did: agents enrolled with a token that names no
	// site land in the default site.
	DefaultOrgID  = "00000000-0000-7000-8000-000000000001"
	DefaultSiteID = "00000000-0000-7000-8000-000000000002"
	// AllSites, as a grant, reaches every site, present and future.
	AllSites = "*"
)

// Sentinel errors of sites; test with errors.Is.
var (
	// ErrSiteInUse is returned by DeleteSite while agents or enrollment
	// tokens still belong to the site.
	ErrSiteInUse = errors.New("site in use")
	// ErrNameTaken is returned when an organisation or site name is taken.
	ErrNameTaken = errors.New("name taken")
)

// Organisation groups sites: a managed service provider's customer, or a
// company.
type Organisation struct {
	ID, Name  string
	CreatedAt time.Time
}

// Site is where agents are: a customer's office, a company's branch.
type Site struct {
	ID, OrgID, Name string
	OrgName         string // filled in by the queries below
	CreatedAt       time.Time
}

// FullName is how people name a site: "ORG/SITE".
func (s Site) FullName() string { return s.OrgName + "/" + s.Name }

// Scope is what a caller may reach: every site (All) or the listed ones.
// The zero value reaches nothing.
type Scope struct {
	All   bool
	Sites []string // site IDs, when not All
}

// ScopeOf returns the scope of a list of grants (site IDs, or AllSites).
func ScopeOf(grants []string) Scope {
	if slices.Contains(grants, AllSites) {
		return Scope{All: true}
	}
	return Scope{Sites: grants}
}

// Has reports whether the scope reaches site.
func (sc Scope) Has(site string) bool {
	return sc.All || slices.Contains(sc.Sites, site)
}

// HasAll reports whether the scope reaches every one of sites (and, for a
// scope that is not All, that there is at least one).
func (sc Scope) HasAll(sites []string) bool {
	if sc.All {
		return true
	}
	if len(sites) == 0 {
		return false
	}
	for _, s := range sites {
		if !sc.Has(s) {
			return false
		}
	}
	return true
}

// where returns a SQL condition on col for the scope, adding its
// arguments with arg (which returns the placeholder).
func (sc Scope) where(col string, arg func(any) string) string {
	if sc.All {
		return "1 = 1"
	}
	if len(sc.Sites) == 0 {
		return "1 = 0"
	}
	ph := make([]string, len(sc.Sites))
	for i, s := range sc.Sites {
		ph[i] = arg(s)
	}
	return col + " IN (" + strings.Join(ph, ", ") + ")"
}

// argList numbers placeholders from start (the store's convention: in
// order of appearance).
type argList struct {
	args []any
}

func (l *argList) add(v any) string {
	l.args = append(l.args, v)
	return "$" + strconv.Itoa(len(l.args))
}

const siteCols = `s.id, s.org_id, s.name, s.created_at, o.name`

func scanSite(sc scanner) (Site, error) {
	var (
		s       Site
		created sql.NullTime
	)
	if err := sc.Scan(&s.ID, &s.OrgID, &s.Name, &created, &s.OrgName); err != nil {
		return Site{}, err
	}
	s.CreatedAt = fromNull(created)
	return s, nil
}

// CreateOrganisation stores a new organisation; ErrNameTaken when the name
// is taken.
func (s *Store) CreateOrganisation(ctx context.Context, o Organisation) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM organisations WHERE LOWER(name) = $1`, strings.ToLower(o.Name)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("organisation %q: %w", o.Name, ErrNameTaken)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)`,
			o.ID, o.Name, dbTime(o.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create organisation: %w", err)
	}
	return nil
}

// ListOrganisations returns every organisation, by name.
func (s *Store) ListOrganisations(ctx context.Context) ([]Organisation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM organisations ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("list organisations: %w", err)
	}
	defer rows.Close()
	var out []Organisation
	for rows.Next() {
		var (
			o       Organisation
			created sql.NullTime
		)
		if err := rows.Scan(&o.ID, &o.Name, &created); err != nil {
			return nil, fmt.Errorf("list organisations: %w", err)
		}
		o.CreatedAt = fromNull(created)
		out = append(out, o)
	}
	return out, rows.Err()
}

// CreateSite stores a new site of an existing organisation; ErrNameTaken
// when the organisation has a site of that name, ErrNotFound when the
// organisation does not exist.
func (s *Store) CreateSite(ctx context.Context, site Site) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM organisations WHERE id = $1`, site.OrgID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("organisation %s: %w", site.OrgID, ErrNotFound)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sites WHERE org_id = $1 AND LOWER(name) = $2`,
			site.OrgID, strings.ToLower(site.Name)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("site %q: %w", site.Name, ErrNameTaken)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sites (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)`,
			site.ID, site.OrgID, site.Name, dbTime(site.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create site: %w", err)
	}
	return nil
}

// ListSites returns the sites scope reaches, by organisation and name.
func (s *Store) ListSites(ctx context.Context, scope Scope) ([]Site, error) {
	var l argList
	rows, err := s.db.QueryContext(ctx, `SELECT `+siteCols+` FROM sites s JOIN organisations o ON o.id = s.org_id
		WHERE `+scope.where("s.id", l.add)+` ORDER BY o.name, s.name, s.id`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []Site
	for rows.Next() {
		site, err := scanSite(rows)
		if err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		out = append(out, site)
	}
	return out, rows.Err()
}

// SiteNames returns the full names ("ORG/SITE") of every site by ID.
func (s *Store) SiteNames(ctx context.Context) (map[string]string, error) {
	sites, err := s.ListSites(ctx, Scope{All: true})
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(sites))
	for _, site := range sites {
		names[site.ID] = site.FullName()
	}
	return names, nil
}

// DeleteSite removes a site that no agent and no enrollment token belongs
// to, revoked ones aside (ErrSiteInUse otherwise; ErrNotFound when there is
// no such site), with its grants. Revoked agents and tokens keep the
// deleted site's ID: they are shown with it. The default site stays.
func (s *Store) DeleteSite(ctx context.Context, id string) error {
	if id == DefaultSiteID {
		return fmt.Errorf("delete site: the default site stays (agents enrolled with a token that names no site go there): %w", ErrSiteInUse)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var agents, tokens int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM agents WHERE site_id = $1 AND revoked_at IS NULL`, id).Scan(&agents); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM enroll_tokens WHERE site_id = $1 AND revoked_at IS NULL`, id).Scan(&tokens); err != nil {
			return err
		}
		if agents > 0 || tokens > 0 {
			return fmt.Errorf("%d agents and %d enrollment tokens belong to it: %w", agents, tokens, ErrSiteInUse)
		}
		if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM sites WHERE id = $1`, id)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM user_sites WHERE site_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete site: %w", err)
	}
	return nil
}

// SetAgentSite moves an agent to another site; ErrNotFound for an unknown
// agent or site.
func (s *Store) SetAgentSite(ctx context.Context, agentID, siteID string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sites WHERE id = $1`, siteID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("site %s: %w", siteID, ErrNotFound)
		}
		return mustAffect(tx.ExecContext(ctx, `UPDATE agents SET site_id = $1 WHERE id = $2`, siteID, agentID))
	})
	if err != nil {
		return fmt.Errorf("move agent %s: %w", agentID, err)
	}
	return nil
}

// UserSites returns a user's grants: site IDs, or AllSites.
func (s *Store) UserSites(ctx context.Context, userID string) ([]string, error) {
	return s.siteColumn(ctx, "user "+userID+" sites", `SELECT site_id FROM user_sites WHERE user_id = $1 ORDER BY site_id`, userID)
}

// siteColumn runs a query of one column of site IDs.
func (s *Store) siteColumn(ctx context.Context, what, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// SetUserSites replaces a user's grants (site IDs, or AllSites).
func (s *Store) SetUserSites(ctx context.Context, userID string, sites []string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return setUserSites(ctx, tx, userID, sites) })
	if err != nil {
		return fmt.Errorf("set user %s sites: %w", userID, err)
	}
	return nil
}

func setUserSites(ctx context.Context, tx *sql.Tx, userID string, sites []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM user_sites WHERE user_id = $1`, userID); err != nil {
		return err
	}
	for _, site := range dedupe(sites) {
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_sites (user_id, site_id) VALUES ($1, $2)`, userID, site); err != nil {
			return err
		}
	}
	return nil
}

// JobSites returns the sites of a job's agents.
func (s *Store) JobSites(ctx context.Context, jobID string) ([]string, error) {
	return s.siteColumn(ctx, "job "+jobID+" sites", `SELECT site_id FROM job_sites WHERE job_id = $1 ORDER BY site_id`, jobID)
}

// JobSitesOf returns the sites of each of the jobs ids (one query).
func (s *Store) JobSitesOf(ctx context.Context, ids []string) (map[string][]string, error) {
	out := make(map[string][]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var l argList
	ph := make([]string, len(ids))
	for i, id := range ids {
		ph[i] = l.add(id)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT job_id, site_id FROM job_sites WHERE job_id IN (`+strings.Join(ph, ", ")+`) ORDER BY job_id, site_id`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("jobs' sites: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var job, site string
		if err := rows.Scan(&job, &site); err != nil {
			return nil, fmt.Errorf("jobs' sites: %w", err)
		}
		out[job] = append(out[job], site)
	}
	return out, rows.Err()
}

// jobScopeWhere is the condition that a job (column jobs.id as col) has at
// least one site and every one of them is in scope.
func jobScopeWhere(col string, scope Scope, arg func(any) string) string {
	if scope.All {
		return "1 = 1"
	}
	if len(scope.Sites) == 0 {
		return "1 = 0"
	}
	ph := make([]string, len(scope.Sites))
	for i, s := range scope.Sites {
		ph[i] = arg(s)
	}
	return "EXISTS (SELECT 1 FROM job_sites js WHERE js.job_id = " + col + ")" +
		" AND NOT EXISTS (SELECT 1 FROM job_sites js WHERE js.job_id = " + col +
		" AND js.site_id NOT IN (" + strings.Join(ph, ", ") + "))"
}

func dedupe(l []string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	return slices.Compact(out)
}
