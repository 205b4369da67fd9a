package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/patchbay/patchbay/internal/backoff"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchbay/patchbay/agent/link"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/signature"
	"github.com/spf13/cobra"
)

func agentsCmd() *cobra.Command {
	var o agentsOptions
	cmd := &cobra.Command{
		Use:   "agents --identities FILE --from I --count K --server URL [--source 127.0.0.X]",
		Short: "Hold K simulated agent links until interrupted",
		Long: `Run one agent link (agent/link: WSS, mutual TLS, hello, heartbeats, jittered
reconnect) for each of the identities FILE[I:I+K], dialing from --source, and
print one JSON line per --report interval on stdout:

  {"t":1767225600.123,"connected":4750,"total":4750,"connects":4750,"drops":0,"failures":0,"errors":{}}

t is Unix time in seconds; connected is how many links are up now; connects
counts every welcome received, drops every established link that ended, and
failures every attempt that ended before the welcome, by class in errors
(refused, timeout, reset, eof, closed, emfile, tls, ports, other), with the
latest message in last_error.

Each link reports a small fixed inventory (its host name, this OS and arch)
and uses a --read-buffer byte websocket read buffer. Stops on SIGINT or
SIGTERM (closing every link) or after --max-duration.`,
		Example: `  patchbay-loadgen agents --identities ids.jsonl --from 0 --count 4750 \
      --server https://127.0.0.1:8443 --source 127.0.0.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.identities == "" || o.server == "" {
				return errors.New("--identities and --server are required")
			}
			if o.count <= 0 || o.from < 0 {
				return fmt.Errorf("--from %d --count %d: want --from ≥ 0 and --count ≥ 1", o.from, o.count)
			}
			if o.report <= 0 {
				return errors.New("--report must be positive")
			}
			return runAgents(cmd.Context(), o, os.Stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.identities, "identities", "", "identities file written by enroll")
	f.IntVar(&o.from, "from", 0, "index of the first identity to use")
	f.IntVar(&o.count, "count", 0, "how many links to run")
	f.StringVar(&o.server, "server", "", "relay URL, e.g. https://127.0.0.1:8443; several comma-separated for a tier (each link tries them in turn, the first first)")
	f.StringVar(&o.source, "source", "", "local IP address to dial from (e.g. 127.0.0.2); default: chosen by the kernel")
	f.DurationVar(&o.report, "report", time.Second, "interval between JSON progress lines")
	f.IntVar(&o.readBuffer, "read-buffer", 1024, "websocket read buffer per link, bytes")
	f.IntVar(&o.startRate, "start-rate", 0, "links started per second (0: all at once)")
	f.DurationVar(&o.maxDuration, "max-duration", 2*time.Hour, "stop by itself after this long")
	f.StringVar(&o.checksFlipFile, "checks-flip-file", "", "the agents ask for their policies and report check results every policy interval, all passing but for the share (0-1) of results that change state written in this file, re-read every second (the bench's checks part); unset: no checks")
	f.StringVar(&o.upgradeSigners, "upgrade-signers", "", "allowed_signers file trusted for releases (namespace patchbay-release): the agents carry out self-update runs (patchbay agents upgrade) against it; unset: they refuse them")
	return cmd
}

type agentsOptions struct {
	identities, server, source string
	from, count                int
	report                     time.Duration
	readBuffer                 int
	startRate                  int
	maxDuration                time.Duration
	upgradeSigners             string
	checksFlipFile             string
}

// report is one progress line of the agents subcommand.
type report struct {
	T         float64        `json:"t"`
	Started   float64        `json:"started,omitempty"` // Unix time the first link was started
	Connected int64          `json:"connected"`
	Total     int            `json:"total"`
	Connects  int64          `json:"connects"`
	Drops     int64          `json:"drops"`
	Failures  int64          `json:"failures"`
	Errors    map[string]int `json:"errors"`
	LastError string         `json:"last_error,omitempty"`
	// Examples holds the latest error message of each class in Errors.
	Examples map[string]string `json:"examples,omitempty"`
	Final    bool              `json:"final,omitempty"`
	// Self-update runs (upgradeagent.go): received, upgraded (reconnected
	// on the new version), failed, bytes downloaded from /releases/.
	UpgradeRuns   int64  `json:"upgrade_runs,omitempty"`
	Upgraded      int64  `json:"upgraded,omitempty"`
	UpgradeFailed int64  `json:"upgrade_failed,omitempty"`
	UpgradeBytes  int64  `json:"upgrade_bytes,omitempty"`
	UpgradeRetry  int64  `json:"upgrade_not_started,omitempty"` // run_not_started sent (transport errors)
	UpgradeError  string `json:"upgrade_error,omitempty"`
	// Checks counts check results (checksagent.go); nil without checks.
	Checks *checksCounts `json:"checks,omitempty"`
}

// fleetStats counts link state changes across all links of the process;
// OnState callbacks update it without blocking.
type fleetStats struct {
	started float64 // Unix time; set before the reporter starts

	connected, connects, drops, failures atomic.Int64

	mu       sync.Mutex
	classes  map[string]int
	examples map[string]string // latest message per class
	last     string
}

func (s *fleetStats) failed(err error) {
	s.failures.Add(1)
	c := errorClass(err)
	s.mu.Lock()
	if s.classes == nil {
		s.classes, s.examples = map[string]int{}, map[string]string{}
	}
	s.classes[c]++
	s.examples[c] = err.Error()
	s.last = err.Error()
	s.mu.Unlock()
}

func (s *fleetStats) snapshot(total int) report {
	r := report{
		T:         float64(time.Now().UnixMilli()) / 1000,
		Connected: s.connected.Load(),
		Total:     total,
		Connects:  s.connects.Load(),
		Drops:     s.drops.Load(),
		Failures:  s.failures.Load(),
		Errors:    map[string]int{},
		Examples:  map[string]string{},
	}
	s.mu.Lock()
	for k, v := range s.classes {
		r.Errors[k] = v
		r.Examples[k] = s.examples[k]
	}
	r.LastError = s.last
	s.mu.Unlock()
	return r
}

// errorClass sorts a link error into a few classes for the reports.
func errorClass(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "too many open files"):
		return "emfile"
	case strings.Contains(msg, "refused"):
		return "refused"
	case strings.Contains(msg, "connect: connection reset"):
		// The TCP handshake itself was reset: the connection sat in the
		// accept queue of a listener that closed (a relay being killed).
		// No live relay resets a handshake the kernel completes for it.
		return "connect-reset"
	case strings.Contains(msg, "timeout"), strings.Contains(msg, "deadline"), strings.Contains(msg, "silent"):
		return "timeout"
	case strings.Contains(msg, "reset"), strings.Contains(msg, "broken pipe"):
		return "reset"
	case strings.Contains(msg, "eof"):
		return "eof"
	case strings.Contains(msg, "close"):
		return "closed"
	case strings.Contains(msg, "tls"), strings.Contains(msg, "certificate"):
		return "tls"
	case strings.Contains(msg, "address already in use"), strings.Contains(msg, "assign requested address"):
		return "ports"
	}
	return "other"
}

func runAgents(ctx context.Context, o agentsOptions, out io.Writer) error {
	recs, err := readRecords(o.identities, o.from, o.count)
	if err != nil {
		return err
	}
	dial := (&net.Dialer{Timeout: 30 * time.Second}).DialContext
	if o.source != "" {
		ip := net.ParseIP(o.source)
		if ip == nil {
			return fmt.Errorf("--source %q is not an IP address", o.source)
		}
		dial = (&net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}).DialContext
	}

	var stats fleetStats
	ctx, cancel := context.WithTimeout(ctx, o.maxDuration)
	defer cancel()
	up := &upgrader{dial: dial, ctx: ctx}
	if o.upgradeSigners != "" {
		if up.signers, err = signature.LoadAllowedSigners(o.upgradeSigners); err != nil {
			return fmt.Errorf("--upgrade-signers: %w", err)
		}
	}
	if o.checksFlipFile != "" {
		up.checks = newSimChecks(o.checksFlipFile, len(recs))
	}
	agents := make([]*simAgent, len(recs))
	for i, r := range recs {
		servers := strings.Split(o.server, ",")
		id, err := r.identity(servers[0])
		if err != nil {
			return fmt.Errorf("identity %d (%s): %w", o.from+i, r.AgentID, err)
		}
		if len(servers) > 1 {
			if err := id.SetServers(servers); err != nil {
				return fmt.Errorf("--server %q: %w", o.server, err)
			}
		}
		inv := wire.Inventory{Hostname: r.Hostname, OS: runtime.GOOS, Arch: runtime.GOARCH, Version: "loadgen-" + version}
		a := newSimAgent(up, id.TLSConfig(), inv.Version)
		if up.checks != nil {
			a.chk = &agentChecks{}
			up.checks.agents = append(up.checks.agents, a)
		}
		a.link = link.New(id, link.Options{
			Version: inv.Version,
			Inventory: func(context.Context) wire.Inventory {
				inv := inv
				inv.Version = a.currentVersion()
				return inv
			},
			ReadBufferSize: o.readBuffer,
			NetDialContext: dial,
			OnState:        a.onState(onState(&stats)),
			Control:        a.control,
		})
		agents[i] = a
	}
	recs = nil
	snapshot := func() report {
		r := stats.snapshot(len(agents))
		r.Started = stats.started
		r.UpgradeRuns, r.Upgraded = up.stats.runs.Load(), up.stats.upgraded.Load()
		r.UpgradeFailed, r.UpgradeBytes = up.stats.failed.Load(), up.stats.bytes.Load()
		r.UpgradeRetry = up.stats.notStarted.Load()
		up.stats.mu.Lock()
		r.UpgradeError = up.stats.lastErr
		up.stats.mu.Unlock()
		if up.checks != nil {
			r.Checks = up.checks.counts()
		}
		return r
	}

	enc := json.NewEncoder(out)
	stats.started = float64(time.Now().UnixMilli()) / 1000
	enc.Encode(snapshot())
	var wg sync.WaitGroup
	reportDone := make(chan struct{})
	go func() {
		defer close(reportDone)
		t := time.NewTicker(o.report)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				enc.Encode(snapshot())
			}
		}
	}()

	var gap time.Duration
	if o.startRate > 0 {
		gap = time.Second / time.Duration(o.startRate)
	}
	for _, a := range agents {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.run(ctx)
		}()
		if gap > 0 {
			backoff.Sleep(ctx, gap)
		}
	}
	if up.checks != nil {
		up.checks.run(ctx)
	}
	<-ctx.Done()
	<-reportDone

	// Run closes each link (close code 1001) and returns; bound the wait.
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		up.wg.Wait()
		if up.checks != nil {
			up.checks.wg.Wait()
		}
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		fmt.Fprintln(os.Stderr, "patchbay-loadgen agents: links still closing after 20 s; exiting anyway")
	}
	final := snapshot()
	final.Final = true
	return enc.Encode(final)
}

// onState returns a link's OnState callback. It runs on that link's Run
// goroutine only, so the previous state lives in the closure.
func onState(s *fleetStats) func(link.State, error) {
	up := false
	return func(st link.State, err error) {
		now := st == link.StateConnected
		switch {
		case now && !up:
			s.connected.Add(1)
			s.connects.Add(1)
		case !now && up:
			s.connected.Add(-1)
		}
		if st == link.StateWaiting {
			if up {
				s.drops.Add(1) // an established link ended
			} else if err != nil {
				s.failed(err) // an attempt that never got the welcome
			}
		}
		up = now
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// answerRun is a simulated agent's whole job runner: it answers every run
// request at once with a succeeded no-op result, so the relay's dispatch and
// result path is measured without any plugin work.
func answerRun(l *link.Link, env wire.Envelope) error {
	if env.Type != wire.MsgRun {
		return nil // run_ack, run_cancel
	}
	var req wire.RunRequest
	if err := wire.DecodeBody(env, &req); err != nil {
		return err
	}
	sess := l.Session()
	if sess == nil {
		return nil
	}
	now := time.Now().UTC()
	return sess.Send(wire.MsgRunResult, "", wire.RunResult{RunID: req.RunID, State: wire.StateSucceeded,
		Needed: true, Summary: "no-op (load generator)", Version: req.Plugin.Version, Started: now, Ended: now})
}
