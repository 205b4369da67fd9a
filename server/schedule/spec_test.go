package schedule

import (
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseRefusesBadSpecsAndZones(t *testing.T) {
	for _, c := range []struct{ spec, tz, want string }{
		{"61 * * * *", "UTC", "want 5 fields"},
		{"* * *", "UTC", "want 5 fields"},
		{"0 3 * * 1-5", "Mars/Olympus", "IANA"},
		{"0 0 30 2 *", "UTC", "never fires"},
		{"CRON_TZ=UTC 0 3 * * *", "UTC", "--tz"},
	} {
		if _, err := Parse(c.spec, c.tz); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %q) = %v, want %q", c.spec, c.tz, err, c.want)
		}
	}
}

// Fire times are read in the zone: 03:00 Paris on weekdays is 02:00 UTC
// in winter and 01:00 in summer; seconds are an optional 6th field.
func TestNextInZone(t *testing.T) {
	s, err := Parse("0 3 * * 1-5", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Next(at("2026-12-04T02:30:00Z")); !got.Equal(at("2026-12-07T02:00:00Z")) { // Friday after 03:00 → Monday
		t.Errorf("winter next = %s", got)
	}
	if got := s.Next(at("2026-07-01T00:00:00Z")); !got.Equal(at("2026-07-01T01:00:00Z")) {
		t.Errorf("summer next = %s", got)
	}
	sec, err := Parse("*/20 * * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := sec.Next(at("2026-12-07T10:00:05Z")); !got.Equal(at("2026-12-07T10:00:20Z")) {
		t.Errorf("seconds next = %s", got)
	}
}

func TestWindowOpenAndClose(t *testing.T) {
	w, err := NewWindow("sat", "site", "0 22 * * 6", "UTC", 4*time.Hour) // Saturday 22:00 to Sunday 02:00
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t    string
		open bool
	}{
		{"2026-12-05T21:59:59Z", false}, {"2026-12-05T22:00:00Z", true}, {"2026-12-06T01:59:59Z", true},
		{"2026-12-06T02:00:00Z", false}, {"2026-12-07T22:00:00Z", false},
	} {
		if open, _ := w.OpenAt(at(c.t)); open != c.open {
			t.Errorf("open at %s = %v, want %v", c.t, open, c.open)
		}
	}
	if got := w.NextClose(at("2026-12-05T23:00:00Z")); !got.Equal(at("2026-12-06T02:00:00Z")) {
		t.Errorf("close of the open window = %s", got)
	}
	if got := w.NextOpen(at("2026-12-06T03:00:00Z")); !got.Equal(at("2026-12-12T22:00:00Z")) {
		t.Errorf("next open = %s", got)
	}
	back, err := ParseWindow(w.JSON())
	if err != nil || back.Cron != w.Cron || back.Duration != w.Duration {
		t.Fatalf("window round trip = %+v, %v", back, err)
	}
	if _, err := NewWindow("x", "s", "0 22 * * 6", "UTC", 0); err == nil {
		t.Error("a window of 0s accepted")
	}
}

// A firing missed while no relay ran is run once if its latest fire time
// is within Grace, skipped otherwise; the next fire time is after now
// either way (no firing per missed tick).
func TestPlanMissedFirings(t *testing.T) {
	s, _ := Parse("0 3 * * *", "UTC")
	stored := at("2026-12-01T03:00:00Z")
	last, next, run := plan(s, stored, at("2026-12-03T03:20:00Z")) // down two days, back 20 min after the third
	if !run || !last.Equal(at("2026-12-03T03:00:00Z")) || !next.Equal(at("2026-12-04T03:00:00Z")) {
		t.Errorf("back within grace: last %s next %s run %v", last, next, run)
	}
	last, next, run = plan(s, stored, at("2026-12-03T05:00:00Z"))
	if run || !last.Equal(at("2026-12-03T03:00:00Z")) || !next.Equal(at("2026-12-04T03:00:00Z")) {
		t.Errorf("back after grace: last %s next %s run %v", last, next, run)
	}
	if _, _, run := plan(s, stored, stored.Add(time.Second)); !run {
		t.Error("a firing on time not run")
	}
}
