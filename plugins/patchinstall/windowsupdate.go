package main

// The windowsupdate backend installs Windows (OS) updates through the
// Windows Update Agent API: an embedded PowerShell script drives the COM
// objects (Microsoft.Update.Session → CreateUpdateSearcher →
// Search("IsInstalled=0 and Type='Software' and IsHidden=0") →
// UpdateDownloader → UpdateInstaller) and prints one JSON line, which this
// file reads. All of it is plain Go (the script runs through the runner like
// any manager), so building the command and reading its output are tested
// everywhere; the script itself only runs on Windows, untested here.

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/patchbay/patchbay/plugins/sdk"
)

//go:embed windowsupdate.ps1
var wuaScript string

type windowsUpdateBackend struct{}

func (windowsUpdateBackend) name() string { return "windowsupdate" }

// wuaMarker starts the script's result line.
const wuaMarker = "PATCHBAY-WUA "

// Update classifications (the WUA category of type UpdateClassification)
// by the short names the categories parameter takes.
var wuaClassifications = map[string]string{
	"security":     "Security Updates",
	"critical":     "Critical Updates",
	"definition":   "Definition Updates",
	"updates":      "Updates",
	"rollups":      "Update Rollups",
	"featurepacks": "Feature Packs",
	"servicepacks": "Service Packs",
	"tools":        "Tools",
	"upgrades":     "Upgrades",
}

// parseCategories reads the categories parameter: comma-separated short
// names of wuaClassifications, returned as classification names.
func parseCategories(s string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(s, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" {
			continue
		}
		name, ok := wuaClassifications[c]
		if !ok {
			keys := make([]string, 0, len(wuaClassifications))
			for k := range wuaClassifications {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return nil, fmt.Errorf("categories: unknown %q (want some of %s)", c, strings.Join(keys, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// oneOrMany reads a JSON array, or a single value as an array of one
// (PowerShell's ConvertTo-Json unrolls one-element arrays in some places).
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*o = nil
		return nil
	case len(b) > 0 && b[0] == '[':
		var s []T
		err := json.Unmarshal(b, &s)
		*o = s
		return err
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = []T{v}
	return nil
}

// wuaUpdate is one update the script lists.
type wuaUpdate struct {
	ID              string            `json:"id"`
	Revision        int               `json:"revision"`
	Title           string            `json:"title"`
	KB              oneOrMany[string] `json:"kb"`
	Classifications oneOrMany[string] `json:"classifications"`
	Severity        string            `json:"severity"`        // MSRC severity, set on security updates
	RebootBehavior  int               `json:"reboot_behavior"` // 0 never, 1 always, 2 can request
}

// wuaResult is one update's installation result.
type wuaResult struct {
	ID             string `json:"id"`
	ResultCode     int    `json:"result_code"` // OperationResultCode
	HResult        int64  `json:"hresult"`
	RebootRequired bool   `json:"reboot_required"`
}

// wuaOutput is the script's JSON.
type wuaOutput struct {
	Updates        oneOrMany[wuaUpdate] `json:"updates"`
	Installed      oneOrMany[wuaResult] `json:"installed"`
	ResultCode     *int                 `json:"result_code"`
	DownloadResult *int                 `json:"download_result_code"`
	HResult        int64                `json:"hresult"`
	RebootRequired bool                 `json:"reboot_required"`
	Error          string               `json:"error"`
}

// OperationResultCode values.
const (
	wuaNotStarted = iota
	wuaInProgress
	wuaSucceeded
	wuaSucceededWithErrors
	wuaFailed
	wuaAborted
)

func resultName(code int) string {
	switch code {
	case wuaNotStarted:
		return "not started"
	case wuaInProgress:
		return "in progress"
	case wuaSucceeded:
		return "succeeded"
	case wuaSucceededWithErrors:
		return "succeeded with errors"
	case wuaFailed:
		return "failed"
	case wuaAborted:
		return "aborted"
	}
	return fmt.Sprintf("result code %d", code)
}

// hresult formats an HRESULT as Windows documents it (0x8024402C).
func hresult(h int64) string { return fmt.Sprintf("0x%08X", uint32(h)) }

// parseWUAOutput finds the script's result line in stdout and reads it.
// Missing or malformed output is an error that quotes what came instead
// (with stderr); an error the script caught is returned as one.
func parseWUAOutput(stdout, stderr string) (wuaOutput, error) {
	var line string
	for _, l := range strings.Split(stdout, "\n") {
		if l = strings.TrimRight(l, "\r"); strings.HasPrefix(l, wuaMarker) {
			line = strings.TrimPrefix(l, wuaMarker)
		}
	}
	if line == "" {
		got := lastLine(stderr + "\n" + stdout)
		if got == "" {
			got = "nothing"
		}
		return wuaOutput{}, fmt.Errorf("windowsupdate: the Windows Update script printed no result line (%q); it printed: %s", strings.TrimSpace(wuaMarker), got)
	}
	var out wuaOutput
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		short := line
		if len(short) > 200 {
			short = short[:200] + "…"
		}
		return wuaOutput{}, fmt.Errorf("windowsupdate: the Windows Update script's result is not the JSON expected (%v): %s", err, short)
	}
	if out.Error != "" {
		return out, fmt.Errorf("windowsupdate: Windows Update Agent: %s (%s)", strings.TrimSpace(out.Error), hresult(out.HResult))
	}
	for _, u := range out.Updates {
		if !guidRE.MatchString(u.ID) {
			return wuaOutput{}, fmt.Errorf("windowsupdate: the script listed an update with ID %q, not a GUID", u.ID)
		}
	}
	return out, nil
}

var guidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// wuaUpdates turns the listed updates into the plugin's, keeping only the
// given classifications (all when none). An update is named by its first
// KB article (what admins search for), else by its UpdateID; it is a
// security update when Windows Update classifies it so or gives it an MSRC
// severity.
func wuaUpdates(ws []wuaUpdate, classifications []string) []update {
	ups := []update{}
	for _, w := range ws {
		if len(classifications) > 0 && !slices.ContainsFunc(w.Classifications, func(c string) bool {
			return slices.Contains(classifications, c)
		}) {
			continue
		}
		u := update{ID: w.ID, Name: w.ID, Title: w.Title, To: fmt.Sprintf("revision %d", w.Revision),
			Repo: "Windows Update", Categories: strings.Join(w.Classifications, ", "), Restart: w.RebootBehavior == 1,
			Security: slices.Contains(w.Classifications, "Security Updates") || w.Severity != ""}
		if len(w.KB) > 0 {
			u.Name = w.KB[0]
		}
		ups = append(ups, u)
	}
	return ups
}

// wuaScriptFor prefixes the script with its parameters. IDs must be GUIDs
// (they come from the script's own listing), so nothing else can reach the
// script text.
func wuaScriptFor(mode string, ids []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "$Mode = '%s'\n$Ids = @(", mode)
	for i, id := range ids {
		if !guidRE.MatchString(id) {
			return "", fmt.Errorf("windowsupdate: update ID %q is not a GUID", id)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("'" + id + "'")
	}
	b.WriteString(")\n")
	b.WriteString(wuaScript)
	return b.String(), nil
}

// encodeCommand is PowerShell's -EncodedCommand form: base64 of UTF-16LE.
func encodeCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// maxCommandLine is CreateProcess's limit, in characters.
const maxCommandLine = 32767

// wuaArgs are powershell.exe's arguments to run the script in mode.
func wuaArgs(mode string, ids []string) ([]string, error) {
	s, err := wuaScriptFor(mode, ids)
	if err != nil {
		return nil, err
	}
	args := []string{"-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", encodeCommand(s)}
	if n := len(strings.Join(args, " ")) + len(`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe `); n > maxCommandLine {
		return nil, fmt.Errorf("windowsupdate: %d updates make a command line of %d characters, over Windows' %d; install fewer at once (exclude, categories)", len(ids), n, maxCommandLine)
	}
	return args, nil
}

func (windowsUpdateBackend) run(ctx context.Context, x *runner, mode string, ids []string) (wuaOutput, error) {
	args, err := wuaArgs(mode, ids)
	if err != nil {
		return wuaOutput{}, err
	}
	r, err := x.output(ctx, "powershell", args...)
	if err != nil {
		return wuaOutput{}, fmt.Errorf("windowsupdate: %w", err)
	}
	return parseWUAOutput(r.stdout, r.stderr)
}

// pending searches Windows Update for updates not installed. The search is
// online (it updates Windows Update's own cache, nothing installed).
func (b windowsUpdateBackend) pending(ctx context.Context, x *runner, o options) (pendingList, error) {
	out, err := b.run(ctx, x, "list", nil)
	if err != nil {
		return pendingList{}, err
	}
	p := pendingList{Updates: wuaUpdates(out.Updates, o.categories), Security: -1}
	if out.RebootRequired {
		p.Notes = append(p.Notes, "Windows already waits for a reboot (updates installed earlier)")
	}
	return p, nil
}

// refresh: every Windows Update search goes online; nothing to refresh.
func (windowsUpdateBackend) refresh(_ context.Context, _ *runner, out *sdk.Output) error {
	out.Println("windowsupdate: every search asks Windows Update online; nothing to refresh")
	return nil
}

func (b windowsUpdateBackend) install(ctx context.Context, x *runner, o options, ups []update, out *sdk.Output) (installResult, error) {
	ids := make([]string, 0, len(ups))
	names := make([]string, 0, len(ups))
	for _, u := range ups {
		ids = append(ids, u.ID)
		names = append(names, u.Name)
	}
	if o.simulate {
		out.Printf("simulate: would download and install through Windows Update: %s", strings.Join(names, ", "))
		return installResult{}, nil
	}
	out.Printf("run: Windows Update Agent: download and install %s", strings.Join(names, ", "))
	res, err := b.run(ctx, x, "install", ids)
	if err != nil {
		return installResult{}, err
	}
	return wuaInstallOutcome(res, ups, out)
}

// wuaInstallOutcome reads the install's results: one line per update, an
// error naming each that failed, and whether Windows needs a reboot.
func wuaInstallOutcome(res wuaOutput, ups []update, out *sdk.Output) (installResult, error) {
	byID := map[string]update{}
	for _, u := range ups {
		byID[u.ID] = u
	}
	var errs []error
	r := installResult{}
	for _, ir := range res.Installed {
		name := ir.ID
		if u, ok := byID[ir.ID]; ok {
			name = u.Name
		}
		line := name + ": " + resultName(ir.ResultCode)
		if ir.HResult != 0 {
			line += " (" + hresult(ir.HResult) + ")"
		}
		if ir.RebootRequired {
			line += ", reboot required"
			r.Reboot = true
		}
		out.Println(line)
		if ir.ResultCode != wuaSucceeded && ir.ResultCode != wuaSucceededWithErrors {
			errs = append(errs, errors.New(line))
		}
	}
	if d := res.DownloadResult; d != nil && *d != wuaSucceeded {
		out.Printf("download: %s", resultName(*d))
	}
	if len(res.Installed) == 0 && len(ups) > 0 {
		errs = append(errs, errors.New("none of the updates was installed: Windows Update no longer offered them"))
	}
	if res.RebootRequired {
		r.Reboot = true
	}
	if r.Reboot {
		r.RebootReason = "Windows Update: the installed updates need a reboot"
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("windowsupdate: %w", errors.Join(errs...))
	}
	return r, nil
}

// rebootRequired reads Windows' pending-reboot markers (rebootPending).
func (windowsUpdateBackend) rebootRequired(context.Context, *runner, []update) (bool, string) {
	return rebootPending()
}
