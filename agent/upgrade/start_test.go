package upgrade

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/internal/wire"
)

const startRunID = "6f1c2b1e-8a43-4c3e-9d2a-0b7d5e1f4a21"

// pendingUpgrade journals a swapped upgrade v1 -> v2 of an executable in a
// temporary directory (EXE holds "new", EXE.prev "old").
func pendingUpgrade(t *testing.T, swapped time.Time, window time.Duration) (*journal.Journal, string) {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "patchbay-agent")
	if err := os.WriteFile(exe, []byte("new"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe+PrevSuffix, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Begin(wire.RunRequest{RunID: startRunID, JobID: "job", Plugin: wire.ArtifactRef{Name: wire.UpgradePlugin, Version: "v2"}}, swapped); err != nil {
		t.Fatal(err)
	}
	up := journal.Upgrade{From: "v1", To: "v2", Exe: exe, Swapped: swapped, Deadline: swapped.Add(window)}
	if _, err := j.Upgrade(startRunID, up, swapped); err != nil {
		t.Fatal(err)
	}
	return j, exe
}

func record(t *testing.T, j *journal.Journal) journal.Upgrade {
	t.Helper()
	e, ok, err := j.Get(startRunID)
	if err != nil || !ok || e.Upgrade == nil {
		t.Fatalf("journal entry: %+v, %v, %v", e, ok, err)
	}
	return *e.Upgrade
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The new version's starts are counted durably; the start after MaxStarts
// restores the previous binary with the crash reason, and the old version
// then reports the run failed with it, once.
func TestCountStartRollsBackACrashLoop(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j, exe := pendingUpgrade(t, t0, time.Hour)
	log := zerolog.Nop()
	if CountStart(j, "v1", t0, log) || record(t, j).Starts != 0 {
		t.Fatal("a start of the old version was counted")
	}
	for i := 1; i <= MaxStarts; i++ {
		if CountStart(j, "v2", t0.Add(time.Duration(i)*time.Second), log) {
			t.Fatalf("start %d rolled back", i)
		}
		up := record(t, j)
		if up.Starts != i || !up.FirstStart.Equal(t0.Add(time.Second)) || up.RolledBack != "" {
			t.Fatalf("after start %d: %+v", i, up)
		}
		if content(t, exe) != "new" {
			t.Fatalf("start %d changed the executable", i)
		}
	}
	if !CountStart(j, "v2", t0.Add(time.Minute), log) {
		t.Fatalf("start %d did not roll back", MaxStarts+1)
	}
	want := "rolled back: v2 crashed 3 times before it connected"
	if up := record(t, j); up.RolledBack != want || up.Starts != MaxStarts+1 {
		t.Fatalf("after the rollback: %+v, want %q", up, want)
	}
	if content(t, exe) != "old" || content(t, exe+".failed") != "new" {
		t.Fatal("the previous binary was not restored")
	}
	if _, err := os.Stat(exe + PrevSuffix); !os.IsNotExist(err) {
		t.Fatalf("%s after the restore: %v", exe+PrevSuffix, err)
	}
	// A start after the decision (say the restart came up on the new
	// binary after all) leaves the decided record alone.
	if CountStart(j, "v2", t0.Add(2*time.Minute), log) || record(t, j).Starts != MaxStarts+1 {
		t.Fatal("a start after the rollback was counted")
	}

	// The old version reports the run failed with the reason, once.
	for i := 0; i < 2; i++ {
		u := New(Config{Journal: j, Version: "v1", Exe: exe, Restart: func() { t.Error("restart") }, Log: log,
			Now: func() time.Time { return t0.Add(3 * time.Minute) }})
		if err := u.Resume(context.Background()); err != nil {
			t.Fatal(err)
		}
		u.Close()
	}
	e, _, err := j.Get(startRunID)
	if err != nil || e.Result == nil || e.Result.State != wire.StateFailed || e.Result.Error != want ||
		!strings.Contains(e.Result.Details, `"rolled_back":true`) {
		t.Fatalf("the run after the rollback: %+v, %v", e.Result, err)
	}
	if p, _ := j.PendingUpgrades(); len(p) != 0 {
		t.Fatalf("still pending: %+v", p)
	}
}

// The window runs from the first start of the new version, not the swap
// (the machine may have been off) and not each start (a crash would give
// it the whole window again).
func TestCountStartDeadlineFromFirstStart(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j, exe := pendingUpgrade(t, t0, time.Minute)
	log := zerolog.Nop()
	first := t0.Add(10 * time.Minute) // the machine was off
	if CountStart(j, "v2", first, log) {
		t.Fatal("the first start after the window from the swap rolled back")
	}
	if got := deadline(record(t, j), first.Add(time.Hour)); !got.Equal(first.Add(time.Minute)) {
		t.Fatalf("deadline = %v, want %v", got, first.Add(time.Minute))
	}
	if CountStart(j, "v2", first.Add(59*time.Second), log) {
		t.Fatal("a start within the window rolled back")
	}
	if !CountStart(j, "v2", first.Add(61*time.Second), log) {
		t.Fatal("a start after the window from the first start did not roll back")
	}
	if up := record(t, j); up.RolledBack != "rolled back: v2 did not reconnect within 1m0s" || up.Starts != 3 {
		t.Fatalf("after the rollback: %+v", up)
	}
	if content(t, exe) != "old" {
		t.Fatal("the previous binary was not restored")
	}
}

// Without a recorded first start (an upgrade journaled by a version that
// did not count), the window runs from now; with one, from the first start.
func TestDeadline(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	up := journal.Upgrade{Swapped: t0, Deadline: t0.Add(time.Minute)}
	if got := deadline(up, t0.Add(time.Second)); !got.Equal(t0.Add(time.Second + time.Minute)) {
		t.Fatalf("deadline soon after the swap = %v", got)
	}
	if got := deadline(up, t0.Add(time.Hour)); !got.Equal(t0.Add(time.Hour + time.Minute)) {
		t.Fatalf("deadline long after the swap = %v", got)
	}
	up.FirstStart = t0.Add(2 * time.Minute)
	if got := deadline(up, t0.Add(time.Hour)); !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("deadline from the first start = %v", got)
	}
}
