//go:build linux

package server

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// /healthz tells the truth about the database: a relay whose data directory
// is full reports "degraded" with the reason (503), and "ok" again once the
// operator freed space. The data directory is a real tmpfs of its own (the
// test needs root, as in CI), really filled. (A read-only database fails the
// same write probe; a mount with the database open cannot be remounted
// read-only, so that case is not staged here.)
func TestHealthDegradedWhenDiskFullOrReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs for the relay's data directory: run it as root (CI does)")
	}
	dir := t.TempDir()
	mount := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %s: %v: %s (the test needs mount(8) from util-linux and the right to mount a tmpfs)", strings.Join(args, " "), err, out)
		}
	}
	mount("-t", "tmpfs", "-o", "size=96m,mode=0700", "tmpfs", dir)
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })

	_, client, base, _ := startTestRelay(t, dir)
	url := base + "/healthz"

	// waitHealth polls /healthz (the relay re-checks once a second) until it
	// answers code with a body containing want.
	waitHealth := func(code int, want string) {
		t.Helper()
		var last string
		defer func() {
			if t.Failed() {
				t.Logf("/healthz last answered: %s", last)
			}
		}()
		pollUntil(t, 15*time.Second, fmt.Sprintf("/healthz to answer %d with %q", code, want), func() bool {
			resp, err := client.Get(url)
			if err != nil {
				last = err.Error()
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
			return resp.StatusCode == code && strings.Contains(string(b), want)
		})
	}
	waitHealth(200, `"status":"ok"`)

	// Fill the disk.
	fill := filepath.Join(dir, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			break
		}
	}
	f.Close()
	waitHealth(503, "MiB free under")
	waitHealth(503, `"status":"degraded"`)
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	waitHealth(200, `"status":"ok"`)

}
