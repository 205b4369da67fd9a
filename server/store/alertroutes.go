package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Alert routes and their outbox (migration 00024).

// Route kinds.
const (
	RouteWebhook = "webhook"
	RouteSMTP    = "smtp"
)

// AlertRoute sends the alerts of a site (AllSites: every site) at or above
// MinSeverity to a webhook (Target an https or http URL, Secret the HMAC
// key) or an SMTP server (Target smtp://HOST:PORT, Secret the password,
// User, From, To).
type AlertRoute struct {
	ID, SiteID, MinSeverity, Kind, Target string
	Secret                                string
	From, User                            string
	To                                    []string
	CAPEM                                 string // PEM CA for the receiver's TLS certificate ("": the system's)
	CreatedAt                             time.Time
	CreatedBy                             string
}

// Matches reports whether the route takes alert a.
func (r AlertRoute) Matches(a Alert) bool {
	return (r.SiteID == AllSites || r.SiteID == a.SiteID) && SeverityRank(a.Severity) >= SeverityRank(r.MinSeverity)
}

const routeCols = `id, site_id, min_severity, kind, target, secret, mail_from, mail_to, smtp_user, ca_pem, created_at, created_by`

// alertRoutes returns every route with its secret as stored (sealed).
func (s *Store) alertRoutes(ctx context.Context, q queryer) ([]AlertRoute, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+routeCols+` FROM alert_routes ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertRoute
	for rows.Next() {
		var (
			r       AlertRoute
			to      string
			created sql.NullTime
		)
		if err := rows.Scan(&r.ID, &r.SiteID, &r.MinSeverity, &r.Kind, &r.Target, &r.Secret, &r.From, &to, &r.User, &r.CAPEM, &created, &r.CreatedBy); err != nil {
			return nil, err
		}
		if r.To, err = decodeList(to); err != nil {
			return nil, err
		}
		r.CreatedAt = fromNull(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ListAlertRoutes returns every route, by ID, with its secret in plain
// text (it is sealed in the database).
func (s *Store) ListAlertRoutes(ctx context.Context) ([]AlertRoute, error) {
	out, err := s.alertRoutes(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("list alert routes: %w", err)
	}
	for i := range out {
		if out[i].Secret, err = s.open(routeSecret, out[i].ID, out[i].Secret); err != nil {
			return nil, fmt.Errorf("list alert routes: %w", err)
		}
	}
	return out, nil
}

// GetAlertRoute returns route id; ErrNotFound if there is none.
func (s *Store) GetAlertRoute(ctx context.Context, id string) (AlertRoute, error) {
	rs, err := s.ListAlertRoutes(ctx)
	if err != nil {
		return AlertRoute{}, err
	}
	for _, r := range rs {
		if r.ID == id {
			return r, nil
		}
	}
	return AlertRoute{}, fmt.Errorf("alert route %s: %w", id, ErrNotFound)
}

// CreateAlertRoute stores r (ID and CreatedAt set here) and returns it.
func (s *Store) CreateAlertRoute(ctx context.Context, r AlertRoute, now time.Time) (AlertRoute, error) {
	r.ID, r.CreatedAt = NewID(), now.UTC().Truncate(time.Microsecond)
	to, err := encodeList(r.To)
	if err != nil {
		return AlertRoute{}, err
	}
	secret, err := s.seal(routeSecret, r.ID, r.Secret)
	if err != nil {
		return AlertRoute{}, fmt.Errorf("create alert route: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO alert_routes (`+routeCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.ID, r.SiteID, r.MinSeverity, r.Kind, r.Target, secret, r.From, to, r.User, r.CAPEM, dbTime(now), r.CreatedBy); err != nil {
		return AlertRoute{}, fmt.Errorf("create alert route: %w", err)
	}
	return r, nil
}

// DeleteAlertRoute removes route id and what is still queued for it.
func (s *Store) DeleteAlertRoute(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM alert_routes WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete alert route %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alert route %s: %w", id, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM alert_outbox WHERE route_id = $1 AND done = 0`, id)
		return err
	})
}

// Delivery is one queued notification, claimed by one relay for one
// attempt.
type Delivery struct {
	ID, RouteID, AlertID, Event, Body string
	CreatedAt                         time.Time
	Attempts                          int    // including this one
	Token                             string // proves the claim: FinishDelivery checks it
}

// ClaimDelivery claims the oldest due notification that nobody holds (or
// whose holder's claim expired) for ttl by the database's clock, and
// counts the attempt. ok is false when none is due. Only the holder of
// the claim can finish it (FinishDelivery), so each attempt has one owner;
// a relay that dies mid-attempt leaves the row to be claimed again after
// ttl (delivery is at least once).
func (s *Store) ClaimDelivery(ctx context.Context, ttl time.Duration) (d Delivery, ok bool, err error) {
	now, err := s.dbNow(ctx)
	if err != nil {
		return Delivery{}, false, fmt.Errorf("claim alert delivery: %w", err)
	}
	for range 5 {
		var id string
		err := s.db.QueryRowContext(ctx, `SELECT id FROM alert_outbox WHERE done = 0 AND next_attempt <= $1
			AND (claim_expires IS NULL OR claim_expires < $2) ORDER BY next_attempt, id LIMIT 1`, dbTime(now), dbTime(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return Delivery{}, false, nil
		}
		if err != nil {
			return Delivery{}, false, fmt.Errorf("claim alert delivery: %w", err)
		}
		token := NewID()
		var created sql.NullTime
		err = s.db.QueryRowContext(ctx, `UPDATE alert_outbox SET claim_token = $1, claim_expires = $2, attempts = attempts + 1
			WHERE id = $3 AND done = 0 AND (claim_expires IS NULL OR claim_expires < $4)
			RETURNING id, route_id, alert_id, event, body, created_at, attempts`, token, dbTime(now.Add(ttl)), id, dbTime(now)).
			Scan(&d.ID, &d.RouteID, &d.AlertID, &d.Event, &d.Body, &created, &d.Attempts)
		if errors.Is(err, sql.ErrNoRows) {
			continue // another relay claimed it first
		}
		if err != nil {
			return Delivery{}, false, fmt.Errorf("claim alert delivery: %w", err)
		}
		d.Token, d.CreatedAt = token, fromNull(created)
		return d, true, nil
	}
	return Delivery{}, false, nil
}

// FinishDelivery records the outcome of d's attempt: done (delivered, or
// given up: lastErr says why), or to be retried after retryIn. It reports
// false when the claim was lost (expired and taken by another relay).
func (s *Store) FinishDelivery(ctx context.Context, d Delivery, done bool, lastErr string, retryIn time.Duration) (bool, error) {
	now, err := s.dbNow(ctx)
	if err != nil {
		return false, fmt.Errorf("finish alert delivery: %w", err)
	}
	doneInt, doneAt := 0, any(nil)
	if done {
		doneInt, doneAt = 1, dbTime(now)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE alert_outbox SET done = $1, done_at = $2, last_error = $3, next_attempt = $4,
		claim_token = '', claim_expires = NULL WHERE id = $5 AND claim_token = $6`,
		doneInt, doneAt, lastErr, dbTime(now.Add(retryIn)), d.ID, d.Token)
	if err != nil {
		return false, fmt.Errorf("finish alert delivery %s: %w", d.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// NextDeliveryIn returns how long until the next queued notification is
// due (0: now), and false when nothing is queued.
func (s *Store) NextDeliveryIn(ctx context.Context) (time.Duration, bool, error) {
	var next sql.NullTime
	// Not MIN(): SQLite returns an aggregate as text, not a TIMESTAMP.
	err := s.db.QueryRowContext(ctx, `SELECT next_attempt FROM alert_outbox WHERE done = 0 ORDER BY next_attempt LIMIT 1`).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("next alert delivery: %w", err)
	}
	if !next.Valid {
		return 0, false, nil
	}
	now, err := s.dbNow(ctx)
	if err != nil {
		return 0, false, err
	}
	return max(fromNull(next).Sub(now), 0), true, nil
}

// DeliveryStatus is a queued or sent notification, for tests and the CLI.
type DeliveryStatus struct {
	ID, RouteID, AlertID, Event, LastError string
	Attempts                               int
	Done                                   bool
}

// ListDeliveries returns the notifications of alert alertID ("" for all),
// oldest first.
func (s *Store) ListDeliveries(ctx context.Context, alertID string) ([]DeliveryStatus, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, route_id, alert_id, event, last_error, attempts, done FROM alert_outbox
		WHERE alert_id = $1 OR $2 = '' ORDER BY created_at, id`, alertID, alertID)
	if err != nil {
		return nil, fmt.Errorf("list alert deliveries: %w", err)
	}
	defer rows.Close()
	var out []DeliveryStatus
	for rows.Next() {
		var (
			d    DeliveryStatus
			done int
		)
		if err := rows.Scan(&d.ID, &d.RouteID, &d.AlertID, &d.Event, &d.LastError, &d.Attempts, &done); err != nil {
			return nil, err
		}
		d.Done = done == 1
		out = append(out, d)
	}
	return out, rows.Err()
}
