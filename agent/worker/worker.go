// Package worker is the agent's side of jobs: it takes run requests from the
// relay, journals them (agent/journal) so each runs at most once, runs them
// (agent/runner), and delivers each result until the relay acknowledges it.
//
// Ownership: Run owns every goroutine the worker starts (one per run in
// progress, at most MaxParallel) and returns after they have ended.
// Control and Connected are called from the link and never block on a run.
//
// An agent stopped in the middle of a run does not record a result for it:
// the journal still says "started", and at the next start Recover reports
// the run as failed (interrupted) rather than running a fix twice.
//
// Consent for fixes: when a plugin's manifest or a script's header declares
// needs_consent, the runner calls the worker's gate after Check found work
// and before Fix (never for a dry run). The gate asks the person at the
// machine through the endpoint's consent policy (Asker, an
// *agent/consent.Consent), journals the decision before Fix can run, and the
// decision travels in the run's result to the relay (which audits it). A run
// is begun at most once, so nobody is asked twice for it.
//
// Restarts: when a Fix succeeds with reboot_required and the plugin's
// manifest or the script's header declares may_reboot, the worker decides
// the restart by the endpoint's policy (consent.Policy.Reboot: ask, never,
// force; see agent/consent DecideReboot), journals the decision together
// with the result so far (journal.Reboot), and only then runs the restart
// command. The outcome is a line of the result's details ("restart: tonight
// at 22:00, chosen by bob", "restart now: nobody logged in", "restart
// pending: policy never ..."), so it travels to the relay with the result.
// A fix that does not declare may_reboot never restarts anything. Because
// the decision is journaled before the command, a redelivered run neither
// asks nor restarts twice, and an agent stopped by the restart reports the
// run succeeded with the decision at its next start.
package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/receipt"
	"github.com/patchbay/patchbay/internal/wire"
)

// Defaults.
const (
	MaxParallel   = 4                // runs at once on one agent
	resendEvery   = 30 * time.Second // unacknowledged results are sent again this often
	queueCapacity = 256
)

// Runner runs one request; *runner.Runner is one. hooks.Consent is asked
// before a fix that needs consent, hooks.Reboot after a fix that may reboot
// required a restart.
type Runner interface {
	Run(ctx context.Context, req wire.RunRequest, hooks runner.Hooks) wire.RunResult
}

// Asker decides on a consent request by the endpoint's own policy;
// *consent.Consent is one.
type Asker interface {
	Decide(ctx context.Context, req consent.Request) consent.Decision
}

// Config configures a Worker. Journal, Runner and Send are required.
type Config struct {
	Journal *journal.Journal
	Runner  Runner
	// Consent asks the person at the machine before a fix that needs
	// consent. Nil: such fixes never run (they end skipped).
	Consent Asker
	// AgentID and Hostname name this machine in consent prompts.
	AgentID, Hostname string
	// Cert is the agent's client certificate (identity.Cert): its key signs
	// each fix consent decision (internal/receipt). Without one (or when
	// signing fails) no fix that needs consent runs: its approval could not
	// be shown to be the endpoint's.
	Cert tls.Certificate
	// Send delivers a control message on the agent's current link; it
	// returns an error while the agent is offline.
	Send func(typ string, body any) error
	Log  zerolog.Logger
}

// Worker executes runs for one agent.
type Worker struct {
	journal  *journal.Journal
	runner   Runner
	ask      Asker
	signer   *receipt.Signer // nil without Config.Cert
	agentID  string
	hostname string
	send     func(typ string, body any) error // sends on the current link; fails while offline
	log      zerolog.Logger

	queue   chan wire.RunRequest // from Control to Run
	connect chan struct{}        // buffered 1: a link came up

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // runs in progress, by run ID
}

// New returns a worker.
func New(cfg Config) *Worker {
	var signer *receipt.Signer
	if cfg.Cert.PrivateKey != nil {
		signer = receipt.NewSigner(cfg.Cert)
	}
	return &Worker{
		signer:  signer,
		journal: cfg.Journal, runner: cfg.Runner, ask: cfg.Consent, agentID: cfg.AgentID, hostname: cfg.Hostname,
		send: cfg.Send, log: cfg.Log,
		queue:   make(chan wire.RunRequest, queueCapacity),
		connect: make(chan struct{}, 1),
		running: map[string]context.CancelCauseFunc{},
	}
}

// errCancelled is the cause of a run cancelled by the relay (as opposed to
// the agent shutting down).
var errCancelled = errors.New("cancelled by the relay")

// Control handles the relay's run messages; it is the link's Control hook.
// A malformed message closes the link (the relay is broken or hostile).
func (w *Worker) Control(env wire.Envelope) error {
	switch env.Type {
	case wire.MsgRun:
		var req wire.RunRequest
		if err := wire.DecodeBody(env, &req); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		select {
		case w.queue <- req:
		default:
			w.log.Warn().Str("run_id", req.RunID).Msg("run queue full; the relay will send the run again")
		}
	case wire.MsgRunAck:
		var m wire.RunAck
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		if err := w.journal.Ack(m.RunID, time.Now().UTC()); err != nil {
			w.log.Error().Err(err).Str("run_id", m.RunID).Msg("journal ack")
		}
	case wire.MsgRunCancel:
		var m wire.RunCancel
		if err := wire.DecodeBody(env, &m); err != nil {
			return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: err.Error()}
		}
		w.mu.Lock()
		cancel := w.running[m.RunID]
		w.mu.Unlock()
		if cancel != nil {
			w.log.Info().Str("run_id", m.RunID).Msg("relay cancelled a run in progress")
			cancel(errCancelled)
		}
	default:
		return &mux.CloseError{Code: websocket.CloseProtocolError, Reason: "unexpected message type " + env.Type}
	}
	return nil
}

// Connected tells the worker a link came up: unacknowledged results are
// sent again. Safe from any goroutine; never blocks.
func (w *Worker) Connected() {
	select {
	case w.connect <- struct{}{}:
	default:
	}
}

// Run recovers interrupted runs from the journal, then executes runs until
// ctx ends, and returns once every run goroutine has ended.
func (w *Worker) Run(ctx context.Context) error {
	if n, err := w.journal.Recover(time.Now().UTC()); err != nil {
		return err
	} else if n > 0 {
		w.log.Warn().Int("runs", n).Msg("runs interrupted by the last shutdown are reported as failed")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, MaxParallel)
	t := time.NewTicker(resendEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.connect:
			w.resend()
		case <-t.C:
			w.resend()
		case req := <-w.queue:
			if !w.begin(req) {
				continue
			}
			rctx, cancel := context.WithCancelCause(ctx)
			w.mu.Lock()
			w.running[req.RunID] = cancel
			w.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel(nil)
				select {
				case sem <- struct{}{}:
					defer func() { <-sem }()
					w.execute(ctx, rctx, req)
				case <-rctx.Done():
					w.finish(ctx, rctx, req, wire.RunResult{RunID: req.RunID, State: wire.StateCancelled,
						Error: "cancelled before it started", Started: time.Now().UTC(), Ended: time.Now().UTC()})
				}
				w.mu.Lock()
				delete(w.running, req.RunID)
				w.mu.Unlock()
			}()
		}
	}
}

// begin journals a new run; for a known one it re-sends the stored result
// and reports false.
func (w *Worker) begin(req wire.RunRequest) bool {
	w.mu.Lock()
	_, inProgress := w.running[req.RunID]
	w.mu.Unlock()
	if inProgress {
		return false
	}
	e, err := w.journal.Begin(req, time.Now().UTC())
	switch {
	case errors.Is(err, journal.ErrExists):
		if e.State == journal.Done && e.Result != nil {
			w.log.Info().Str("run_id", req.RunID).Msg("run delivered again; sending the stored result instead of running it twice")
			_ = w.send(wire.MsgRunResult, *e.Result)
		}
		return false
	case err != nil:
		w.log.Error().Err(err).Str("run_id", req.RunID).Msg("journal")
		now := time.Now().UTC()
		_ = w.send(wire.MsgRunResult, wire.RunResult{RunID: req.RunID, State: wire.StateFailed,
			Error: "the agent could not journal the run, so it did not run it: " + err.Error(), Started: now, Ended: now})
		return false
	}
	return true
}

func (w *Worker) execute(ctx, rctx context.Context, req wire.RunRequest) {
	started := time.Now().UTC()
	_ = w.send(wire.MsgRunStarted, wire.RunStarted{RunID: req.RunID, Started: started})
	w.log.Info().Str("run_id", req.RunID).Str("job_id", req.JobID).Str("plugin", req.Plugin.Name).
		Str("version", req.Plugin.Version).Bool("dry_run", req.DryRun).Str("requester", req.Requester).Msg("run starting")
	res := w.runner.Run(rctx, req, runner.Hooks{Consent: w.gate(req), Reboot: w.rebootGate(req)})
	if res.State == wire.StateNotStarted && ctx.Err() == nil && w.notStarted(req, res) {
		return
	}
	w.finish(ctx, rctx, req, res)
}

// notStarted handles a run that could not start because its plugin could
// not be downloaded (the relay went away mid-download, or answered with an
// error): nothing ran, so the journal forgets it and the relay is told to
// send it again later. It reports false if the journal could not forget it:
// then the run ends failed, as before, rather than risk running it twice.
func (w *Worker) notStarted(req wire.RunRequest, res wire.RunResult) bool {
	log := w.log.With().Str("run_id", req.RunID).Str("job_id", req.JobID).Logger()
	if err := w.journal.Forget(req.RunID); err != nil {
		log.Error().Err(err).Msg("journal")
		return false
	}
	log.Warn().Str("error", res.Error).Msg("run not started: the relay sends it again")
	_ = w.send(wire.MsgRunNotStarted, wire.RunNotStarted{RunID: req.RunID, Error: res.Error})
	return true
}

// finish journals and sends a result, unless the agent itself is shutting
// down: then the run stays "started" and is reported as interrupted.
func (w *Worker) finish(ctx, rctx context.Context, req wire.RunRequest, res wire.RunResult) {
	if ctx.Err() != nil {
		return
	}
	if rctx.Err() != nil && errors.Is(context.Cause(rctx), errCancelled) {
		res.State = wire.StateCancelled
		if res.Error == "" {
			res.Error = "cancelled while running"
		}
	}
	if res.State == wire.StateNotStarted {
		res.State = wire.StateFailed // only when the journal could not forget the run
	}
	if err := w.journal.Finish(res, time.Now().UTC()); err != nil {
		w.log.Error().Err(err).Str("run_id", req.RunID).Msg("journal result")
	}
	_ = w.send(wire.MsgRunResult, res)
}

// resend sends every unacknowledged result.
func (w *Worker) resend() {
	results, err := w.journal.Unacked()
	if err != nil {
		w.log.Error().Err(err).Msg("journal")
		return
	}
	for _, r := range results {
		if err := w.send(wire.MsgRunResult, r); err != nil {
			return // offline; next time
		}
	}
}

// Compile-time check.
var _ Runner = (*runner.Runner)(nil)
