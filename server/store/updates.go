package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Pending updates (issue 17, part 1) and patch compliance (part 6). The
// relay keeps, per agent, what the last patchinstall run reported as
// pending: each report replaces the one before (see 00029_updates.sql).

// MaxPendingUpdates bounds the list kept per agent.
const MaxPendingUpdates = 5000

// UpdateCheck is when and how an agent's pending updates were last listed.
type UpdateCheck struct {
	AgentID      string
	CheckedAt    time.Time
	RunID        string
	Manager      string // apt, dnf, zypper, windowsupdate, winget, softwareupdate
	SecurityOnly bool   // the check listed security updates only
	Pending      int
	Security     int // -1: the manager does not classify updates
}

// PendingUpdate is one update an agent's package manager lists.
type PendingUpdate struct {
	Name     string
	Arch     string
	From     string // installed version; "" for a new package
	Version  string // the version it updates to
	Security bool
	Category string // classifications (Windows Update) or the origin
}

// PutPendingUpdates replaces an agent's pending updates with ups, as c
// reports them (an update listed twice, by name and arch, is kept once).
// A report older than the one stored is ignored (results
// can arrive out of order after a reconnect); it reports whether ups was
// stored.
func (s *Store) PutPendingUpdates(ctx context.Context, c UpdateCheck, ups []PendingUpdate) (bool, error) {
	if len(ups) > MaxPendingUpdates {
		return false, fmt.Errorf("pending updates of agent %s: %d, at most %d", c.AgentID, len(ups), MaxPendingUpdates)
	}
	seen := make(map[[2]string]bool, len(ups))
	uniq := make([]PendingUpdate, 0, len(ups))
	for _, u := range ups {
		if k := [2]string{u.Name, u.Arch}; !seen[k] {
			seen[k] = true
			uniq = append(uniq, u)
		}
	}
	ups = uniq
	stored := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var last sql.NullTime
		err := tx.QueryRowContext(ctx, `SELECT checked_at FROM agent_update_checks WHERE agent_id = $1`, c.AgentID).Scan(&last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case fromNull(last).After(c.CheckedAt):
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM agent_updates WHERE agent_id = $1`, c.AgentID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM agent_update_checks WHERE agent_id = $1`, c.AgentID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO agent_update_checks (agent_id, checked_at, run_id, manager, security_only, pending, security)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, c.AgentID, dbTime(c.CheckedAt), c.RunID, c.Manager, c.SecurityOnly, len(ups), c.Security); err != nil {
			return err
		}
		for _, u := range ups {
			if _, err := tx.ExecContext(ctx, `INSERT INTO agent_updates (agent_id, name, arch, from_version, version, security, category)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				c.AgentID, u.Name, u.Arch, u.From, u.Version, u.Security, u.Category); err != nil {
				return err
			}
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("pending updates of agent %s: %w", c.AgentID, err)
	}
	return stored, nil
}

// PendingUpdates returns an agent's last update check and its list
// (security updates first, then by name); ErrNotFound when it was never
// checked.
func (s *Store) PendingUpdates(ctx context.Context, agentID string) (UpdateCheck, []PendingUpdate, error) {
	c := UpdateCheck{AgentID: agentID}
	var at sql.NullTime
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT checked_at, run_id, manager, security_only, pending, security
		FROM agent_update_checks WHERE agent_id = $1`, agentID).Scan(&at, &c.RunID, &c.Manager, &c.SecurityOnly, &c.Pending, &c.Security)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil, ErrNotFound
	}
	if err != nil {
		return c, nil, fmt.Errorf("update check of agent %s: %w", agentID, err)
	}
	c.CheckedAt = fromNull(at)
	ups, err := queryRows(ctx, s.reader(ctx), func(sc scanner) (PendingUpdate, error) {
		var u PendingUpdate
		err := sc.Scan(&u.Name, &u.Arch, &u.From, &u.Version, &u.Security, &u.Category)
		return u, err
	}, `SELECT name, arch, from_version, version, security, category FROM agent_updates WHERE agent_id = $1`, agentID)
	if err != nil {
		return c, nil, fmt.Errorf("pending updates of agent %s: %w", agentID, err)
	}
	slices.SortFunc(ups, func(a, b PendingUpdate) int {
		if a.Security != b.Security {
			if a.Security {
				return -1
			}
			return 1
		}
		if a.Name != b.Name {
			return cmp.Compare(a.Name, b.Name)
		}
		return cmp.Compare(a.Arch, b.Arch)
	})
	return c, ups, nil
}

// Patch compliance states of an agent.
const (
	PatchCurrent      = "patched"          // checked, nothing pending
	PatchSecurity     = "security-pending" // checked, security updates pending
	PatchOther        = "updates-pending"  // checked, only other (or unclassified) updates pending
	PatchNeverChecked = "never-checked"    // no patchinstall run reported its updates
)

// PatchAgent is one agent's line in a patch compliance report.
type PatchAgent struct {
	AgentID, Hostname, SiteID string
	State                     string // PatchCurrent, ...
	CheckedAt                 time.Time
	Manager                   string
	Pending, Security         int // Security -1: not classified
}

// PatchCompliance lists the agents (enrolled, not revoked) of the sites
// scope reaches (and siteID when set) with their last update check, by
// site then host name.
func (s *Store) PatchCompliance(ctx context.Context, scope Scope, siteID string) ([]PatchAgent, error) {
	var l argList
	q := `SELECT a.id, a.hostname, COALESCE(a.site_id, ''), c.checked_at, COALESCE(c.manager, ''), COALESCE(c.pending, 0), COALESCE(c.security, 0)
		FROM agents a LEFT JOIN agent_update_checks c ON c.agent_id = a.id
		WHERE a.revoked_at IS NULL AND ` + scope.where("a.site_id", l.add)
	if siteID != "" {
		q += ` AND a.site_id = ` + l.add(siteID)
	}
	q += ` ORDER BY a.site_id, a.hostname, a.id`
	out, err := queryRows(ctx, s.reader(ctx), func(sc scanner) (PatchAgent, error) {
		var p PatchAgent
		var at sql.NullTime
		var pending, security int64
		if err := sc.Scan(&p.AgentID, &p.Hostname, &p.SiteID, &at, &p.Manager, &pending, &security); err != nil {
			return p, err
		}
		p.CheckedAt, p.Pending, p.Security = fromNull(at), int(pending), int(security)
		switch {
		case !at.Valid:
			p.State = PatchNeverChecked
		case p.Security > 0:
			p.State = PatchSecurity
		case p.Pending > 0:
			p.State = PatchOther
		default:
			p.State = PatchCurrent
		}
		return p, nil
	}, q, l.args...)
	if err != nil {
		return nil, fmt.Errorf("patch compliance: %w", err)
	}
	return out, nil
}
