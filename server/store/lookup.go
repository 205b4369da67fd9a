package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Looking things up by what the CLI's tables show: an ID, a unique prefix of
// one, or (agents) a hostname. Each lookup is an indexed query whatever the
// fleet's size: an exact ID and an ID prefix read a range of the primary key,
// a hostname the index on LOWER(hostname) (migration 00012), so naming one
// agent among 19,000 reads a handful of rows, never the whole table.

// IDPrefixRange returns the bounds of the IDs that start with prefix: lo <=
// id < hi (hi "" when there is no upper bound). ok is false when prefix
// cannot start a canonical lower-case UUID (hex digits, dashes at positions
// 8, 13, 18 and 23), so that no query is made for a hostname or a typo.
func IDPrefixRange(prefix string) (lo, hi string, ok bool) {
	if prefix == "" || len(prefix) > 36 {
		return "", "", false
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		dash := i == 8 || i == 13 || i == 18 || i == 23
		if dash != (c == '-') || (!dash && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
			return "", "", false
		}
	}
	lo = prefix
	b := []byte(strings.TrimRight(prefix, "-"))
	for i := len(b) - 1; i >= 0; i-- {
		switch c := b[i]; {
		case c == '-':
			continue
		case c == '9':
			b[i] = 'a'
		case c == 'f':
			b[i] = '0' // carry into the digit before
			continue
		default:
			b[i] = c + 1
		}
		return lo, string(b[:i+1]), true
	}
	return lo, "", true
}

// prefixWhere is the WHERE clause that selects the IDs starting with prefix
// through the primary key, its parameters numbered from $n (four of them).
// The substr test keeps the answer exact whatever the database's collation.
func prefixWhere(prefix string, n int) (string, []any, bool) {
	lo, hi, ok := IDPrefixRange(prefix)
	if !ok {
		return "", nil, false
	}
	if hi == "" {
		hi = "g" // above every hex digit
	}
	return fmt.Sprintf(`id >= $%d AND id < $%d AND substr(id, 1, $%d) = $%d`, n, n+1, n+2, n+3),
		[]any{lo, hi, len(prefix), prefix}, true
}

// FindAgents returns the agents of the sites scope reaches that ref names,
// revoked ones included: the agent with that ID if there is one; else the
// agents whose ID starts with ref together with those whose hostname is ref
// (case-insensitive), at most limit, ordered by ID. Callers refuse an answer
// of more than one. Agents out of scope are not counted at all, so that a
// hostname shared with another customer's machine is neither ambiguous nor
// confirmed to exist.
func (s *Store) FindAgents(ctx context.Context, scope Scope, ref string, limit int) ([]Agent, error) {
	if ref == "" {
		return nil, nil
	}
	if a, err := s.GetAgent(ctx, ref); err == nil && scope.Has(a.SiteID) {
		return []Agent{a}, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("find agent %q: %w", ref, err)
	}
	var l argList
	q := `SELECT ` + agentCols + ` FROM agents WHERE LOWER(hostname) = ` + l.add(strings.ToLower(ref)) +
		` AND ` + scope.where("site_id", l.add)
	if where, pargs, ok := prefixWhere(ref, len(l.args)+1); ok {
		// Both branches use an index; UNION removes an agent found twice.
		l.args = append(l.args, pargs...)
		q += ` UNION SELECT ` + agentCols + ` FROM agents WHERE ` + where + ` AND ` + scope.where("site_id", l.add)
	}
	q += ` ORDER BY id LIMIT ` + l.add(limit)
	rows, err := s.db.QueryContext(ctx, q, l.args...)
	if err != nil {
		return nil, fmt.Errorf("find agent %q: %w", ref, err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("find agent %q: %w", ref, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find agent %q: %w", ref, err)
	}
	return out, nil
}

// FindJobs returns the job with ID ref, or else the jobs whose ID starts
// with ref, at most limit, ordered by ID: only jobs whose every site scope
// reaches.
func (s *Store) FindJobs(ctx context.Context, scope Scope, ref string, limit int) ([]Job, error) {
	var l argList
	in := jobScopeWhere("id", scope, l.add)
	jobs, err := s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = `+l.add(ref)+` AND `+in, l.args...)
	if err != nil {
		return nil, fmt.Errorf("find job %q: %w", ref, err)
	}
	if len(jobs) == 1 {
		return jobs, nil
	}
	l = argList{}
	in = jobScopeWhere("id", scope, l.add)
	where, args, ok := prefixWhere(ref, len(l.args)+1)
	if !ok {
		return nil, nil
	}
	l.args = append(l.args, args...)
	jobs, err = s.queryJobs(ctx, `SELECT `+jobColumns+` FROM jobs WHERE `+in+` AND `+where+` ORDER BY id LIMIT `+l.add(limit), l.args...)
	if err != nil {
		return nil, fmt.Errorf("find job %q: %w", ref, err)
	}
	return jobs, nil
}

// FindSessions returns the session with ID ref, or else the sessions whose
// ID starts with ref, at most limit, ordered by ID: only sessions of the
// sites scope reaches.
func (s *Store) FindSessions(ctx context.Context, scope Scope, ref string, limit int) ([]Session, error) {
	if x, err := s.GetSession(ctx, ref); err == nil && scope.Has(x.SiteID) {
		return []Session{x}, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("find session %q: %w", ref, err)
	}
	var l argList
	in := scope.where("site_id", l.add)
	where, args, ok := prefixWhere(ref, len(l.args)+1)
	if !ok {
		return nil, nil
	}
	l.args = append(l.args, args...)
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE `+in+` AND `+where+` ORDER BY id LIMIT `+l.add(limit),
		l.args...)
	if err != nil {
		return nil, fmt.Errorf("find session %q: %w", ref, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("find session %q: %w", ref, err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// RevokedTargets returns the revoked agents, for telling the creator of a
// job how many agents its selector matched but did not target. Revoked
// agents are few next to the fleet; tags are read only when withTags is set.
func (s *Store) RevokedTargets(ctx context.Context, scope Scope, withTags bool) ([]Target, error) {
	tags := "''"
	if withTags {
		tags = "tags"
	}
	var l argList
	rows, err := s.db.QueryContext(ctx, `SELECT id, hostname, os, arch, `+tags+`, site_id FROM agents
		WHERE revoked_at IS NOT NULL AND `+scope.where("site_id", l.add)+` ORDER BY id`, l.args...)
	if err != nil {
		return nil, fmt.Errorf("list revoked agents: %w", err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		var t Target
		var tags string
		if err := rows.Scan(&t.ID, &t.Hostname, &t.OS, &t.Arch, &tags, &t.SiteID); err != nil {
			return nil, fmt.Errorf("list revoked agents: %w", err)
		}
		if t.Tags, err = decodeMap(tags); err != nil {
			return nil, fmt.Errorf("list revoked agents: agent %s tags: %w", t.ID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
