package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/patchbay/patchbay/internal/wire"
)

func req() wire.RunRequest {
	return wire.RunRequest{RunID: uuid.Must(uuid.NewV7()).String(), JobID: uuid.Must(uuid.NewV7()).String(),
		Plugin: wire.ArtifactRef{Name: "x", Version: "1.0.0"}}
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r := req()
	if _, err := j.Begin(r, now); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin(r, now); !errors.Is(err, ErrExists) {
		t.Fatalf("second Begin: %v, want ErrExists", err)
	}
	if un, _ := j.Unacked(); len(un) != 0 {
		t.Fatalf("unacked before finish: %v", un)
	}
	if err := j.Finish(wire.RunResult{RunID: r.RunID, State: wire.StateSucceeded, Summary: "ok"}, now); err != nil {
		t.Fatal(err)
	}
	// A second result never overwrites the first.
	if err := j.Finish(wire.RunResult{RunID: r.RunID, State: wire.StateFailed}, now); err != nil {
		t.Fatal(err)
	}
	un, err := j.Unacked()
	if err != nil || len(un) != 1 || un[0].State != wire.StateSucceeded {
		t.Fatalf("unacked = %+v, %v", un, err)
	}
	// Reopening (an agent restart) keeps it.
	j2, _ := Open(dir)
	if un, _ := j2.Unacked(); len(un) != 1 {
		t.Fatalf("after reopen unacked = %v", un)
	}
	if err := j2.Ack(r.RunID, now); err != nil {
		t.Fatal(err)
	}
	if un, _ := j2.Unacked(); len(un) != 0 {
		t.Fatalf("after ack unacked = %v", un)
	}
	if _, err := j2.Begin(r, now); !errors.Is(err, ErrExists) {
		t.Fatalf("Begin after ack: %v, want ErrExists (tombstone)", err)
	}
	// Pruned after the retention.
	if _, err := j2.Recover(now.Add(DefaultRetain + time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j2.Get(r.RunID); ok {
		t.Fatal("tombstone not pruned")
	}
}

func TestRecoverInterrupted(t *testing.T) {
	j, _ := Open(t.TempDir())
	now := time.Now().UTC()
	r := req()
	if _, err := j.Begin(r, now); err != nil {
		t.Fatal(err)
	}
	n, err := j.Recover(now.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	un, _ := j.Unacked()
	if len(un) != 1 || un[0].State != wire.StateFailed || un[0].Error == "" {
		t.Fatalf("unacked = %+v", un)
	}
}

func TestCorruptAndHostileIDs(t *testing.T) {
	dir := t.TempDir()
	j, _ := Open(dir)
	if _, _, err := j.Get("../../etc/passwd"); err == nil {
		t.Fatal("Get with a path accepted")
	}
	r := req()
	if err := os.WriteFile(filepath.Join(dir, r.RunID+".json"), []byte("{nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin(r, time.Now()); err == nil || errors.Is(err, ErrExists) {
		t.Fatalf("Begin over a corrupt entry: %v", err)
	}
	// A stranger file is ignored.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600)
	if _, err := j.Unacked(); err == nil {
		t.Fatal("Unacked ignored a corrupt entry")
	}
}

// A consent decision is journaled before Fix runs: an agent that stops
// afterwards reports the run with the decision, skipped when it was denied
// (Fix never ran), failed (interrupted) when it was approved. The first
// decision stays.
func TestConsentSurvivesAnInterruptedRun(t *testing.T) {
	j, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	denied, approved, never := req(), req(), req()
	for _, r := range []wire.RunRequest{denied, approved} {
		if _, err := j.Begin(r, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Consent(never.RunID, wire.RunConsent{Approved: true}, now); err == nil {
		t.Fatal("consent recorded for a run never begun")
	}
	if err := j.Consent(denied.RunID, wire.RunConsent{By: "timeout", Message: "no answer within 60s", At: now}, now); err != nil {
		t.Fatal(err)
	}
	if err := j.Consent(denied.RunID, wire.RunConsent{Approved: true, By: "mallory", At: now}, now); err != nil {
		t.Fatal(err)
	}
	if err := j.Consent(approved.RunID, wire.RunConsent{Approved: true, By: "alice", At: now}, now); err != nil {
		t.Fatal(err)
	}
	if n, err := j.Recover(now); err != nil || n != 2 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	un, err := j.Unacked()
	if err != nil || len(un) != 2 {
		t.Fatalf("unacked = %+v, %v", un, err)
	}
	for _, res := range un {
		switch res.RunID {
		case denied.RunID:
			if res.State != wire.StateSkipped || res.Summary != "fix not run: no answer within 60s" || res.Consent == nil ||
				res.Consent.Approved || res.Consent.By != "timeout" {
				t.Errorf("denied run = %+v, consent %+v", res, res.Consent)
			}
		case approved.RunID:
			if res.State != wire.StateFailed || !strings.Contains(res.Error, "interrupted") || res.Consent == nil || res.Consent.By != "alice" {
				t.Errorf("approved run = %+v, consent %+v", res, res.Consent)
			}
		}
	}
	// The tombstone keeps no decision.
	if err := j.Ack(denied.RunID, now); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := j.Get(denied.RunID); e.Consent != nil || e.Result.Consent != nil {
		t.Fatalf("acked entry = %+v", e)
	}
}

// An agent stopped by the restart it scheduled: the run is reported with
// the result and restart decision kept before the command ran, and a
// second decision never replaces the first.
func TestRebootSurvivesTheRestart(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r := req()
	if _, err := j.Begin(r, now); err != nil {
		t.Fatal(err)
	}
	res := wire.RunResult{RunID: r.RunID, State: wire.StateSucceeded, Changed: true, RebootRequired: true, Summary: "fixed",
		Details: "restart now: nobody logged in", Started: now}
	first := Reboot{Choice: "now", By: "no-user", Text: "restart now: nobody logged in", At: now, When: now, Result: res}
	if got, err := j.Reboot(r.RunID, first, now); err != nil || got.Text != first.Text {
		t.Fatalf("Reboot = %+v, %v", got, err)
	}
	if got, err := j.Reboot(r.RunID, Reboot{Choice: "tonight", Text: "other"}, now); err != nil || got.Text != first.Text {
		t.Fatalf("second Reboot = %+v, %v; want the first decision", got, err)
	}
	// The machine restarts; the agent starts again.
	j2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := j2.Recover(now.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	un, err := j2.Unacked()
	if err != nil || len(un) != 1 || un[0].State != wire.StateSucceeded || un[0].Details != res.Details || !un[0].RebootRequired {
		t.Fatalf("unacked = %+v, %v", un, err)
	}
	if err := j2.Ack(r.RunID, now); err != nil {
		t.Fatal(err)
	}
	e, ok, err := j2.Get(r.RunID)
	if err != nil || !ok || e.Reboot == nil || e.Reboot.Choice != "now" || e.Reboot.Result.RunID != "" {
		t.Fatalf("acked entry = %+v, %v, %v", e, ok, err)
	}
	if _, err := j2.Reboot(r.RunID, first, now); err == nil {
		t.Fatal("Reboot on a finished run succeeded")
	}
}

// A pending self-update survives Recover (agent/upgrade finishes it), is
// listed by PendingUpgrades until finished, and cannot be forgotten.
func TestUpgradeLeftToTheUpgrader(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r := req()
	if _, err := j.Begin(r, now); err != nil {
		t.Fatal(err)
	}
	u := Upgrade{From: "v1", To: "v2", Exe: "/x/patchbay-agent", Swapped: now, Deadline: now.Add(time.Minute)}
	if _, err := j.Upgrade(r.RunID, u, now); err != nil {
		t.Fatal(err)
	}
	if err := j.Forget(r.RunID); err == nil {
		t.Fatal("Forget of a run with a pending upgrade succeeded")
	}
	j2, _ := Open(dir) // the restarted agent
	if n, err := j2.Recover(now); err != nil || n != 0 {
		t.Fatalf("Recover = %d, %v; want the upgrade left alone", n, err)
	}
	p, err := j2.PendingUpgrades()
	if err != nil || len(p) != 1 || p[0].Upgrade.To != "v2" || !p[0].Upgrade.Deadline.Equal(u.Deadline) {
		t.Fatalf("PendingUpgrades = %+v, %v", p, err)
	}
	if st, err := os.Stat(filepath.Join(dir, r.RunID+".json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal file: %v, %v; want 0600", st, err)
	}
	u.RolledBack = "rolled back: v2 did not reconnect within 1m0s"
	if _, err := j2.Upgrade(r.RunID, u, now); err != nil {
		t.Fatal(err)
	}
	if err := j2.Finish(wire.RunResult{RunID: r.RunID, State: wire.StateFailed, Error: u.RolledBack}, now); err != nil {
		t.Fatal(err)
	}
	if p, _ := j2.PendingUpgrades(); len(p) != 0 {
		t.Fatalf("PendingUpgrades after Finish = %+v", p)
	}
	if _, err := j2.Upgrade(r.RunID, u, now); err == nil {
		t.Fatal("Upgrade of a finished run succeeded")
	}
}
