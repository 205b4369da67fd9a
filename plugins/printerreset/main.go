// Command printerreset is the Patchbay plugin that unsticks printing.
//
// On Linux and macOS it talks to CUPS through its command-line tools
// (lpstat, cancel, cupsenable, cupsaccept), run with LANG=C so their output
// parses the same everywhere. Check lists disabled (stopped) and rejecting
// queues and stuck jobs (see isStuck for the exact definition) and asks
// whether the scheduler answers; it changes nothing. Fix cancels the stuck
// jobs, re-enables and re-accepts the queues and, when the scheduler does not
// answer and restart_scheduler is true, restarts it (systemctl or service on
// Linux, launchctl on macOS).
//
// On Windows it stops the Print Spooler service, deletes the spooled job
// files, starts the spooler again and resumes paused printers
// (spooler_windows.go, printers_windows.go); that path is compiled but not
// tested here (which printers to resume is, in printers.go).
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// version is the plugin's version; it can be set with -ldflags "-X main.version=…".
var version = "1.0.0"

// defaultPath is used when the plugin was started without a PATH (the agent
// normally passes a minimal one).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type printerReset struct{}

// Manifest declares the plugin and its parameters.
func (printerReset) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:    "printerreset",
		Version: version,
		Description: "Unstick printing: cancel stuck print jobs, re-enable stopped or rejecting queues and " +
			"restart the print scheduler if it does not answer (CUPS on Linux/macOS, the Print Spooler on Windows).",
		OS: []string{"linux", "darwin", "windows"},
		Params: []sdk.Param{
			{Name: "older_than", Type: sdk.TypeDuration, Default: "0s",
				Description: "0s: every unfinished job on a disabled queue is stuck; otherwise only jobs submitted " +
					"longer ago than this are stuck (on any queue) and younger ones are left alone"},
			{Name: "queue", Type: sdk.TypeString,
				Description: "only look at this CUPS queue (not supported on Windows, whose spool folder is shared)"},
			{Name: "restart_scheduler", Type: sdk.TypeBool, Default: "true",
				Description: "restart the scheduler (cupsd, or the Windows spooler) if it does not answer"},
			{Name: "cups_server", Type: sdk.TypeString,
				Description: "talk to this CUPS server (host:port or socket path, as CUPS_SERVER) instead of the " +
					"local one; a scheduler chosen this way is never restarted. Meant for tests"},
		},
	}
}

// options are the validated parameters.
type options struct {
	olderThan time.Duration
	queue     string
	restart   bool
	server    string
}

func parseOptions(p sdk.Params) (options, error) {
	o := options{
		olderThan: p.Duration("older_than"),
		queue:     p.String("queue"),
		restart:   p.Bool("restart_scheduler"),
		server:    p.String("cups_server"),
	}
	if o.olderThan < 0 {
		return options{}, fmt.Errorf("older_than: %s is negative", o.olderThan)
	}
	if o.queue != "" && !validName(o.queue) {
		return options{}, fmt.Errorf("queue: %q is not a valid queue name", o.queue)
	}
	if o.server != "" && (strings.HasPrefix(o.server, "-") || strings.ContainsAny(o.server, " \t\r\n")) {
		return options{}, fmt.Errorf("cups_server: %q is not host:port or a socket path", o.server)
	}
	return o, nil
}

// Check reports what Fix would do; it changes nothing.
func (printerReset) Check(ctx context.Context, req sdk.Request) (sdk.CheckResult, error) {
	o, err := parseOptions(req.Params)
	if err != nil {
		return sdk.CheckResult{}, fmt.Errorf("check: %w", err)
	}
	return check(ctx, o)
}

// Fix unsticks printing and reports what it changed.
func (printerReset) Fix(ctx context.Context, req sdk.Request, out *sdk.Output) (sdk.FixResult, error) {
	o, err := parseOptions(req.Params)
	if err != nil {
		return sdk.FixResult{}, fmt.Errorf("fix: %w", err)
	}
	return fix(ctx, o, out)
}

func main() {
	if runtime.GOOS != "windows" && os.Getenv("PATH") == "" {
		_ = os.Setenv("PATH", defaultPath)
	}
	sdk.Serve(printerReset{})
}
