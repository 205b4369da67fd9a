// Package runner runs one remediation plugin for the agent: it fetches the
// plugin (and, for the script plugin, the script) from the relay's catalog
// by SHA-256, checks the signature of the exact bytes against the agent's
// own allowed signers, launches the verified bytes as a go-plugin
// subprocess, validates parameters against the plugin's manifest, calls
// Check and Fix with the run's deadline, and kills the plugin's whole
// process group when the run ends, however it ends.
//
// What the relay sends is never trusted: a file whose hash differs from the
// request, an unsigned file, a signature that does not verify over the bytes,
// or one by a key outside DATA/allowed_signers is refused before anything
// executes, and the result says why. A plugin version lower than one this
// agent already ran is refused unless the job allows a downgrade.
//
// On Linux the verified bytes are copied into a sealed memfd and executed
// from /proc/self/fd/N, so nothing can change them between the check and the
// exec; elsewhere they are copied into the runner's private 0700 cache and
// go-plugin's SecureConfig hashes that copy again just before it starts it.
package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/sdk"
	"github.com/patchbay/patchbay/plugins/signature"
)

// Defaults for Config fields left zero.
const (
	DefaultMaxOutput    = 1 << 20
	DefaultStartTimeout = 30 * time.Second
)

// Fetcher downloads a catalog file and its signature by SHA-256.
type Fetcher interface {
	Fetch(ctx context.Context, sha256 string) (content, sig []byte, err error)
}

// Verifier checks a signature against trusted signers;
// *signature.AllowedSigners is one.
type Verifier interface {
	Verify(data io.Reader, armoredSig []byte, now time.Time) (signature.Signer, error)
}

// Trust is the agent's trusted signers at one moment: the verifier and a
// digest of the file it was parsed from (the verification cache's key, so an
// edit of the file invalidates every cached decision at once).
type Trust struct {
	Verifier Verifier
	Digest   string
}

// Config configures a Runner. Dir, Fetch and Trust are required.
type Config struct {
	// Dir holds the runner's state: cache/ (verified downloads, 0700) and
	// versions.json (the highest version run of each plugin).
	Dir string
	// Fetch downloads files the cache lacks.
	Fetch Fetcher
	// Trust returns the trusted signers; it is called for every run, so an
	// edit of the allowed_signers file applies to the next run.
	Trust func() (Trust, error)
	// MaxOutput caps the bytes of output one run may produce; a plugin that
	// exceeds it is killed and the run fails. Default 1 MiB.
	MaxOutput int
	// StartTimeout bounds the plugin's start-up handshake. Default 30s.
	StartTimeout time.Duration
	// Env is the plugin's environment (KEY=VALUE). Default: a minimal PATH,
	// LANG=C.UTF-8 and TMPDIR; the agent's own environment is not passed on.
	Env []string
	Log zerolog.Logger
	// Now returns the time (tests).
	Now func() time.Time
}

// Runner runs plugins. It is safe for concurrent use.
type Runner struct {
	cfg      Config
	cacheDir string
	mu       sync.Mutex // guards versions.json

	vmu      sync.Mutex
	verdicts map[string]verdict // signature decisions by file, signature and trust digest
	execs    *execCache         // sealed executables by SHA-256 (Linux)
}

// Close releases the cached executables.
func (r *Runner) Close() { r.execs.close() }

// New prepares the runner's directories.
func New(cfg Config) (*Runner, error) {
	if cfg.Dir == "" || cfg.Fetch == nil || cfg.Trust == nil {
		return nil, errors.New("runner: Dir, Fetch and Trust are required")
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = DefaultMaxOutput
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "TMPDIR=" + os.TempDir()}
	}
	r := &Runner{cfg: cfg, cacheDir: filepath.Join(cfg.Dir, "cache"), verdicts: map[string]verdict{}, execs: newExecCache()}
	for _, d := range []string{cfg.Dir, r.cacheDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
	}
	return r, nil
}

// killGrace is how long a cancelled or timed-out plugin gets before its
// process group is killed.
const killGrace = time.Second

// ErrRefused wraps every reason a run was refused before anything executed.
var ErrRefused = errors.New("refused")

func refusedf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, a...))
}

// verified is a file whose bytes match the requested hash and carry a
// trusted signature. data is nil when the bytes were not needed (an
// executable already sealed in the exec cache).
type verified struct {
	ref    wire.ArtifactRef
	data   []byte
	signer signature.Signer
}

// Run executes req and returns its result; it never returns without one.
// A run whose plugin or script could not be downloaded from the relay ends
// in wire.StateNotStarted (nothing ran; it may be tried again), never failed.
// Cancelling ctx cancels the run (state cancelled). When the plugin or the
// script needs consent, gate is asked before Fix (never before Check, never
// for a dry run); a fix not approved ends the run skipped, with the decision
// in RunResult.Consent. A nil gate approves nothing.
//
// After a Fix that succeeded with reboot_required, when the plugin or script
// declares may_reboot, hooks.Reboot decides the restart (after the plugin
// has stopped) and its outcome is added to RunResult.Details; without the
// declaration, or without the hook, the details say the restart is pending.
func (r *Runner) Run(ctx context.Context, req wire.RunRequest, hooks Hooks) wire.RunResult {
	res := wire.RunResult{RunID: req.RunID, Started: r.cfg.Now().UTC(), Version: req.Plugin.Version}
	log := r.cfg.Log.With().Str("run_id", req.RunID).Str("plugin", req.Plugin.Name).Logger()
	var reboot *Fix // set by run when the fix may reboot
	err := r.run(ctx, req, hooks.Consent, &res, &reboot, log)
	if err == nil && res.State == wire.StateSucceeded && res.RebootRequired {
		var line string
		switch {
		case reboot == nil:
			line = "restart pending: the fix requires a restart but does not declare may_reboot, so the agent does not restart the machine"
		case hooks.Reboot == nil:
			line = "restart pending: this agent has no restart policy"
		default:
			res.Ended = r.cfg.Now().UTC()
			line = hooks.Reboot(ctx, *reboot, res)
		}
		res.Details = addLine(res.Details, line)
		log.Info().Str("restart", line).Msg("the fix requires a restart")
	}
	res.Ended = r.cfg.Now().UTC()
	var dl *downloadError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		res.State, res.Error = wire.StateCancelled, "cancelled while running"
	case errors.As(err, &dl):
		res.State, res.Error = wire.StateNotStarted, err.Error() // nothing ran: the caller may try again
	default:
		res.State, res.Error = wire.StateFailed, err.Error()
	}
	if len(res.Error) > 16<<10 {
		res.Error = res.Error[:16<<10]
	}
	log.Info().Str("state", res.State).Str("summary", res.Summary).Str("error", res.Error).Msg("run ended")
	return res
}

func (r *Runner) run(ctx context.Context, req wire.RunRequest, gate Gate, res *wire.RunResult, reboot **Fix, log zerolog.Logger) error {
	trust, err := r.cfg.Trust()
	if err != nil {
		return refusedf("trusted signers: %v", err)
	}
	plug, err := r.verify(ctx, trust, req.Plugin, "plugin", false)
	if err != nil {
		return err
	}
	res.Signer = plug.signer.Principal + " " + plug.signer.Fingerprint
	if err := r.checkDowngrade(req.Plugin, req.AllowDowngrade); err != nil {
		return err
	}
	var att *sdk.Attachment
	var script *sdk.Manifest // the script's header manifest
	params := req.Params
	if req.Script != nil {
		scr, err := r.verify(ctx, trust, *req.Script, "script", true)
		if err != nil {
			return err
		}
		att, params, script, err = r.prepareScript(scr, req.Params)
		if err != nil {
			return err
		}
		res.Signer += "; script " + scr.signer.Principal + " " + scr.signer.Fingerprint
	}

	ctx, cancel := context.WithTimeout(ctx, time.Duration(req.Timeout))
	defer cancel()
	p, err := r.launch(ctx, plug, log)
	if err != nil {
		return err
	}
	defer func() {
		if ctx.Err() != nil {
			// Cancelled or timed out: the plugin has the cancellation and a
			// moment to end what it started outside its own process group
			// (the script plugin runs scripts in a group of their own).
			time.Sleep(killGrace)
		}
		p.stop()
	}()

	m, err := p.client.Manifest(ctx)
	if err != nil {
		return p.explain(ctx, req, err)
	}
	if m.Name != req.Plugin.Name || m.Version != req.Plugin.Version {
		return refusedf("the plugin says it is %s %s but the catalog entry is %s %s", m.Name, m.Version, req.Plugin.Name, req.Plugin.Version)
	}
	if !m.Supports(runtime.GOOS) {
		return refusedf("%s does not support %s (it supports %s)", m.Name, runtime.GOOS, strings.Join(m.OS, ", "))
	}
	valid, err := m.ValidateParams(params)
	if err != nil {
		return refusedf("%v", err)
	}
	if err := r.recordVersion(m); err != nil {
		return err
	}
	sreq := sdk.Request{Params: valid, Attachment: att}

	chk, err := p.client.Check(ctx, sreq)
	if err != nil {
		return p.explain(ctx, req, err)
	}
	res.Needed, res.Summary, res.Details = chk.Needed, chk.Summary, chk.Details
	if !chk.Needed {
		res.State = wire.StateSkipped
		return nil
	}
	if req.DryRun {
		res.State = wire.StateSucceeded // the check ran; Needed says a fix would change something
		return nil
	}
	if fix, ask := consentFix(m, script, chk.Summary); ask {
		log.Info().Str("fix", fix.String()).Msg("the fix needs consent; asking")
		c := askConsent(ctx, gate, fix, r.cfg.Now())
		res.Consent = &c
		if !c.Approved {
			res.State, res.Summary = wire.StateSkipped, notConsented(c)
			return nil
		}
	}
	out := newTail(wire.MaxOutputBytes, r.cfg.MaxOutput)
	fix, err := p.client.Fix(ctx, sreq, out.add)
	res.Output = out.String()
	if err != nil {
		return p.explain(ctx, req, err)
	}
	res.State = wire.StateSucceeded
	res.Changed, res.RebootRequired = fix.Changed, fix.RebootRequired
	res.Summary, res.Details = fix.Summary, fix.Details
	if f, may := rebootFix(m, script, chk.Summary); may && fix.RebootRequired {
		*reboot = &f
	}
	return nil
}

// rebootFix reports whether the fix may restart the machine (the plugin's
// manifest, or for a script its header, declares may_reboot) and describes
// it. A script runs inside the script plugin, whose own manifest says
// nothing about the script: the script's header decides.
func rebootFix(m sdk.Manifest, script *sdk.Manifest, check string) (Fix, bool) {
	if script != nil {
		s := *script
		return Fix{Kind: "script", Name: s.Name, Version: s.Version, Description: s.Description, Check: check}, s.MayReboot
	}
	return Fix{Kind: "plugin", Name: m.Name, Version: m.Version, Description: m.Description, Check: check}, m.MayReboot
}

// addLine appends line to details on a line of its own.
// The result is cut (from the front of details) to what the wire accepts.
func addLine(details, line string) string {
	if details == "" {
		return line
	}
	details = strings.TrimRight(details, "\n")
	if room := maxDetails - len(line) - 1; len(details) > room {
		details = strings.ToValidUTF8(details[:max(room, 0)], "")
	}
	return details + "\n" + line
}

// maxDetails is the most RunResult.Details may hold on the wire.
const maxDetails = 64 << 10

// consentFix reports whether the fix needs consent (the plugin's manifest or
// the script's header says needs_consent) and describes it.
func consentFix(m sdk.Manifest, script *sdk.Manifest, check string) (Fix, bool) {
	if script != nil {
		s := *script
		return Fix{Kind: "script", Name: s.Name, Version: s.Version, Description: s.Description, Check: check},
			s.NeedsConsent || m.NeedsConsent
	}
	return Fix{Kind: "plugin", Name: m.Name, Version: m.Version, Description: m.Description, Check: check}, m.NeedsConsent
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// versionsFile records the highest version of each plugin this agent ran.
const versionsFile = "versions.json"

func (r *Runner) loadVersions() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(r.cfg.Dir, versionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", versionsFile, err)
	}
	v := map[string]string{}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s is corrupt (delete it to forget downgrade protection): %w", filepath.Join(r.cfg.Dir, versionsFile), err)
	}
	return v, nil
}

func (r *Runner) checkDowngrade(ref wire.ArtifactRef, allow bool) error {
	want, err := sdk.ParseVersion(ref.Version)
	if err != nil {
		return refusedf("plugin %s: %v", ref.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	vs, err := r.loadVersions()
	if err != nil {
		return err
	}
	prev, ok := vs[ref.Name]
	if !ok || allow {
		return nil
	}
	pv, err := sdk.ParseVersion(prev)
	if err == nil && want.Compare(pv) < 0 {
		return refusedf("plugin %s %s is older than %s, which this agent already ran: run the job with --allow-downgrade if that is intended", ref.Name, ref.Version, prev)
	}
	return nil
}

func (r *Runner) recordVersion(m sdk.Manifest) error {
	v, err := sdk.ParseVersion(m.Version)
	if err != nil {
		return refusedf("plugin %s: %v", m.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	vs, err := r.loadVersions()
	if err != nil {
		return err
	}
	if prev, ok := vs[m.Name]; ok {
		if pv, err := sdk.ParseVersion(prev); err == nil && pv.Compare(v) >= 0 {
			return nil
		}
	}
	vs[m.Name] = m.Version
	b, _ := json.Marshal(vs)
	return atomicfile.Write(filepath.Join(r.cfg.Dir, versionsFile), b, 0o600)
}

// tail keeps the last max bytes of output lines and fails once more than
// limit bytes have been seen.
type tail struct {
	max, limit int
	total      int
	buf        []byte
}

func newTail(max, limit int) *tail { return &tail{max: max, limit: limit} }

var errOutputCap = errors.New("output cap exceeded")

func (t *tail) add(line string) error {
	t.total += len(line) + 1
	if t.total > t.limit {
		return fmt.Errorf("%w: the plugin wrote more than %d bytes of output and was stopped", errOutputCap, t.limit)
	}
	t.buf = append(t.buf, line...)
	t.buf = append(t.buf, '\n')
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return nil
}

func (t *tail) String() string {
	if len(t.buf) > t.max {
		return string(t.buf[len(t.buf)-t.max:])
	}
	return string(t.buf)
}
