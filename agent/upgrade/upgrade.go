// Package upgrade is the agent's side of a signed self-update (patchbay
// agents upgrade): a run of the reserved plugin wire.UpgradePlugin.
//
// The agent trusts nothing the relay says about the release. It downloads
// SHA256SUMS and SHA256SUMS.sig of the version from the relay it is linked
// to, verifies the signature against its OWN DATA/allowed_signers for
// namespace patchbay-release (internal/release), downloads its platform's
// binary, checks it against the manifest, writes it next to its own
// executable and runs "NEW version", which must print the version asked
// for. Only then does anything change:
//
//  1. the pending upgrade (from, to, executable, deadline) is journaled
//     with the run (agent/journal Upgrade), atomically, 0600;
//  2. the running binary is copied to EXE.prev and the new one renamed over
//     EXE (on Windows, where a running executable can be renamed but not
//     overwritten: EXE renamed to EXE.prev, then the new one to EXE);
//  3. the agent stops and restarts (Config.Restart; see cmd/patchbay-agent:
//     exit code ExitRestart under a service manager, else re-exec).
//
// The new version, at start (Resume), finds the journaled upgrade. Once its
// link is up (Connected) it finishes the run succeeded with the versions
// before and after; the worker delivers the result until the relay
// acknowledges it, and the journal keeps the first result, so it is
// reported exactly once. Each start of the new version is counted in the
// journal first thing (CountStart): a version that crashes before it
// connects is rolled back at its start after MaxStarts starts ("rolled back:
// V crashed N times before it connected"), instead of crash-looping under
// its service manager. If it has not connected by the deadline (the window
// from its first start, not from each start), it marks
// the upgrade rolled back in the journal, renames EXE.prev back over EXE
// and restarts: the old version then finishes the run failed ("rolled
// back: V did not reconnect within T"). A redelivered run is never run
// twice (the journal has it), and a restart at any point resumes from the
// journal.
//
// A bad signature, an untrusted signer, a hash mismatch or a binary that
// does not run ends the run failed with the reason, and nothing on disk
// changes (the downloaded file is removed).
package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/agent/journal"
	"github.com/patchbay/patchbay/internal/release"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/signature"
)

// ExitRestart is the exit status with which the agent stops to be restarted
// by its service manager after an upgrade or a rollback (systemd
// Restart=always or on-failure, launchd KeepAlive, Windows service
// recovery all restart on it). EX_TEMPFAIL.
const ExitRestart = 75

// Defaults and limits.
const (
	DefaultRollbackAfter = 5 * time.Minute
	MinRollbackAfter     = time.Second
	MaxRollbackAfter     = 24 * time.Hour
	MaxBinary            = 256 << 20 // an agent binary
	maxSig               = 64 << 10
	versionTimeout       = 30 * time.Second // "NEW version" must answer within this
)

// Getter downloads path from the relay the agent is linked to, at most
// limit bytes (worker.Fetcher.Get). A *worker.StatusError-like error with a
// status says the relay answered; other errors are transport errors.
type Getter func(ctx context.Context, path string, limit int64) ([]byte, error)

// Config configures an Upgrader. Every field but Log and Now is required.
type Config struct {
	Journal *journal.Journal
	// Version is this agent's version, as "patchbay-agent version" prints it.
	Version string
	// Exe is the path of the running executable, the one to replace.
	Exe string
	// Signers is the path of DATA/allowed_signers; it is read for every run.
	Signers string
	Get     Getter
	// IsStatus reports whether a Get error is the relay's answer (the
	// release is not there) rather than a transport error (try later).
	IsStatus func(error) bool
	// Restart asks the agent to stop and restart into Exe; the upgrader
	// then waits for the context given to Resume to end.
	Restart func()
	Log     zerolog.Logger
	Now     func() time.Time
}

// Upgrader runs self-update runs and resumes pending ones at start.
// Ownership: Resume starts at most one goroutine (the rollback timer);
// Close stops it and waits for it.
type Upgrader struct {
	cfg Config

	busy sync.Mutex // one upgrade run at a time

	mu        sync.Mutex
	ctx       context.Context // the agent's, from Resume
	pending   *journal.Entry  // an upgrade to this version awaiting the link
	restarted bool            // Restart was called
	connected chan struct{}   // closed by Connected once pending is confirmed
	stop      context.CancelFunc
	done      chan struct{}
}

// New returns an upgrader.
func New(cfg Config) *Upgrader {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Upgrader{cfg: cfg, ctx: context.Background(), connected: make(chan struct{})}
}

// refused is a run that changed nothing, with the reason.
func refused(res wire.RunResult, now time.Time, format string, a ...any) wire.RunResult {
	res.State, res.Error, res.Ended = wire.StateFailed, "refused, nothing changed: "+fmt.Sprintf(format, a...), now
	if len(res.Error) > 16<<10 {
		res.Error = res.Error[:16<<10]
	}
	return res
}

// Run carries out one self-update run. It returns the result of a run that
// changed nothing; after the swap it calls Restart and returns only once the
// agent's context has ended (the run is finished by the restarted agent).
func (u *Upgrader) Run(ctx context.Context, req wire.RunRequest) wire.RunResult {
	now := u.cfg.Now().UTC()
	to := req.Plugin.Version
	res := wire.RunResult{RunID: req.RunID, Started: now, Version: u.cfg.Version}
	log := u.cfg.Log.With().Str("run_id", req.RunID).Str("from", u.cfg.Version).Str("to", to).Logger()
	if err := release.CheckVersion(to); err != nil {
		return refused(res, now, "%v", err)
	}
	rollback := DefaultRollbackAfter
	if s, ok := req.Params[wire.UpgradeRollbackAfter]; ok {
		d, err := time.ParseDuration(s)
		if err != nil || d < MinRollbackAfter || d > MaxRollbackAfter {
			return refused(res, now, "parameter %s=%q: want a duration from %v to %v", wire.UpgradeRollbackAfter, s, MinRollbackAfter, MaxRollbackAfter)
		}
		rollback = d
	}
	if to == u.cfg.Version {
		res.State, res.Needed, res.Ended = wire.StateSkipped, false, u.cfg.Now().UTC()
		res.Summary = "already running " + to
		res.Details = Details{Before: u.cfg.Version, After: to}.String()
		return res
	}
	if !u.busy.TryLock() {
		return refused(res, now, "another upgrade of this agent is in progress")
	}
	defer u.busy.Unlock()

	log.Info().Msg("upgrade: fetching and verifying the release")
	tmp, signer, err := u.fetchVerified(ctx, to)
	if err != nil {
		var ne *notStarted
		if errors.As(err, &ne) {
			res.State, res.Error, res.Ended = wire.StateNotStarted, err.Error(), u.cfg.Now().UTC()
			return res
		}
		log.Warn().Err(err).Msg("upgrade refused")
		return refused(res, u.cfg.Now().UTC(), "%v", err)
	}
	res.Signer = signer.Principal + " " + signer.Fingerprint
	res.Needed = true
	if req.DryRun {
		os.Remove(tmp)
		res.State, res.Ended = wire.StateSucceeded, u.cfg.Now().UTC()
		res.Summary = fmt.Sprintf("would upgrade from %s to %s: the release is signed by %s and its binary runs", u.cfg.Version, to, signer.Principal)
		return res
	}

	swapped := u.cfg.Now().UTC()
	rec := journal.Upgrade{From: u.cfg.Version, To: to, Exe: u.cfg.Exe, Swapped: swapped, Deadline: swapped.Add(rollback)}
	if _, err := u.cfg.Journal.Upgrade(req.RunID, rec, swapped); err != nil {
		os.Remove(tmp)
		return refused(res, u.cfg.Now().UTC(), "record the pending upgrade: %v", err)
	}
	if err := swap(u.cfg.Exe, tmp); err != nil {
		os.Remove(tmp)
		log.Error().Err(err).Msg("upgrade: swap failed")
		res.State, res.Ended = wire.StateFailed, u.cfg.Now().UTC()
		res.Error = fmt.Sprintf("install %s over %s: %v (the previous binary is still in place)", to, u.cfg.Exe, err)
		return res
	}
	log.Info().Str("exe", u.cfg.Exe).Dur("rollback_after", rollback).Msg("upgrade: new binary installed; restarting into it")
	u.restart()
	<-u.agentCtx().Done()
	res.State, res.Error = wire.StateFailed, "the agent is restarting into "+to // never reported: the worker drops results at shutdown
	return res
}

// notStarted: the release could not be downloaded for a transport reason;
// nothing ran and the relay sends the run again later.
type notStarted struct{ err error }

func (e *notStarted) Error() string { return e.err.Error() }
func (e *notStarted) Unwrap() error { return e.err }

// fetchVerified downloads and checks release to, and returns the path of
// the new binary (0755, next to Exe) whose "version" printed to.
func (u *Upgrader) fetchVerified(ctx context.Context, to string) (string, signature.Signer, error) {
	get := func(name string, limit int64) ([]byte, error) {
		b, err := u.cfg.Get(ctx, "/releases/"+to+"/"+name, limit)
		if err == nil {
			return b, nil
		}
		if u.cfg.IsStatus != nil && u.cfg.IsStatus(err) {
			return nil, fmt.Errorf("download %s of release %s: %w (is the release in the relay's --releases directory?)", name, to, err)
		}
		return nil, &notStarted{fmt.Errorf("download %s of release %s: %w", name, to, err)}
	}
	sums, err := get(release.SumsName, release.MaxSumsSize)
	if err != nil {
		return "", signature.Signer{}, err
	}
	sig, err := get(release.SigName, maxSig)
	if err != nil {
		return "", signature.Signer{}, err
	}
	signers, err := signature.LoadAllowedSigners(u.cfg.Signers)
	if errors.Is(err, os.ErrNotExist) {
		return "", signature.Signer{}, fmt.Errorf("no trusted release signers: %s does not exist (add the organisation's release key with namespaces=\"patchbay-release\")", u.cfg.Signers)
	}
	if err != nil {
		return "", signature.Signer{}, fmt.Errorf("trusted signers: %w", err)
	}
	m, who, err := release.Verify(sums, sig, signers, u.cfg.Now())
	if err != nil {
		return "", signature.Signer{}, fmt.Errorf("%w (trusted release signers are the lines of %s that allow namespace %s)", err, u.cfg.Signers, signature.ReleaseNamespace)
	}
	name := release.AgentName(to, runtime.GOOS, runtime.GOARCH)
	line, err := m.Lookup(name)
	if err != nil {
		return "", who, fmt.Errorf("release %s has no agent for %s/%s: %w", to, runtime.GOOS, runtime.GOARCH, err)
	}
	bin, err := get(name, MaxBinary)
	if err != nil {
		return "", who, err
	}
	if err := release.Check(bytes.NewReader(bin), line); err != nil {
		return "", who, err
	}
	tmp, err := writeTemp(filepath.Dir(u.cfg.Exe), bin)
	if err != nil {
		return "", who, err
	}
	if err := checkRuns(ctx, tmp, to); err != nil {
		os.Remove(tmp)
		return "", who, err
	}
	return tmp, who, nil
}

// writeTemp writes the new binary next to the executable (same file
// system, so the swap is a rename), 0755, synced.
func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".patchbay-agent.upgrade-*"+exeSuffix())
	if err != nil {
		return "", fmt.Errorf("write the new binary next to the agent's executable: %w", err)
	}
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Chmod(0o755)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write the new binary %s: %w", f.Name(), werr)
	}
	return f.Name(), nil
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// checkRuns runs "bin version" and checks that it names version want.
func checkRuns(ctx context.Context, bin, want string) error {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = []string{"LANG=C.UTF-8"}
	if runtime.GOOS == "windows" {
		cmd.Env = append(cmd.Env, "SystemRoot="+os.Getenv("SystemRoot")) // Windows programs may not load without it
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return fmt.Errorf("the new binary does not run (\"%s version\": %v)", filepath.Base(bin), err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "patchbay-agent" || f[1] != want {
		return fmt.Errorf("the new binary says %q to \"version\", want \"patchbay-agent %s ...\"", strings.TrimSpace(string(out)), want)
	}
	return nil
}

func (u *Upgrader) agentCtx() context.Context {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ctx
}

// restart calls Restart once.
func (u *Upgrader) restart() {
	u.mu.Lock()
	again := u.restarted
	u.restarted = true
	u.mu.Unlock()
	if !again {
		u.cfg.Restart()
	}
}
