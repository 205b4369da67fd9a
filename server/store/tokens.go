package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// EnrollToken lets agents enroll. Only the hash of its secret is stored.
type EnrollToken struct {
	ID          string
	Hash        string            // hex SHA-256 of the secret; the secret is never stored
	Tags        map[string]string // scoped tags every agent enrolled with it gets (they win over the agent's own)
	UsesAllowed int               // 0 = unlimited
	Uses        int
	ExpiresAt   time.Time // zero = never expires
	CreatedAt   time.Time
	CreatedBy   string
	RevokedAt   time.Time // zero = not revoked
	SiteID      string    // the site its agents belong to ("" when creating: DefaultSiteID)
}

// APIToken authenticates a person or tool at the REST API. Only its hash is stored.
type APIToken struct {
	ID, Hash, Role, Name            string    // Role: "admin" | "technician" | "viewer"
	CreatedAt, ExpiresAt, RevokedAt time.Time // ExpiresAt zero = no expiry
	// UserID is the user who owns the token; "" for a token that belongs to
	// no user (made by patchbay-server admin-token, or before accounts).
	UserID string
	// Kind is KindAPI (for automation), KindSession (minted by a password
	// login) or KindEnrol (a session that may only enrol TOTP).
	Kind string
	// UserName is the owner's name, filled in by LookupAPIToken and
	// ListAPITokens ("" without an owner).
	UserName string
	// Sites are the token's grants: site IDs, or AllSites. A user's token
	// has its user's grants (filled in by LookupAPIToken); a token without
	// a user has its own.
	Sites []string
}

// Kinds of API tokens.
const (
	KindAPI     = ""
	KindSession = "session"
	KindEnrol   = "enrol"
)

const enrollTokenCols = `id, hash, tags, uses_allowed, uses, expires_at, created_at, created_by, revoked_at, site_id`

func scanEnrollToken(sc scanner) (EnrollToken, error) {
	var (
		t                         EnrollToken
		tags                      string
		expires, created, revoked sql.NullTime
	)
	if err := sc.Scan(&t.ID, &t.Hash, &tags, &t.UsesAllowed, &t.Uses, &expires, &created, &t.CreatedBy, &revoked, &t.SiteID); err != nil {
		return EnrollToken{}, err
	}
	var err error
	if t.Tags, err = decodeMap(tags); err != nil {
		return EnrollToken{}, fmt.Errorf("enroll token %s: tags: %w", t.ID, err)
	}
	t.ExpiresAt, t.CreatedAt, t.RevokedAt = fromNull(expires), fromNull(created), fromNull(revoked)
	return t, nil
}

// CreateEnrollToken stores a new enrollment token. t.ID must be set (see NewID); a zero
// CreatedAt is set to now.
func (s *Store) CreateEnrollToken(ctx context.Context, t EnrollToken) error {
	if t.ID == "" {
		return errors.New("create enroll token: empty id (use store.NewID)")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	tags, err := encodeMap(t.Tags)
	if err != nil {
		return fmt.Errorf("create enroll token: %w", err)
	}
	if t.SiteID == "" {
		t.SiteID = DefaultSiteID
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO enroll_tokens (`+enrollTokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.ID, t.Hash, tags, t.UsesAllowed, t.Uses, dbTime(t.ExpiresAt), dbTime(t.CreatedAt), t.CreatedBy, dbTime(t.RevokedAt), t.SiteID)
	if err != nil {
		return fmt.Errorf("create enroll token: %w", err)
	}
	return nil
}

// ListEnrollTokens returns every enrollment token, newest first.
func (s *Store) ListEnrollTokens(ctx context.Context) ([]EnrollToken, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+enrollTokenCols+` FROM enroll_tokens ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list enroll tokens: %w", err)
	}
	defer rows.Close()
	var out []EnrollToken
	for rows.Next() {
		t, err := scanEnrollToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list enroll tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list enroll tokens: %w", err)
	}
	return out, nil
}

// RevokeEnrollToken marks a token revoked at now; revoking again keeps the first time.
// It returns ErrNotFound for an unknown id.
func (s *Store) RevokeEnrollToken(ctx context.Context, id string, now time.Time) error {
	err := mustAffect(s.db.ExecContext(ctx,
		`UPDATE enroll_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, dbTime(now), id))
	if err != nil {
		return fmt.Errorf("revoke enroll token: %w", err)
	}
	return nil
}

// CheckEnrollToken reports whether the token with this hash could enroll an
// agent at now, with the same errors as EnrollAgent and the token as found
// (its zero value for ErrTokenUnknown). It only reads: the relay calls it
// before it signs anything, so a request with a bad token costs no CA
// signature. EnrollAgent checks again in its transaction.
func (s *Store) CheckEnrollToken(ctx context.Context, tokenHash string, now time.Time) (EnrollToken, error) {
	tok, err := checkEnrollToken(ctx, s.db, tokenHash, now)
	if err != nil && !isSentinel(err) {
		return EnrollToken{}, fmt.Errorf("check enroll token: %w", err)
	}
	return tok, err
}

// rowQuerier is a *sql.DB or *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkEnrollToken finds the token by hash and checks it can be used at now.
func checkEnrollToken(ctx context.Context, q rowQuerier, tokenHash string, now time.Time) (EnrollToken, error) {
	tok, err := scanEnrollToken(q.QueryRowContext(ctx,
		`SELECT `+enrollTokenCols+` FROM enroll_tokens WHERE hash = $1`, tokenHash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return EnrollToken{}, ErrTokenUnknown
	case err != nil:
		return EnrollToken{}, fmt.Errorf("find token: %w", err)
	case !tok.RevokedAt.IsZero():
		return tok, ErrTokenRevoked
	case !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt):
		return tok, ErrTokenExpired
	case tok.UsesAllowed > 0 && tok.Uses >= tok.UsesAllowed:
		return tok, ErrTokenUsedUp
	}
	return tok, nil
}

// EnrollAgent, in one transaction, finds the token by hash (ErrTokenUnknown), checks it
// is not revoked (ErrTokenRevoked), not expired at now (ErrTokenExpired) and has uses
// left (ErrTokenUsedUp), increments its uses and inserts the agent with
// Tags = merge(a.AgentTags, token.Tags) (the token's scoped tags win),
// ScopedTags = token.Tags, TokenID and EnrolledAt = now. FirstSeen, LastSeen and
// RevokedAt of a are ignored. An empty a.ID gets a new UUID v7. If the ID is already
// enrolled it returns ErrAgentExists, or ErrAgentRevoked if that agent was revoked.
// Any failure changes nothing. It returns the stored agent and the updated token.
//
// The use count is taken with a conditional UPDATE (uses < uses_allowed), so concurrent
// enrollments never exceed the allowance, on SQLite and PostgreSQL alike.
func (s *Store) EnrollAgent(ctx context.Context, tokenHash string, a Agent, now time.Time) (Agent, EnrollToken, error) {
	if a.ID == "" {
		a.ID = NewID()
	}
	var tok EnrollToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if tok, err = checkEnrollToken(ctx, tx, tokenHash, now); err != nil {
			return err
		}
		// RETURNING: on PostgreSQL a concurrent enrollment may have counted a use
		// since checkEnrollToken read the token.
		err = tx.QueryRowContext(ctx,
			`UPDATE enroll_tokens SET uses = uses + 1
			 WHERE id = $1 AND revoked_at IS NULL AND (uses_allowed = 0 OR uses < uses_allowed) RETURNING uses`, tok.ID).Scan(&tok.Uses)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrTokenUsedUp // another enrollment took the last use meanwhile
		} else if err != nil {
			return fmt.Errorf("count use: %w", err)
		}

		var revoked sql.NullTime
		err = tx.QueryRowContext(ctx, `SELECT revoked_at FROM agents WHERE id = $1`, a.ID).Scan(&revoked)
		switch {
		case err == nil && revoked.Valid:
			return ErrAgentRevoked
		case err == nil:
			return ErrAgentExists
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("find agent: %w", err)
		}

		a.ScopedTags = tok.Tags
		a.Tags = mergeTags(a.AgentTags, tok.Tags)
		a.TokenID = tok.ID
		a.SiteID = tok.SiteID
		a.EnrolledAt = now.UTC().Truncate(time.Microsecond)
		a.FirstSeen, a.LastSeen, a.RevokedAt = time.Time{}, time.Time{}, time.Time{}
		if err := insertAgent(ctx, tx, a); isUniqueViolation(err) {
			return ErrAgentExists // enrolled by a concurrent request since the check above (PostgreSQL)
		} else if err != nil {
			return fmt.Errorf("insert agent: %w", err)
		}
		return nil
	})
	if err != nil {
		if isSentinel(err) {
			return Agent{}, tok, err // the token as found, so a refusal can name its numbers
		}
		return Agent{}, EnrollToken{}, fmt.Errorf("enroll agent: %w", err)
	}
	a.Users, a.IPs = nilIfEmpty(a.Users), nilIfEmpty(a.IPs)
	a.AgentTags = mapNilIfEmpty(a.AgentTags)
	return a, tok, nil
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrTokenUnknown, ErrTokenRevoked, ErrTokenExpired, ErrTokenUsedUp, ErrAgentRevoked, ErrAgentExists} {
		if err == s {
			return true
		}
	}
	return false
}

const apiTokenCols = `id, hash, role, name, created_at, expires_at, revoked_at, user_id, kind, sites`

// apiTokenJoinCols are apiTokenCols of api_tokens t, then its owner's name,
// role and disabled_at from users u (LEFT JOIN: NULL without an owner).
const apiTokenJoinCols = `t.id, t.hash, t.role, t.name, t.created_at, t.expires_at, t.revoked_at, t.user_id, t.kind, t.sites,
	u.name, u.role, u.disabled_at`

const apiTokenJoin = `api_tokens t LEFT JOIN users u ON u.id = t.user_id`

// tokenOwner is the owner's columns of apiTokenJoinCols.
type tokenOwner struct {
	name, role sql.NullString
	disabled   sql.NullTime
}

func scanAPITokenJoin(sc scanner) (APIToken, tokenOwner, error) {
	var (
		t                         APIToken
		o                         tokenOwner
		created, expires, revoked sql.NullTime
		sites                     string
	)
	if err := sc.Scan(&t.ID, &t.Hash, &t.Role, &t.Name, &created, &expires, &revoked, &t.UserID, &t.Kind, &sites,
		&o.name, &o.role, &o.disabled); err != nil {
		return APIToken{}, o, err
	}
	var err error
	if t.Sites, err = decodeList(sites); err != nil {
		return APIToken{}, o, fmt.Errorf("api token %s: sites: %w", t.ID, err)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromNull(created), fromNull(expires), fromNull(revoked)
	t.UserName = o.name.String
	return t, o, nil
}

// CreateAPIToken stores a new API token. t.ID must be set (see NewID); a zero CreatedAt
// is set to now.
func (s *Store) CreateAPIToken(ctx context.Context, t APIToken) error {
	if t.ID == "" {
		return errors.New("create api token: empty id (use store.NewID)")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	sites, err := encodeList(t.Sites)
	if err != nil {
		return fmt.Errorf("create api token: %w", err)
	}
	_, err = s.db.ExecContext(ctx,
		`INSERT INTO api_tokens (`+apiTokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.ID, t.Hash, t.Role, t.Name, dbTime(t.CreatedAt), dbTime(t.ExpiresAt), dbTime(t.RevokedAt), t.UserID, t.Kind, sites)
	if err != nil {
		return fmt.Errorf("create api token: %w", err)
	}
	return nil
}

// LookupAPIToken finds the token whose secret hashes to hash. It returns ErrNotFound
// for an unknown hash and also for a token revoked or expired at now, or owned by a
// user who is disabled or deleted, so callers cannot tell the cases apart by
// accident. A user's token has the lower of its own role and the user's current
// role: demoting a user demotes their tokens at once. One indexed query.
func (s *Store) LookupAPIToken(ctx context.Context, hash string, now time.Time) (APIToken, error) {
	t, o, err := scanAPITokenJoin(s.db.QueryRowContext(ctx,
		`SELECT `+apiTokenJoinCols+` FROM `+apiTokenJoin+` WHERE t.hash = $1`, hash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return APIToken{}, fmt.Errorf("lookup api token: %w", ErrNotFound)
	case err != nil:
		return APIToken{}, fmt.Errorf("lookup api token: %w", err)
	}
	if err := tokenUsable(t, o, now); err != nil {
		return APIToken{}, fmt.Errorf("lookup api token: %w", err)
	}
	if t.UserID != "" && roleRank(o.role.String) < roleRank(t.Role) {
		t.Role = o.role.String
	}
	if t.UserID != "" {
		if t.Sites, err = s.UserSites(ctx, t.UserID); err != nil {
			return APIToken{}, fmt.Errorf("lookup api token: %w", err)
		}
	}
	return t, nil
}

// tokenUsable says why t (with its owner o) cannot be used at now
// (wrapping ErrNotFound), or nil.
func tokenUsable(t APIToken, o tokenOwner, now time.Time) error {
	switch {
	case !t.RevokedAt.IsZero():
		return fmt.Errorf("revoked: %w", ErrNotFound)
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return fmt.Errorf("expired: %w", ErrNotFound)
	case t.UserID != "" && !o.name.Valid:
		return fmt.Errorf("its user was deleted: %w", ErrNotFound)
	case t.UserID != "" && o.disabled.Valid:
		return fmt.Errorf("its user %s is disabled: %w", o.name.String, ErrNotFound)
	}
	return nil
}

// roleRank orders roles like apiv1.RoleRank (the store does not import the
// API's types): 0 for an unknown one, which then wins as the lower.
func roleRank(role string) int {
	switch role {
	case "viewer":
		return 1
	case "auditor":
		return 2
	case "technician":
		return 3
	case "admin":
		return 4
	}
	return 0
}

// ListAPITokens returns every API token (hashes included), newest first, with
// the name of each one's owner.
func (s *Store) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+apiTokenJoinCols+` FROM `+apiTokenJoin+` ORDER BY t.created_at DESC, t.id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, _, err := scanAPITokenJoin(rows)
		if err != nil {
			return nil, fmt.Errorf("list api tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken marks a token revoked at now; revoking again keeps the first time.
// It returns ErrNotFound for an unknown id.
func (s *Store) RevokeAPIToken(ctx context.Context, id string, now time.Time) error {
	err := mustAffect(s.db.ExecContext(ctx,
		`UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`, dbTime(now), id))
	if err != nil {
		return fmt.Errorf("revoke api token: %w", err)
	}
	return nil
}
