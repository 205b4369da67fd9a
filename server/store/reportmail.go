package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// Scheduled reports (issue 17, part 6: "a report can be mailed on a
// schedule") are schedules of kind 'report': Request holds the report's
// spec as JSON (api.reportSpec), SiteID its site ("" every site the owner
// reaches). At each fire time the relay that claims the firing builds the
// report and queues the mail in the alert outbox (alert_outbox, event
// EventReportMail, alert_id the schedule's ID, route_id the SMTP alert
// route whose server it goes through), so the alerts delivery loop sends
// it, retried with backoff like an alert. last_job is that outbox row: its
// state is the schedule's last send.

// ScheduleReport is the kind of a report schedule.
const ScheduleReport = "report"

// EventReportMail is the outbox event of a mailed report.
const EventReportMail = "report"

// QueueReportMail claims the firing of schedule id at fire time at (moving
// its next fire time to next) and, in the same transaction, queues body for
// SMTP route routeID and appends the audit record rec (its Time is set
// here): the report is queued once per firing across restarts and the
// relays of a tier. It returns the outbox row's ID, or ErrFiringClaimed.
func (s *Store) QueueReportMail(ctx context.Context, id string, at, next time.Time, routeID, body string, rec audit.Record) (string, error) {
	f := firing{scheduleID: id, at: at.Truncate(time.Second), next: next.Truncate(time.Second)}
	mailID := NewID()
	now, err := s.dbNow(ctx) // the outbox's clock
	if err != nil {
		return "", fmt.Errorf("queue report mail: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := f.claim(ctx, tx, mailID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox (id, route_id, alert_id, event, body, created_at, next_attempt)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, mailID, routeID, id, EventReportMail, body, dbTime(now), dbTime(now)); err != nil {
			return fmt.Errorf("queue report mail: %w", err)
		}
		rec.Time = now
		enc, err := prepareAudit(&rec)
		if err != nil {
			return err
		}
		return appendAuditTx(ctx, tx, &rec, enc)
	})
	if err != nil {
		return "", fmt.Errorf("schedule %s at %s: %w", id, f.at.Format(time.RFC3339), err)
	}
	return mailID, nil
}
