package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestFanoutFloor runs the floor over real child processes (this command,
// built once) on plain TCP and on TLS.
func TestFanoutFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the load generator")
	}
	bin := filepath.Join(t.TempDir(), "patchbay-loadgen")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, useTLS := range []bool{false, true} {
		f, err := measureFanout(ctx, bin, t.TempDir(), 300, 2, useTLS)
		if err != nil {
			t.Fatalf("%s: %v", f.transport, err)
		}
		if len(f.elapsed) != fanoutRounds-1 || len(f.cpu) != fanoutRounds-1 {
			t.Fatalf("%s: %d rounds timed, %d CPU readings, want %d", f.transport, len(f.elapsed), len(f.cpu), fanoutRounds-1)
		}
		el, cpu := f.perTrip()
		if el <= 0 || cpu <= 0 || el > 10*time.Second {
			t.Errorf("%s: median %v, CPU %.1f µs per round trip", f.transport, el, cpu)
		}
		t.Logf("%s, %d connections: median %v, %.1f µs CPU per round trip", f.transport, f.conns, el, cpu)
	}
	// A peer that is not there: the floor fails with a message, in time.
	if _, err := measureFanout(ctx, filepath.Join(t.TempDir(), "missing"), t.TempDir(), 10, 1, false); err == nil {
		t.Error("a missing peers binary did not fail the floor")
	}
}
