package checks

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

func TestDiskSpace(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"path": dir, "min_free_pct": "0"}, wire.CheckPassed},
		{map[string]string{"path": dir, "min_free_pct": "100"}, wire.CheckFailed}, // no real disk is 100% free
		{map[string]string{"path": dir, "threshold": "100%"}, wire.CheckFailed},
		{map[string]string{"path": dir, "min_free_bytes": "18446744073709551615"}, wire.CheckFailed},
		{map[string]string{"path": dir, "min_free_pct": "x"}, wire.CheckError},
		{map[string]string{"path": filepath.Join(dir, "none")}, wire.CheckError},
	} {
		got, summary := RunBuiltin(context.Background(), BuiltinDiskSpace, c.params)
		if got != c.want {
			t.Errorf("%v: %s (%s), want %s", c.params, got, summary, c.want)
		}
	}
}

func TestDirSizeAndReboot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, s := RunBuiltin(context.Background(), BuiltinDirSize, map[string]string{"path": dir, "max_bytes": "1000"}); st != wire.CheckFailed {
		t.Errorf("dir-size over the limit: %s %s", st, s)
	}
	if st, s := RunBuiltin(context.Background(), BuiltinDirSize, map[string]string{"path": dir, "max_bytes": "5000"}); st != wire.CheckPassed {
		t.Errorf("dir-size at the limit: %s %s", st, s)
	}
	marker := filepath.Join(dir, "reboot-required")
	if st, _ := RunBuiltin(context.Background(), BuiltinPendingReboot, map[string]string{"path": marker}); st != wire.CheckPassed {
		t.Errorf("no marker: %s", st)
	}
	os.WriteFile(marker, nil, 0o600)
	if st, _ := RunBuiltin(context.Background(), BuiltinPendingReboot, map[string]string{"path": marker}); st != wire.CheckFailed {
		t.Errorf("marker: %s", st)
	}
	if st, s := RunBuiltin(context.Background(), "builtin:nope", nil); st != wire.CheckError || !strings.Contains(s, "builtin:disk-space") {
		t.Errorf("unknown check: %s %s", st, s)
	}
}

func TestServiceDown(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("this test needs Linux with systemctl (Debian package systemd)")
	}
	if st, s := RunBuiltin(context.Background(), BuiltinServiceDown, map[string]string{"unit": "-x"}); st != wire.CheckError {
		t.Errorf("bad unit name: %s %s", st, s)
	}
}

// outbox collects what the engine sends; online says whether Send works.
type outbox struct {
	mu     sync.Mutex
	online bool
	ch     chan wire.Envelope
}

func (o *outbox) send(typ string, body any) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.online {
		return os.ErrDeadlineExceeded
	}
	env, err := wire.NewEnvelope(typ, "", body)
	if err != nil {
		return err
	}
	o.ch <- env
	return nil
}

func (o *outbox) setOnline(v bool) { o.mu.Lock(); o.online = v; o.mu.Unlock() }

// TestEngineSelfHeal runs an engine on a real directory: a failing check
// asks for a fix, the answer's job ends, the check runs again; a fix that
// did not help is not asked for again until the check passed; results wait
// while offline and survive a restart until acknowledged.
func TestEngineSelfHeal(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(cache, "junk"), make([]byte, 4096), 0o600)
	ob := &outbox{online: true, ch: make(chan wire.Envelope, 100)}
	e, err := New(Config{Dir: dir, Send: ob.send})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	defer func() { cancel(); <-done }()

	pid := "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e"
	pol := wire.Policies{Policies: []wire.Policy{{ID: pid, Name: "cache", Check: BuiltinDirSize,
		Params: map[string]string{"path": cache, "max_bytes": "100"}, Interval: wire.Duration(time.Hour), Fix: true, MaxFixesDay: 3}}}
	env, _ := wire.NewEnvelope(wire.MsgPolicies, "", pol)
	if _, err := e.Control(env); err != nil {
		t.Fatal(err)
	}
	next := func(typ string) wire.Envelope {
		t.Helper()
		for {
			select {
			case env := <-ob.ch:
				if env.Type == typ {
					return env
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %s message", typ)
			}
		}
	}
	var res wire.CheckResults
	wire.DecodeBody(next(wire.MsgCheckResults), &res)
	if res.Results[0].State != wire.CheckFailed {
		t.Fatalf("first result %+v", res.Results[0])
	}
	var heal wire.SelfHeal
	wire.DecodeBody(next(wire.MsgSelfHeal), &heal)
	job := "0190c6a8-7d2e-7c4b-9a55-000000000001"
	env, _ = wire.NewEnvelope(wire.MsgSelfHealAnswer, "", wire.SelfHealAnswer{RequestID: heal.RequestID, JobID: job})
	e.Control(env)
	os.Remove(filepath.Join(cache, "junk")) // what the fix does
	e.FixDone(job)
	for {
		wire.DecodeBody(next(wire.MsgCheckResults), &res)
		last := res.Results[len(res.Results)-1]
		if last.Fix != "" {
			if last.Fix != wire.FixHelped || last.State != wire.CheckPassed || last.FixJob != job {
				t.Fatalf("re-check %+v", last)
			}
			break
		}
	}

	// Offline: results queue durably, a restart keeps them.
	ob.setOnline(false)
	cancel()
	<-done
	e.mu.Lock()
	queued := len(e.st.Queue)
	e.mu.Unlock()
	if queued == 0 {
		t.Fatal("nothing queued without acks")
	}
	b, _ := os.ReadFile(filepath.Join(dir, stateFile))
	var st state
	if err := json.Unmarshal(b, &st); err != nil || len(st.Queue) != queued {
		t.Fatalf("state file holds %d results, want %d (%v)", len(st.Queue), queued, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, stateFile)); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v", fi.Mode())
	}
	e2, err := New(Config{Dir: dir, Send: ob.send})
	if err != nil {
		t.Fatal(err)
	}
	if len(e2.policies) != 1 || len(e2.st.Queue) != queued {
		t.Fatalf("reloaded %d policies, %d results", len(e2.policies), len(e2.st.Queue))
	}
	ob.setOnline(true)
	e2.Connected()
	e2.flush() // what Run does when poked
	next(wire.MsgPoliciesRequest)
	wire.DecodeBody(next(wire.MsgCheckResults), &res)
	ids := []string{}
	for _, r := range res.Results {
		ids = append(ids, r.ID)
	}
	env, _ = wire.NewEnvelope(wire.MsgCheckAck, "", wire.CheckAck{IDs: ids})
	e2.Control(env)
	if len(e2.st.Queue) != 0 {
		t.Fatalf("%d results left after the ack", len(e2.st.Queue))
	}

	// A fix that does not help is not asked for again.
	os.WriteFile(filepath.Join(cache, "junk"), make([]byte, 4096), 0o600)
	p := e2.policies[0]
	e2.record(p, wire.CheckFailed, "big")
	e2.flush()
	wire.DecodeBody(next(wire.MsgSelfHeal), &heal)
	job2 := "0190c6a8-7d2e-7c4b-9a55-000000000002"
	e2.FixDone(job2) // the run ends before the answer arrives
	env, _ = wire.NewEnvelope(wire.MsgSelfHealAnswer, "", wire.SelfHealAnswer{RequestID: heal.RequestID, JobID: job2})
	e2.Control(env)
	e2.record(p, wire.CheckFailed, "still big")
	e2.record(p, wire.CheckFailed, "still big")
	if ps := e2.st.Policies[pid]; !ps.NoRepeat || ps.Pending != nil || len(ps.Fixes) != 2 {
		t.Fatalf("after a fix that did not help: %+v", ps)
	}
	e2.record(p, wire.CheckPassed, "ok")
	e2.record(p, wire.CheckFailed, "big again")
	if ps := e2.st.Policies[pid]; ps.NoRepeat || ps.Pending == nil {
		t.Fatalf("after passing once, a new failure asks for a fix: %+v", ps)
	}
}
