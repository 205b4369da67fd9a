// Command script is the Patchbay plugin that runs a signed script.
//
// The agent fetches the script named by the `name` parameter, verifies its
// signature and SHA-256, and passes it as the request's attachment. This
// plugin then:
//
//   - re-hashes the attachment and refuses to run bytes other than the ones
//     the agent verified, running its own private copy of them;
//   - re-parses the script's header manifest (package scriptmeta) and
//     re-validates the script's parameters, which arrive JSON-encoded in the
//     one `args` parameter, against it;
//   - hands each script parameter to the script as the environment variable
//     PATCHBAY_PARAM_<NAME> (never in its text or on a command line), in a
//     clean environment, a fresh working directory and stdin from /dev/null;
//   - runs it in its own process group (a Job object on Windows) and ends
//     the whole group on timeout, cancellation, too much output, or exit.
//
// Check and Fix: scripts are fix-only unless their header says `check:
// true`. Check of a fix-only script does not run it and answers "needed".
// A check-capable script runs with PATCHBAY_MODE=check and exits 0 (nothing
// to do) or 10 (fix needed). Fix runs it with PATCHBAY_MODE=fix; exit 0 is
// success, and a final output line `patchbay:unchanged` reports that
// nothing changed; a line `patchbay:reboot-required` asks for a reboot.
// scripts/README.md is the script author's side of this contract.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/plugins/scriptmeta"
	"github.com/patchbay/patchbay/plugins/sdk"
)

// Limits on the plugin's own parameters.
const (
	defaultMaxOutput = 1 << 20
	maxMaxOutput     = 64 << 20
	maxTimeout       = 24 * time.Hour
	// maxDetails bounds the output a check-mode run returns in Details.
	maxDetails = 64 << 10
)

// Exit codes and output markers of the script contract.
const (
	exitCheckNeeded = 10
	markUnchanged   = "patchbay:unchanged"
	markReboot      = "patchbay:reboot-required"
)

type scriptPlugin struct{}

func (scriptPlugin) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:        "script",
		Version:     "1.0.0",
		Description: "runs a signed script from the catalog (sh, bash or PowerShell), its parameters as PATCHBAY_PARAM_* environment variables",
		OS:          []string{"linux", "darwin", "windows"},
		Params: []sdk.Param{
			{Name: "name", Type: sdk.TypeString, Required: true,
				Description: "the script's catalog name; the agent fetches and verifies it and sends it as the attachment"},
			{Name: "args", Type: sdk.TypeString, Default: "{}",
				Description: `the script's own parameters as a JSON object of strings, like {"interface":"eth0"}; each reaches the script as PATCHBAY_PARAM_<NAME>`},
			{Name: "timeout", Type: sdk.TypeDuration, Default: "10m",
				Description: "kill the script (and everything it started) after this long; a shorter timeout: in the script's header wins"},
			{Name: "max_output", Type: sdk.TypeInt, Default: strconv.Itoa(defaultMaxOutput),
				Description: "kill the script when its output (stdout and stderr) passes this many bytes"},
		},
	}
}

// job is a validated request: the verified script bytes, its manifest and
// the environment it runs with.
type job struct {
	name      string
	data      []byte
	meta      *scriptmeta.Script
	shell     string
	params    map[string]string // the script's parameters, defaults applied
	timeout   time.Duration
	maxOutput int64
}

// prepare checks everything that can be checked without running the script.
func prepare(req sdk.Request) (*job, error) {
	name := req.Params.String("name")
	if !sdk.ValidName(name) {
		return nil, fmt.Errorf("script: name %q: want [a-z][a-z0-9_-]*", name)
	}
	j := &job{name: name, timeout: req.Params.Duration("timeout"), maxOutput: req.Params.Int("max_output")}
	if j.timeout <= 0 || j.timeout > maxTimeout {
		return nil, fmt.Errorf("script %s: timeout %s: want more than 0 and at most %v", name, req.Params.String("timeout"), maxTimeout)
	}
	if j.maxOutput <= 0 || j.maxOutput > maxMaxOutput {
		return nil, fmt.Errorf("script %s: max_output %d: want 1 to %d bytes", name, j.maxOutput, maxMaxOutput)
	}
	a := req.Attachment
	if a == nil || a.Path == "" {
		return nil, fmt.Errorf("script %s: no script attached: the agent sends the verified script as the attachment", name)
	}
	data, err := readCapped(a.Path, scriptmeta.MaxScriptSize)
	if err != nil {
		return nil, fmt.Errorf("script %s: read attachment: %w", name, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, a.SHA256) {
		return nil, fmt.Errorf("script %s: attachment sha256 is %s, not the verified %s: refusing to run it", name, got, a.SHA256)
	}
	j.data = data
	if j.meta, err = scriptmeta.Parse(name, data); err != nil {
		return nil, fmt.Errorf("script %s: header: %w", name, err)
	}
	m := &j.meta.Manifest
	if j.meta.HasManifest && m.Name != name {
		return nil, fmt.Errorf("script %s: the script's header calls it %q", name, m.Name)
	}
	if !m.Supports(runtime.GOOS) {
		return nil, fmt.Errorf("script %s: does not support %s (it supports %s)", name, runtime.GOOS, strings.Join(m.OS, ", "))
	}
	if t := j.meta.Timeout; t > 0 && t < j.timeout {
		j.timeout = t
	}
	args, err := parseArgs(req.Params.String("args"))
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", name, err)
	}
	if j.params, err = j.meta.ValidateParams(args); err != nil {
		return nil, fmt.Errorf("script %s: %w", name, err)
	}
	j.shell = j.meta.ShellFor(runtime.GOOS)
	return j, nil
}

// readCapped reads the file at path, refusing one larger than max bytes.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

func (scriptPlugin) Check(ctx context.Context, req sdk.Request) (sdk.CheckResult, error) {
	j, err := prepare(req)
	if err != nil {
		return sdk.CheckResult{}, err
	}
	if !j.meta.Check {
		return sdk.CheckResult{Needed: true, Summary: fmt.Sprintf("script %s would run", j.name),
			Details: "the script has no check mode (no `check: true` in its header): Check does not run it"}, nil
	}
	details := &headBuffer{max: maxDetails}
	res, err := j.run(ctx, "check", details)
	if err != nil {
		return sdk.CheckResult{}, err
	}
	switch res.exitCode {
	case 0:
		return sdk.CheckResult{Needed: false, Summary: res.summary(fmt.Sprintf("script %s: nothing to do", j.name)), Details: details.String()}, nil
	case exitCheckNeeded:
		return sdk.CheckResult{Needed: true, Summary: res.summary(fmt.Sprintf("script %s: fix needed", j.name)), Details: details.String()}, nil
	}
	return sdk.CheckResult{}, fmt.Errorf("script %s: check failed: %s (0 means nothing to do, %d fix needed)%s",
		j.name, res.exitText(), exitCheckNeeded, res.tailText())
}

func (scriptPlugin) Fix(ctx context.Context, req sdk.Request, out *sdk.Output) (sdk.FixResult, error) {
	j, err := prepare(req)
	if err != nil {
		return sdk.FixResult{}, err
	}
	w := out.Writer()
	res, err := j.run(ctx, "fix", w)
	w.Close()
	if err != nil {
		return sdk.FixResult{}, err
	}
	if res.exitCode != 0 {
		return sdk.FixResult{}, fmt.Errorf("script %s: %s%s", j.name, res.exitText(), res.tailText())
	}
	return sdk.FixResult{
		Changed:        res.lastLine != markUnchanged,
		Summary:        res.summary(fmt.Sprintf("script %s ran", j.name)),
		RebootRequired: res.reboot,
	}, nil
}

func main() { sdk.Serve(scriptPlugin{}) }
