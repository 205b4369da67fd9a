package worker

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/wire"
)

// countingRunner runs nothing; it counts and can block until released.
type countingRunner struct {
	n       atomic.Int32
	release chan struct{}
}

func (r *countingRunner) Run(ctx context.Context, req wire.RunRequest, _ runner.Hooks) wire.RunResult {
	r.n.Add(1)
	if r.release != nil {
		select {
		case <-r.release:
		case <-ctx.Done():
			return wire.RunResult{RunID: req.RunID, State: wire.StateCancelled}
		}
	}
	return wire.RunResult{RunID: req.RunID, State: wire.StateSucceeded, Summary: "done", Started: time.Now(), Ended: time.Now()}
}

type outbox struct {
	mu   sync.Mutex
	msgs []string
	res  []wire.RunResult
}

func (o *outbox) send(typ string, body any) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, typ)
	if r, ok := body.(wire.RunResult); ok {
		o.res = append(o.res, r)
	}
	return nil
}

func (o *outbox) results() []wire.RunResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]wire.RunResult(nil), o.res...)
}

func env(t *testing.T, typ string, body any) wire.Envelope {
	e, err := wire.NewEnvelope(typ, "", body)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func runReq() wire.RunRequest {
	return wire.RunRequest{RunID: uuid.Must(uuid.NewV7()).String(), JobID: uuid.Must(uuid.NewV7()).String(),
		Plugin:  wire.ArtifactRef{Name: "p", Version: "1.0.0", SHA256: "0000000000000000000000000000000000000000000000000000000000000000", Size: 1},
		Timeout: wire.Duration(time.Minute)}
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestSameRunDeliveredTwiceRunsOnce(t *testing.T) {
	dir := t.TempDir()
	j, _ := journal.Open(dir)
	r := &countingRunner{}
	o := &outbox{}
	w := New(Config{Journal: j, Runner: r, Send: o.send, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	req := runReq()
	if err := w.Control(env(t, wire.MsgRun, req)); err != nil {
		t.Fatal(err)
	}
	wait(t, "first result", func() bool { return len(o.results()) == 1 })
	// Delivered again (after a reconnect): the stored result is sent, the
	// plugin does not run again.
	w.Control(env(t, wire.MsgRun, req))
	wait(t, "second result", func() bool { return len(o.results()) == 2 })
	if n := r.n.Load(); n != 1 {
		t.Fatalf("ran %d times", n)
	}
	// Until acked, results are sent again on connect.
	w.Connected()
	wait(t, "resent result", func() bool { return len(o.results()) == 3 })
	w.Control(env(t, wire.MsgRunAck, wire.RunAck{RunID: req.RunID}))
	if un, _ := j.Unacked(); len(un) != 0 {
		t.Fatalf("unacked after ack: %v", un)
	}
	cancel()
	<-done

	// A restarted agent (new worker, same journal) still refuses to rerun it.
	w2 := New(Config{Journal: j, Runner: r, Send: o.send, Log: zerolog.Nop()})
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go w2.Run(ctx)
	w2.Control(env(t, wire.MsgRun, req))
	time.Sleep(100 * time.Millisecond)
	if n := r.n.Load(); n != 1 {
		t.Fatalf("ran %d times after restart", n)
	}
}

func TestCancelAndShutdown(t *testing.T) {
	j, _ := journal.Open(t.TempDir())
	r := &countingRunner{release: make(chan struct{})}
	o := &outbox{}
	w := New(Config{Journal: j, Runner: r, Send: o.send, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()

	// Cancelled by the relay while running: reported cancelled.
	req := runReq()
	w.Control(env(t, wire.MsgRun, req))
	wait(t, "run to start", func() bool { return r.n.Load() == 1 })
	w.Control(env(t, wire.MsgRunCancel, wire.RunCancel{RunID: req.RunID}))
	wait(t, "cancelled result", func() bool { return len(o.results()) == 1 })
	if s := o.results()[0].State; s != wire.StateCancelled {
		t.Fatalf("state = %s", s)
	}

	// The agent shutting down mid-run records nothing: the next start
	// reports the run as interrupted.
	req2 := runReq()
	w.Control(env(t, wire.MsgRun, req2))
	wait(t, "second run to start", func() bool { return r.n.Load() == 2 })
	cancel()
	<-done
	if len(o.results()) != 1 {
		t.Fatalf("a result was sent for a run cut short by shutdown: %+v", o.results())
	}
	w2 := New(Config{Journal: j, Runner: r, Send: o.send, Log: zerolog.Nop()})
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go w2.Run(ctx)
	w2.Connected()
	wait(t, "interrupted result", func() bool {
		for _, res := range o.results() {
			if res.RunID == req2.RunID && res.State == wire.StateFailed {
				return true
			}
		}
		return false
	})
}

func TestMalformedControlClosesLink(t *testing.T) {
	j, _ := journal.Open(t.TempDir())
	w := New(Config{Journal: j, Runner: &countingRunner{}, Send: (&outbox{}).send, Log: zerolog.Nop()})
	bad := []wire.Envelope{
		{Type: wire.MsgRun, Body: json.RawMessage(`{"run_id":"x"}`)},
		{Type: wire.MsgRun, Body: json.RawMessage(`{"run_id":"../../etc","job_id":"1","plugin":{},"timeout":"1s","evil":1}`)},
		{Type: wire.MsgRunAck, Body: json.RawMessage(`[]`)},
		{Type: "rm -rf", Body: json.RawMessage(`{}`)},
	}
	for _, e := range bad {
		if err := w.Control(e); err == nil {
			t.Errorf("%s %s accepted", e.Type, e.Body)
		}
	}
}

// notStartedOnce fails its first run as not started (the plugin download
// failed), then runs.
type notStartedOnce struct{ n atomic.Int32 }

func (r *notStartedOnce) Run(ctx context.Context, req wire.RunRequest, _ runner.Hooks) wire.RunResult {
	if r.n.Add(1) == 1 {
		return wire.RunResult{RunID: req.RunID, State: wire.StateNotStarted, Error: "download plugin p 1.0.0: connection refused"}
	}
	return wire.RunResult{RunID: req.RunID, State: wire.StateSucceeded, Summary: "done", Started: time.Now(), Ended: time.Now()}
}

// A run whose plugin could not be downloaded is forgotten and reported not
// started, never as a result; delivered again, it runs.
func TestNotStartedRunIsForgottenAndRunsWhenSentAgain(t *testing.T) {
	j, _ := journal.Open(t.TempDir())
	r := &notStartedOnce{}
	o := &outbox{}
	w := New(Config{Journal: j, Runner: r, Send: o.send, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	req := runReq()
	w.Control(env(t, wire.MsgRun, req))
	wait(t, "the not-started report and the run's end", func() bool {
		o.mu.Lock()
		sent := slices.Contains(o.msgs, wire.MsgRunNotStarted)
		o.mu.Unlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		return sent && len(w.running) == 0
	})
	if _, ok, err := j.Get(req.RunID); ok || err != nil {
		t.Fatalf("the journal still holds the run that did not start (%v)", err)
	}
	if res := o.results(); len(res) != 0 {
		t.Fatalf("results sent for a run that did not start: %+v", res)
	}
	w.Control(env(t, wire.MsgRun, req))
	wait(t, "the result", func() bool { return len(o.results()) == 1 })
	if res := o.results()[0]; res.State != wire.StateSucceeded || r.n.Load() != 2 {
		t.Fatalf("result %+v after %d runs", res, r.n.Load())
	}
}
