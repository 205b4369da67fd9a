package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Agent is an enrolled endpoint. Its ID is the subject of its client certificate.
type Agent struct {
	ID                                     string
	Hostname, OS, Arch, OSVersion, Version string
	Users, IPs                             []string
	Tags                                   map[string]string // effective tags: AgentTags overlaid by ScopedTags
	ScopedTags                             map[string]string // from the enrollment token
	AgentTags                              map[string]string // what the agent asked for (--tags at enroll, inventory later)
	TokenID                                string
	EnrolledAt, FirstSeen, LastSeen        time.Time // FirstSeen/LastSeen zero until first connection
	RevokedAt                              time.Time // zero = not revoked
	SiteID                                 string    // the site it belongs to ("" when inserting: DefaultSiteID)
}

// Inventory is what an agent reports about itself when it connects.
type Inventory struct {
	AgentID, Hostname, OS, Arch, OSVersion, Version string
	Users, IPs                                      []string
	Tags                                            map[string]string // the agent's own tags; replace AgentTags
	Seen                                            time.Time         // zero = now
}

const agentCols = `id, hostname, os, arch, os_version, version, users, ips, tags, scoped_tags, agent_tags,
	token_id, enrolled_at, first_seen, last_seen, revoked_at, site_id`

func insertAgent(ctx context.Context, tx *sql.Tx, a Agent) error {
	users, err := encodeList(a.Users)
	if err != nil {
		return err
	}
	ips, err := encodeList(a.IPs)
	if err != nil {
		return err
	}
	tags, err := encodeMap(a.Tags)
	if err != nil {
		return err
	}
	scoped, err := encodeMap(a.ScopedTags)
	if err != nil {
		return err
	}
	own, err := encodeMap(a.AgentTags)
	if err != nil {
		return err
	}
	var tokenID any
	if a.TokenID != "" {
		tokenID = a.TokenID
	}
	if a.SiteID == "" {
		a.SiteID = DefaultSiteID
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO agents (`+agentCols+`)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		a.ID, a.Hostname, a.OS, a.Arch, a.OSVersion, a.Version, users, ips, tags, scoped, own,
		tokenID, dbTime(a.EnrolledAt), dbTime(a.FirstSeen), dbTime(a.LastSeen), dbTime(a.RevokedAt), a.SiteID)
	return err
}

func scanAgent(sc scanner) (Agent, error) {
	var (
		a                              Agent
		users, ips, tags, scoped, own  string
		tokenID                        sql.NullString
		enrolled, first, last, revoked sql.NullTime
	)
	err := sc.Scan(&a.ID, &a.Hostname, &a.OS, &a.Arch, &a.OSVersion, &a.Version, &users, &ips, &tags, &scoped, &own,
		&tokenID, &enrolled, &first, &last, &revoked, &a.SiteID)
	if err != nil {
		return Agent{}, err
	}
	if a.Users, err = decodeList(users); err != nil {
		return Agent{}, fmt.Errorf("agent %s: users: %w", a.ID, err)
	}
	if a.IPs, err = decodeList(ips); err != nil {
		return Agent{}, fmt.Errorf("agent %s: ips: %w", a.ID, err)
	}
	if a.Tags, err = decodeMap(tags); err != nil {
		return Agent{}, fmt.Errorf("agent %s: tags: %w", a.ID, err)
	}
	if a.ScopedTags, err = decodeMap(scoped); err != nil {
		return Agent{}, fmt.Errorf("agent %s: scoped tags: %w", a.ID, err)
	}
	if a.AgentTags, err = decodeMap(own); err != nil {
		return Agent{}, fmt.Errorf("agent %s: agent tags: %w", a.ID, err)
	}
	a.TokenID = tokenID.String
	a.EnrolledAt, a.FirstSeen, a.LastSeen, a.RevokedAt = fromNull(enrolled), fromNull(first), fromNull(last), fromNull(revoked)
	return a, nil
}

// UpdateInventories writes a batch of inventories in one transaction (the relay batches
// reconnect storms). For each it sets hostname, os, arch, os_version, version, users,
// ips and agent_tags (inv.Tags replaces them; nil clears them), recomputes the effective
// tags with the scoped tags winning, sets first_seen if it was never set and sets
// last_seen to inv.Seen. Unknown agent IDs are skipped.
func (s *Store) UpdateInventories(ctx context.Context, invs []Inventory) error {
	if len(invs) == 0 {
		return nil
	}
	// Rows are written in agent ID order, so that two relays writing
	// batches over the same agents take their row locks in one order and
	// never deadlock (PostgreSQL); a later inventory of the same agent
	// still wins.
	invs = slices.Clone(invs)
	slices.SortStableFunc(invs, func(a, b Inventory) int { return strings.Compare(a.AgentID, b.AgentID) })
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := time.Now()
		for _, inv := range invs {
			var scopedText string
			err := tx.QueryRowContext(ctx, `SELECT scoped_tags FROM agents WHERE id = $1`, inv.AgentID).Scan(&scopedText)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("agent %s: %w", inv.AgentID, err)
			}
			scoped, err := decodeMap(scopedText)
			if err != nil {
				return fmt.Errorf("agent %s: scoped tags: %w", inv.AgentID, err)
			}
			users, err := encodeList(inv.Users)
			if err != nil {
				return err
			}
			ips, err := encodeList(inv.IPs)
			if err != nil {
				return err
			}
			own, err := encodeMap(inv.Tags)
			if err != nil {
				return err
			}
			tags, err := encodeMap(mergeTags(inv.Tags, scoped))
			if err != nil {
				return err
			}
			seen := inv.Seen
			if seen.IsZero() {
				seen = now
			}
			_, err = tx.ExecContext(ctx,
				`UPDATE agents SET hostname = $1, os = $2, arch = $3, os_version = $4, version = $5,
				 users = $6, ips = $7, agent_tags = $8, tags = $9,
				 first_seen = COALESCE(first_seen, $10), last_seen = $11
				 WHERE id = $12`,
				inv.Hostname, inv.OS, inv.Arch, inv.OSVersion, inv.Version, users, ips, own, tags,
				dbTime(seen), dbTime(seen), inv.AgentID)
			if err != nil {
				return fmt.Errorf("agent %s: %w", inv.AgentID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update inventories: %w", err)
	}
	return nil
}

// TouchLastSeen sets last_seen (and first_seen, if never set) of the given agents to t,
// in one transaction. Unknown IDs are skipped.
func (s *Store) TouchLastSeen(ctx context.Context, ids []string, t time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx,
			`UPDATE agents SET first_seen = COALESCE(first_seen, $1), last_seen = $2 WHERE id = $3`)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		defer stmt.Close()
		ts := dbTime(t)
		// In ID order, as UpdateInventories, so that concurrent batches
		// take their row locks in one order.
		ids := slices.Sorted(slices.Values(ids))
		for _, id := range ids {
			if _, err := stmt.ExecContext(ctx, ts, ts, id); err != nil {
				return fmt.Errorf("agent %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch last seen: %w", err)
	}
	return nil
}

// CountActiveAgents returns how many unrevoked agents were last seen, or
// (never seen) enrolled, at or after since: the fleet the relay should expect
// back after a restart.
func (s *Store) CountActiveAgents(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM agents
		WHERE revoked_at IS NULL AND COALESCE(last_seen, enrolled_at) >= $1`, dbTime(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count active agents: %w", err)
	}
	return n, nil
}

// GetAgent returns one agent, or ErrNotFound.
func (s *Store) GetAgent(ctx context.Context, id string) (Agent, error) {
	a, err := scanAgent(s.db.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Agent{}, fmt.Errorf("get agent: %w", ErrNotFound)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("get agent: %w", err)
	}
	return a, nil
}

// ListAgents returns every agent, revoked ones included, ordered by hostname then id.
func (s *Store) ListAgents(ctx context.Context) ([]Agent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+agentCols+` FROM agents ORDER BY hostname, id`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	var out []Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// RevokeAgent marks an agent revoked at now. It is idempotent (the first revocation
// time is kept) and returns ErrNotFound for an unknown id.
func (s *Store) RevokeAgent(ctx context.Context, id string, now time.Time) error {
	err := mustAffect(s.db.ExecContext(ctx,
		`UPDATE agents SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, dbTime(now), id))
	if err != nil {
		return fmt.Errorf("revoke agent: %w", err)
	}
	return nil
}

// RevokedAgentIDs returns the IDs of all revoked agents, sorted, for the TLS handshake's
// deny list.
func (s *Store) RevokedAgentIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM agents WHERE revoked_at IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("revoked agent ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("revoked agent ids: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revoked agent ids: %w", err)
	}
	return ids, nil
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func mapNilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// Target is what selecting an agent for a job needs: less than an Agent, so
// that resolving a target over a large fleet reads little.
type Target struct {
	ID, Hostname, OS, Arch string
	SiteID                 string
	Tags                   map[string]string
}

// TargetPage returns up to limit agents that are not revoked, with IDs
// after afterID, in ID order. Tags are read only when withTags is set (a
// selector without tag terms does not need them, and decoding 19,000 tag
// sets is most of the cost of resolving a job's targets).
//
// Only agents of the sites scope reaches are returned.
func (s *Store) TargetPage(ctx context.Context, scope Scope, afterID string, limit int, withTags bool) ([]Target, error) {
	tags := "''"
	if withTags {
		tags = "tags"
	}
	var l argList
	q := `SELECT id, hostname, os, arch, ` + tags + `, site_id FROM agents
		WHERE id > ` + l.add(afterID) + ` AND revoked_at IS NULL AND ` + scope.where("site_id", l.add) + ` ORDER BY id LIMIT ` + l.add(limit)
	rows, err := s.reader(ctx).QueryContext(ctx, q, l.args...)
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	defer rows.Close()
	out := make([]Target, 0, limit)
	for rows.Next() {
		var t Target
		var tags string
		if err := rows.Scan(&t.ID, &t.Hostname, &t.OS, &t.Arch, &tags, &t.SiteID); err != nil {
			return nil, fmt.Errorf("list targets: %w", err)
		}
		if t.Tags, err = decodeMap(tags); err != nil {
			return nil, fmt.Errorf("list targets: agent %s tags: %w", t.ID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// AgentCert returns the certificate (DER) on record for an agent, nil when
// none is (an agent enrolled before certificates were kept).
// ErrNotFound for an unknown agent.
func (s *Store) AgentCert(ctx context.Context, id string) ([]byte, error) {
	var text string
	err := s.db.QueryRowContext(ctx, `SELECT cert FROM agents WHERE id = $1`, id).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("agent %s certificate: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("agent %s certificate: %w", id, err)
	}
	if text == "" {
		return nil, nil
	}
	der, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("agent %s certificate: %w", id, err)
	}
	return der, nil
}

// SetAgentCert records an agent's certificate (DER) unless one is on record
// already: the first one, from enrollment, stays. It reports whether it
// stored der. ErrNotFound for an unknown agent.
func (s *Store) SetAgentCert(ctx context.Context, id string, der []byte) (bool, error) {
	if len(der) == 0 {
		return false, fmt.Errorf("agent %s certificate: empty", id)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE agents SET cert = $1 WHERE id = $2 AND cert = ''`,
		base64.StdEncoding.EncodeToString(der), id)
	if err != nil {
		return false, fmt.Errorf("agent %s certificate: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("agent %s certificate: %w", id, err)
	} else if n == 1 {
		return true, nil
	}
	if _, err := s.AgentCert(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}
