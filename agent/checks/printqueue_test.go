//go:build !windows

package checks

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/patchbay/patchbay/internal/cupstest"
	"github.com/patchbay/patchbay/internal/wire"
)

// TestStuckPrintQueue runs builtin:stuck-print-queue against a private cupsd:
// a stopped queue holding a job fails it, an old held job on an enabled
// queue fails it by age, and clearing both makes it pass.
func TestStuckPrintQueue(t *testing.T) {
	c := cupstest.Start(t)
	c.AddQueue("testq")
	c.AddQueue("other")
	ctx := context.Background()
	check := func(params map[string]string) (string, string) {
		t.Helper()
		params["cups_server"] = c.Addr
		return RunBuiltin(ctx, BuiltinPrintQueue, params)
	}
	if st, s := check(map[string]string{}); st != wire.CheckPassed || !strings.Contains(s, "2 queue(s): 0 job(s)") {
		t.Fatalf("idle queues: %s %s", st, s)
	}
	// A stopped queue with a job waiting.
	c.Run("cupsdisable", "testq")
	id := c.Submit("testq")
	st, s := check(map[string]string{})
	if st != wire.CheckFailed || !strings.Contains(s, "queue testq is stopped with 1 job(s) waiting") {
		t.Fatalf("stopped queue with a job: %s %s", st, s)
	}
	if st, s := check(map[string]string{"queue": "other"}); st != wire.CheckPassed {
		t.Fatalf("queue=other ignores testq: %s %s", st, s)
	}
	c.Run("cancel", id)
	c.Run("cupsenable", "testq")
	if st, s := check(map[string]string{}); st != wire.CheckPassed {
		t.Fatalf("after cancel and cupsenable: %s %s", st, s)
	}
	// A held job on an enabled queue: young against 1h, stuck against 1ns.
	held := c.Submit("other", "-H", "hold")
	if st, s := check(map[string]string{"max_age": "1h"}); st != wire.CheckPassed || !strings.Contains(s, "1 job(s) waiting") {
		t.Fatalf("young held job: %s %s", st, s)
	}
	if st, s := check(map[string]string{"max_age": "1ns"}); st != wire.CheckFailed || !strings.Contains(s, "job "+held+" on other waiting since") {
		t.Fatalf("old held job: %s %s", st, s)
	}
	for _, p := range []map[string]string{{"max_age": "soon"}, {"queue": "-x"}, {"queue": "nosuch"}} {
		if st, s := check(p); st != wire.CheckError {
			t.Errorf("%v: %s %s, want error", p, st, s)
		}
	}
	// A scheduler that does not answer fails the check.
	port, err := cupstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if st, s := RunBuiltin(ctx, BuiltinPrintQueue, map[string]string{"cups_server": "127.0.0.1:" + strconv.Itoa(port)}); st == wire.CheckPassed {
		t.Fatalf("no scheduler: %s %s", st, s)
	}
}
