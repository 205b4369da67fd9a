package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/checks"
	"github.com/patchbay/patchbay/agent/consent"
	"github.com/patchbay/patchbay/agent/identity"
	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/agent/link"
	"github.com/patchbay/patchbay/agent/runner"
	"github.com/patchbay/patchbay/agent/session"
	"github.com/patchbay/patchbay/agent/trust"
	"github.com/patchbay/patchbay/agent/upgrade"
	"github.com/patchbay/patchbay/agent/worker"
	"github.com/patchbay/patchbay/internal/wire"
)

// errRestart: serve stopped because a self-update (or its rollback) swapped
// the binary; the caller restarts the agent (restart.go).
var errRestart = errors.New("restart into the new agent binary")

// serve runs the agent until ctx ends: the link to the relay and the worker
// that executes runs, wired together. exe is the agent's executable, which
// a self-update replaces; serve returns errRestart after one.
func serve(ctx context.Context, id *identity.Identity, exe string, sf *sessionFlags, policy consent.Policy, log, alog zerolog.Logger) error {
	j, err := journal.Open(filepath.Join(id.Dir, "journal"))
	if err != nil {
		return err
	}
	var l *link.Link
	// Artifacts come from the relay the link is on (any relay of a tier).
	fetch := tierFetcher{server: func() string { return l.Server() }, by: map[string]*worker.Fetcher{}}
	for _, s := range id.Servers {
		fetch.by[s] = worker.NewFetcher(s, id.TLSConfigFor(s))
	}
	r, err := runner.New(runner.Config{
		Dir:   filepath.Join(id.Dir, "runner"),
		Fetch: fetch,
		Trust: func() (runner.Trust, error) { return runner.LoadTrust(trust.Path(id.Dir)) },
		Log:   alog,
	})
	if err != nil {
		return err
	}
	defer r.Close() // the sealed executables
	send := func(typ string, body any) error {
		s := l.Session()
		if s == nil {
			return errors.New("offline")
		}
		return s.Send(typ, "", body)
	}
	// Interactive sessions: the SSH keys, the endpoint's consent policy, the
	// session manager and the local control socket.
	keys, err := session.OpenKeyStore(id.Dir)
	if err != nil {
		return err
	}
	cred, err := sf.credential()
	if err != nil {
		return err
	}
	desk, err := sf.desktop.config(id.Dir)
	if err != nil {
		return err
	}
	var mgr *session.Manager
	slog := alog.With().Str("component", "sessions").Logger()
	cons, err := consent.New(policy, liveSessions{&mgr}, slog)
	if err != nil {
		return err
	}
	defer cons.Close()
	// Self-updates: runs of the reserved plugin wire.UpgradePlugin.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var restart atomic.Bool
	up := upgrade.New(upgrade.Config{
		Journal: j, Version: fullVersion(), Exe: exe, Signers: trust.Path(id.Dir),
		Get: func(ctx context.Context, path string, limit int64) ([]byte, error) {
			return fetch.by[fetch.server()].Get(ctx, path, limit)
		},
		IsStatus: func(err error) bool { var se *worker.StatusError; return errors.As(err, &se) },
		Restart:  func() { restart.Store(true); cancel() },
		Log:      alog.With().Str("component", "upgrade").Logger(),
	})
	defer up.Close()
	if err := up.Resume(wctx); err != nil {
		return err
	}
	// Policies: checks on their own schedule, self-heals as ordinary runs.
	chk, err := checks.New(checks.Config{Dir: filepath.Join(id.Dir, "checks"), Send: send,
		Check: checks.PluginCheck(r), Log: alog.With().Str("component", "checks").Logger()})
	if err != nil {
		return err
	}
	// The worker asks the same consent policy before fixes that need it.
	w := worker.New(worker.Config{Journal: j, Runner: fixNotifier{next: upgradeRouter{up: up, next: r}, chk: chk}, Consent: cons, AgentID: id.AgentID, Hostname: id.Hostname, Cert: id.Cert,
		Send: send, Log: alog})
	if u := cons.URL(); u != "" {
		slog.Info().Str("url", u).Msg("consent page for the person at this machine")
	}
	mgr = session.New(session.Config{
		AgentID: id.AgentID, Hostname: id.Hostname, Consent: cons, Mode: policy.Mode,
		Keys: keys.Keys, Send: send, Cert: id.Cert,
		Open: func(ctx context.Context, kind string) (io.WriteCloser, error) {
			s := l.Session()
			if s == nil {
				return nil, errors.New("offline")
			}
			return s.Open(ctx, kind)
		},
		Shell: sf.shell, Credential: cred, IdleTimeout: orNone(sf.idle), MaxDuration: orNone(sf.maxDur), Desktop: desk, Log: slog,
	})
	defer mgr.Close()
	ctl, err := session.ListenControl(filepath.Join(id.Dir, session.SocketFile), mgr, cons, slog)
	if err != nil {
		return err
	}
	defer ctl.Close()
	renewKeys := func() {
		if !keys.NeedsRenewal(time.Now()) {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		server := l.Server()
		if err := keys.Renew(rctx, server, id.TLSConfigFor(server)); err != nil {
			slog.Error().Err(err).Msg("SSH host certificate: sessions are refused until this works")
		} else {
			slog.Info().Msg("SSH host certificate renewed")
		}
	}

	// Inventory beyond the hello (issue 17): software when it changed, a
	// full round every 6 hours and when the relay asks.
	rep := link.NewReporter(link.ReporterConfig{
		Send: send,
		Inventory: func(ctx context.Context) wire.Inventory {
			inv := link.CollectInventory(ctx, fullVersion(), id.Tags)
			if id.Hostname != "" {
				inv.Hostname = id.Hostname
			}
			return inv
		},
		StateFile: filepath.Join(id.Dir, "inventory-software.hash"),
		Log:       alog.With().Str("component", "inventory").Logger(),
	})
	l = link.New(id, link.Options{
		Version: fullVersion(),
		Logger:  log, // link adds agent_id itself
		Control: func(env wire.Envelope) error {
			if handled, err := mgr.Control(env); handled {
				return err
			}
			if handled, err := rep.Control(env); handled {
				return err
			}
			if handled, err := chk.Control(env); handled {
				return err
			}
			return w.Control(env)
		},
		Handle: mgr.HandleStream,
		OnState: func(s link.State, _ error) {
			if s == link.StateConnected {
				up.Connected() // a pending self-update to this version succeeded: its result goes out now
				w.Connected()
				rep.Connected()
				chk.Connected()
				go renewKeys()
			}
		},
	})
	var wg sync.WaitGroup
	var werr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		werr = w.Run(wctx)
		cancel() // a worker that cannot start stops the agent
	}()
	go func() {
		defer wg.Done()
		rep.Run(wctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		chk.Run(wctx)
	}()
	lerr := l.Run(wctx)
	cancel()
	wg.Wait()
	if restart.Load() {
		return errRestart
	}
	return errors.Join(lerr, werr)
}

// upgradeRouter sends self-update runs to the upgrader, the rest to the
// plugin runner.
type upgradeRouter struct {
	up   *upgrade.Upgrader
	next worker.Runner
}

func (u upgradeRouter) Run(ctx context.Context, req wire.RunRequest, hooks runner.Hooks) wire.RunResult {
	if req.Plugin.Name == wire.UpgradePlugin {
		return u.up.Run(ctx, req)
	}
	return u.next.Run(ctx, req, hooks)
}

// fixNotifier tells the checks engine when a run ended, so that a
// self-heal's check runs again right after its fix.
type fixNotifier struct {
	next worker.Runner
	chk  *checks.Engine
}

func (f fixNotifier) Run(ctx context.Context, req wire.RunRequest, hooks runner.Hooks) wire.RunResult {
	res := f.next.Run(ctx, req, hooks)
	f.chk.FixDone(req.JobID)
	return res
}

// tierFetcher downloads artifacts from the relay the link is connected to:
// with several relays (a tier), the one that is up.
type tierFetcher struct {
	server func() string
	by     map[string]*worker.Fetcher // one per relay address, made before the link starts
}

func (f tierFetcher) Fetch(ctx context.Context, sha string) ([]byte, []byte, error) {
	return f.by[f.server()].Fetch(ctx, sha)
}
