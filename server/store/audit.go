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

// auditPage is how many audit rows VerifyAudit reads at a time.
const auditPage = 1000

const auditCols = `seq, at, actor, action, target, detail, prev_hash, hash`

func scanAudit(sc scanner) (audit.Record, error) {
	var (
		r      audit.Record
		at     time.Time
		detail string
	)
	if err := sc.Scan(&r.Seq, &at, &r.Actor, &r.Action, &r.Target, &detail, &r.PrevHash, &r.Hash); err != nil {
		return audit.Record{}, err
	}
	r.Time = at.UTC()
	var err error
	if r.Detail, err = decodeMap(detail); err != nil {
		return audit.Record{}, fmt.Errorf("audit record %d: detail: %w", r.Seq, err)
	}
	return r, nil
}

// AppendAudit appends r to the audit chain in one transaction: it takes the chain head
// (the one row of audit_head), sets r.Seq to head+1, r.PrevHash to the head's hash,
// r.Time to r.Time in UTC truncated to microseconds (now if zero) and r.Hash to
// r.ComputeHash(), inserts the record, moves the head, and returns the stored record.
//
// Before hashing, r is normalised to exactly what reading it back yields: Actor, Action,
// Target and Detail are made valid UTF-8 (as JSON and PostgreSQL require) and an empty
// Detail becomes nil. Otherwise a record could hash differently once stored.
//
// The head is taken with "UPDATE audit_head SET seq = seq + 1 ... RETURNING", which
// locks the row on PostgreSQL and runs under BEGIN IMMEDIATE on SQLite, so concurrent
// appends queue up and produce one contiguous chain on both engines.
func (s *Store) AppendAudit(ctx context.Context, r audit.Record) (audit.Record, error) {
	detail, err := prepareAudit(&r)
	if err != nil {
		return audit.Record{}, fmt.Errorf("append audit: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error { return appendAuditTx(ctx, tx, &r, detail) })
	if err != nil {
		return audit.Record{}, fmt.Errorf("append audit: %w", err)
	}
	return r, nil
}

// prepareAudit normalises r as AppendAudit does and returns its detail as
// stored.
func prepareAudit(r *audit.Record) (string, error) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = audit.NormalTime(r.Time)
	r.Actor = strings.ToValidUTF8(r.Actor, "\uFFFD")
	r.Action = strings.ToValidUTF8(r.Action, "\uFFFD")
	r.Target = strings.ToValidUTF8(r.Target, "\uFFFD")
	detail, err := encodeMap(r.Detail)
	if err != nil {
		return "", err
	}
	r.Detail, err = decodeMap(detail)
	return detail, err
}

// appendAuditTx appends r (prepared by prepareAudit) inside tx: a change
// and its audit record commit together, or neither does.
func appendAuditTx(ctx context.Context, tx *sql.Tx, r *audit.Record, detail string) error {
	if err := tx.QueryRowContext(ctx,
		`UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash`).Scan(&r.Seq, &r.PrevHash); err != nil {
		return fmt.Errorf("take head: %w", err)
	}
	r.Hash = r.ComputeHash()
	// The site a record is about is part of its hashed detail ("site"),
	// and copied into site_id for the site filter.
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO audit_log (`+auditCols+`, site_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		r.Seq, r.Time, r.Actor, r.Action, r.Target, detail, r.PrevHash, r.Hash, r.Detail["site"]); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET hash = $1 WHERE id = 1`, r.Hash); err != nil {
		return fmt.Errorf("move head: %w", err)
	}
	return nil
}

// withSite returns detail with "site" set (a new map: callers' maps are
// not changed).
func withSite(detail map[string]string, site string) map[string]string {
	out := make(map[string]string, len(detail)+1)
	for k, v := range detail {
		out[k] = v
	}
	out["site"] = site
	return out
}

// ListAudit returns up to limit records with seq > afterSeq in ascending seq order.
// A limit of 0 or less means 1000.
func (s *Store) ListAudit(ctx context.Context, afterSeq int64, limit int) ([]audit.Record, error) {
	if limit <= 0 {
		limit = auditPage
	}
	recs, err := s.auditPage(ctx, afterSeq, -1, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return recs, nil
}

// auditPage reads up to limit records with afterSeq < seq (and seq <= upTo unless upTo < 0).
func (s *Store) auditPage(ctx context.Context, afterSeq, upTo int64, limit int) ([]audit.Record, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if upTo < 0 {
		rows, err = s.db.QueryContext(ctx,
			`SELECT `+auditCols+` FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	} else {
		rows, err = s.db.QueryContext(ctx,
			`SELECT `+auditCols+` FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`, afterSeq, upTo, limit)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var recs []audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, rows.Err()
}

// AuditHead returns the seq and hash of the last audit record (0 and "" when empty).
func (s *Store) AuditHead(ctx context.Context) (seq int64, hash string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("audit head: missing: %w", ErrNotFound)
	}
	if err != nil {
		return 0, "", fmt.Errorf("audit head: %w", err)
	}
	return seq, hash, nil
}

// VerifyAudit verifies the whole audit chain against the stored head, reading 1000 rows
// at a time. It reads the head first and then the records up to it, which are immutable,
// so appends running meanwhile do not disturb it. It returns how many records verified
// and, when the chain is broken, the first *audit.ChainError itself (not wrapped);
// other errors are database failures.
func (s *Store) VerifyAudit(ctx context.Context) (int64, error) {
	headSeq, headHash, err := s.AuditHead(ctx)
	if err != nil {
		return 0, fmt.Errorf("verify audit: %w", err)
	}
	var (
		v     audit.Verifier
		after int64
	)
	for {
		recs, err := s.auditPage(ctx, after, headSeq, auditPage)
		if err != nil {
			return v.Count(), fmt.Errorf("verify audit: read after %d: %w", after, err)
		}
		for _, r := range recs {
			if err := v.Add(r); err != nil {
				return v.Count(), err
			}
		}
		if len(recs) < auditPage {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	if err := v.Finish(headSeq, headHash); err != nil {
		return v.Count(), err
	}
	return v.Count(), nil
}
