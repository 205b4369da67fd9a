package journal

import (
	"errors"
	"os"
	"path/filepath"
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
