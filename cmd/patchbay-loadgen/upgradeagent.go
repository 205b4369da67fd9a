package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchbay/patchbay/agent/link"
	"github.com/patchbay/patchbay/agent/upgrade"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/signature"
)

// A simulated agent answers self-update runs (wire.UpgradePlugin, issue 16)
// as patchbay-agent does (agent/upgrade), over the same wire messages and
// HTTPS downloads, without replacing any binary:
//
//  1. run_started, then SHA256SUMS and SHA256SUMS.sig of the version from
//     the relay it is linked to, over HTTPS with its own client
//     certificate; the signature verified against the process's
//     --upgrade-signers (namespace patchbay-release);
//  2. its platform's binary (release.AgentName for this OS and arch, which
//     the simulated agents report), streamed through SHA-256 and checked
//     against the manifest (not kept);
//  3. the "restart": its link closed (close code 1001, as an agent that
//     stops) and started again at once with the new version in its hello;
//  4. once the new link is up, run_result succeeded, "upgraded from X to
//     V", with upgrade.Details (versions before and after), sent again
//     whenever the relay sends the run again.
//
// A run that fails (the relay's answer, signature, hash) ends failed with the
// reason and nothing changes; a transport error (the relay could not be
// reached, the transfer broke) is run_not_started, and the relay sends the
// run again later, as on a real agent (agent/upgrade's notStarted).

// upgradeStats counts the process's self-update runs for its reports.
type upgradeStats struct {
	runs, upgraded, failed, skipped atomic.Int64
	notStarted                      atomic.Int64 // transport errors: run_not_started
	bytes                           atomic.Int64 // downloaded from /releases/
	mu                              sync.Mutex
	lastErr                         string
}

func (s *upgradeStats) fail(err string) {
	s.failed.Add(1)
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// upgrader is what the agents of one process share for self-updates.
type upgrader struct {
	signers *signature.AllowedSigners // nil: every upgrade is refused, as on an agent without release signers
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	stats   upgradeStats
	ctx     context.Context // the process's: upgrades stop with it
	wg      sync.WaitGroup  // upgrade goroutines; waited for by runAgents
	checks  *simChecks      // nil without --checks-flip-file (checksagent.go)
}

// simAgent is one simulated agent: its link, run again after an upgrade.
type simAgent struct {
	up   *upgrader
	tls  *tls.Config
	link *link.Link
	chk  *agentChecks // checks (checksagent.go); nil without --checks-flip-file

	mu        sync.Mutex
	version   string
	cancel    context.CancelFunc // ends the current Run of link
	active    map[string]bool    // upgrade runs in progress
	results   map[string]wire.RunResult
	connected chan struct{} // closed at the next welcome; replaced by restart
}

func newSimAgent(up *upgrader, tlsConf *tls.Config, version string) *simAgent {
	return &simAgent{up: up, tls: tlsConf, version: version, connected: make(chan struct{})}
}

func (s *simAgent) currentVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// run runs the link until ctx ends, starting it again (with the version the
// agent has now) whenever an upgrade ends its Run.
func (s *simAgent) run(ctx context.Context) {
	for ctx.Err() == nil {
		lctx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.cancel = cancel
		s.mu.Unlock()
		err := s.link.Run(lctx)
		cancel()
		if err != nil {
			return // the link cannot work at all (an unusable relay URL)
		}
	}
}

// onState wraps the fleet counter: a welcome wakes an upgrade waiting for
// the new version's link.
func (s *simAgent) onState(next func(link.State, error)) func(link.State, error) {
	return func(st link.State, err error) {
		next(st, err)
		if st == link.StateConnected && s.chk != nil {
			s.up.checks.connected(s)
		}
		if st == link.StateConnected {
			s.mu.Lock()
			select {
			case <-s.connected:
			default:
				close(s.connected)
			}
			s.mu.Unlock()
		}
	}
}

// control answers run requests: self-updates as above, the rest with the
// no-op result.
func (s *simAgent) control(env wire.Envelope) error {
	if s.chk != nil {
		if handled, err := s.up.checks.control(s, env); handled {
			return err
		}
	}
	if env.Type != wire.MsgRun {
		return nil // run_ack, run_cancel
	}
	var req wire.RunRequest
	if err := wire.DecodeBody(env, &req); err != nil {
		return err
	}
	if req.Plugin.Name != wire.UpgradePlugin {
		return answerRun(s.link, env)
	}
	s.mu.Lock()
	res, done := s.results[req.RunID]
	busy := s.active[req.RunID]
	if !done && !busy {
		if s.active == nil {
			s.active, s.results = map[string]bool{}, map[string]wire.RunResult{}
		}
		s.active[req.RunID] = true
	}
	s.mu.Unlock()
	switch {
	case done: // sent again after a reconnect: the result again
		return s.send(wire.MsgRunResult, res)
	case busy: // sent again while it runs: the upgrade reports it
		return nil
	}
	s.up.stats.runs.Add(1)
	s.up.wg.Add(1)
	go func() { // owned by the upgrader: ends with its context, waited for by runAgents
		defer s.up.wg.Done()
		s.upgrade(req)
	}()
	return nil
}

func (s *simAgent) send(typ string, body any) error {
	sess := s.link.Session()
	if sess == nil {
		return nil // the relay sends the run again at the next welcome
	}
	return sess.Send(typ, "", body)
}

// finish records and sends the final result of a run.
func (s *simAgent) finish(res wire.RunResult) {
	s.mu.Lock()
	delete(s.active, res.RunID)
	s.results[res.RunID] = res
	s.mu.Unlock()
	_ = s.send(wire.MsgRunResult, res)
}

// upgrade carries out one self-update run.
func (s *simAgent) upgrade(req wire.RunRequest) {
	ctx := s.up.ctx
	from, to := s.currentVersion(), req.Plugin.Version
	started := time.Now().UTC()
	_ = s.send(wire.MsgRunStarted, wire.RunStarted{RunID: req.RunID, Started: started})
	res := wire.RunResult{RunID: req.RunID, Started: started, Version: from}
	if to == from {
		res.State, res.Summary, res.Ended = wire.StateSkipped, "already running "+to, time.Now().UTC()
		res.Details = upgrade.Details{Before: from, After: to}.String()
		s.up.stats.skipped.Add(1)
		s.finish(res)
		return
	}
	who, err := s.fetchVerified(ctx, to)
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the result is never sent, as on an agent that stops
		}
		var te *transportError
		if errors.As(err, &te) {
			s.mu.Lock()
			delete(s.active, req.RunID)
			s.mu.Unlock()
			s.up.stats.notStarted.Add(1)
			s.up.stats.mu.Lock()
			s.up.stats.lastErr = err.Error()
			s.up.stats.mu.Unlock()
			_ = s.send(wire.MsgRunNotStarted, wire.RunNotStarted{RunID: req.RunID, Error: err.Error()})
			return
		}
		res.State, res.Ended = wire.StateFailed, time.Now().UTC()
		res.Error = "refused, nothing changed: " + err.Error()
		s.up.stats.fail(res.Error)
		s.finish(res)
		return
	}
	res.Signer, res.Needed = who.Principal+" "+who.Fingerprint, true
	if req.DryRun {
		res.State, res.Ended = wire.StateSucceeded, time.Now().UTC()
		res.Summary = fmt.Sprintf("would upgrade from %s to %s: the release is signed by %s", from, to, who.Principal)
		s.up.stats.upgraded.Add(1)
		s.finish(res)
		return
	}
	rollback := upgrade.DefaultRollbackAfter
	if v, ok := req.Params[wire.UpgradeRollbackAfter]; ok {
		if d, err := time.ParseDuration(v); err == nil {
			rollback = d
		}
	}

	// The restart: the old link closes, the new version dials at once.
	swapped := time.Now().UTC()
	s.mu.Lock()
	s.version = to
	s.connected = make(chan struct{})
	connected, cancel := s.connected, s.cancel
	s.mu.Unlock()
	cancel()
	select {
	case <-ctx.Done():
		return
	case <-connected:
	}
	now := time.Now().UTC()
	s.up.stats.upgraded.Add(1)
	s.finish(wire.RunResult{
		RunID: req.RunID, State: wire.StateSucceeded, Needed: true, Changed: true, Version: to,
		Summary: fmt.Sprintf("upgraded from %s to %s", from, to),
		Details: upgrade.Details{Before: from, After: to, Reconnected: now.Sub(swapped).Round(time.Millisecond).String(),
			RollbackAfter: rollback.String()}.String(),
		Started: started, Ended: now,
	})
}

// fetchVerified downloads SHA256SUMS and its signature of release to from
// the relay the link uses, verifies them, and checks the platform binary's
// hash while downloading it.
func (s *simAgent) fetchVerified(ctx context.Context, to string) (signature.Signer, error) {
	if s.up.signers == nil {
		return signature.Signer{}, errors.New("no trusted release signers (the load generator's --upgrade-signers is not set)")
	}
	tr := &http.Transport{TLSClientConfig: s.tls, DialContext: s.up.dial, TLSHandshakeTimeout: 30 * time.Second, MaxIdleConns: 2}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	base := s.link.Server() + "/releases/" + to + "/"
	get := func(name string, limit int64, w io.Writer) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+name, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return &transportError{fmt.Errorf("download %s of release %s: %w", name, to, err)}
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return fmt.Errorf("download %s of release %s: relay answered %s: %s", name, to, resp.Status, msg)
		}
		n, err := io.Copy(w, io.LimitReader(resp.Body, limit+1))
		s.up.stats.bytes.Add(n)
		if err != nil {
			return &transportError{fmt.Errorf("download %s of release %s: %w", name, to, err)}
		}
		if n > limit {
			return fmt.Errorf("download %s of release %s: larger than %d bytes", name, to, limit)
		}
		return nil
	}
	var sums, sig bytesBuffer
	if err := get(release.SumsName, release.MaxSumsSize, &sums); err != nil {
		return signature.Signer{}, err
	}
	if err := get(release.SigName, 64<<10, &sig); err != nil {
		return signature.Signer{}, err
	}
	m, who, err := release.Verify(sums, sig, s.up.signers, time.Now())
	if err != nil {
		return signature.Signer{}, err
	}
	name := release.AgentName(to, runtime.GOOS, runtime.GOARCH)
	line, err := m.Lookup(name)
	if err != nil {
		return who, fmt.Errorf("release %s has no agent for %s/%s: %w", to, runtime.GOOS, runtime.GOARCH, err)
	}
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	go func() { // owned by fetchVerified: ends when pw is closed
		err := release.Check(pr, line)
		pr.CloseWithError(err)
		checked <- err
	}()
	err = get(name, upgrade.MaxBinary, pw)
	pw.CloseWithError(err)
	if cerr := <-checked; err == nil {
		err = cerr
	}
	return who, err
}

// transportError: a download failed for a transport reason; nothing ran.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// bytesBuffer is a byte slice that io.Copy appends to.
type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}
