package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// A report schedule's firing queues its mail once: the claim, the outbox
// row and the audit record are one transaction, and a second relay's claim
// of the same fire time queues nothing.
func TestQueueReportMailOnce(t *testing.T) {
	ctx := context.Background()
	s, url := newStore(t)
	s2 := openTestStore(t, url)
	first := time.Now().UTC().Truncate(time.Second)
	sc := Schedule{ID: NewID(), Name: "weekly", Kind: ScheduleReport, Cron: "0 7 * * 1", TZ: "UTC", Request: `{"period":"7d"}`,
		NextFire: first, CreatedBy: "t", CreatedAt: first}
	if err := s.CreateSchedule(ctx, sc); err != nil {
		t.Fatal(err)
	}
	rec := audit.Record{Actor: "schedule weekly", Action: "report.mail", Target: "schedule " + sc.ID, Detail: map[string]string{"format": "csv"}}
	id, err := s.QueueReportMail(ctx, sc.ID, first, first.Add(7*24*time.Hour), "route-1", `{"subject":"s"}`, rec)
	if err != nil || id == "" {
		t.Fatalf("first claim: %q %v", id, err)
	}
	if _, err := s2.QueueReportMail(ctx, sc.ID, first, first.Add(7*24*time.Hour), "route-1", `{"subject":"s"}`, rec); !errors.Is(err, ErrFiringClaimed) {
		t.Fatalf("second claim of the same fire time: %v, want ErrFiringClaimed", err)
	}
	got, err := s.GetSchedule(ctx, sc.ID)
	if err != nil || got.LastJob != id || !got.LastFire.Equal(first) || !got.NextFire.Equal(first.Add(7*24*time.Hour)) {
		t.Fatalf("schedule after the firing: %+v %v", got, err)
	}
	ds, err := s.ListDeliveries(ctx, sc.ID)
	if err != nil || len(ds) != 1 || ds[0].ID != id || ds[0].Event != EventReportMail || ds[0].RouteID != "route-1" || ds[0].Done {
		t.Fatalf("outbox: %+v %v", ds, err)
	}
	d, ok, err := s.ClaimDelivery(ctx, time.Minute)
	if err != nil || !ok || d.ID != id || d.Body != `{"subject":"s"}` {
		t.Fatalf("claim the mail: %+v %v %v", d, ok, err)
	}
	recs, err := s.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Action == "report.mail" && r.Target == "schedule "+sc.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d report.mail audit records, want 1", n)
	}
}
