// Command testplugin is a plugin whose misbehaviour is chosen by its
// parameters. Tests of the SDK and of the agent's runner launch it for real;
// it is never published.
package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// version can be set with -ldflags "-X main.version=…" to test downgrades.
var version = "1.0.0"

type testPlugin struct{}

func (testPlugin) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:        "testplugin",
		Version:     version,
		Description: "misbehaves on request (tests only)",
		// Tests of fix consent set TESTPLUGIN_NEEDS_CONSENT=1 in the
		// plugin's environment.
		NeedsConsent: os.Getenv("TESTPLUGIN_NEEDS_CONSENT") == "1",
		// Tests of restarts set TESTPLUGIN_REBOOT=1 (may_reboot, and Fix
		// says reboot_required) or TESTPLUGIN_REBOOT=undeclared (Fix says
		// reboot_required without may_reboot).
		MayReboot: os.Getenv("TESTPLUGIN_REBOOT") == "1",
		Params: []sdk.Param{
			{Name: "mode", Type: sdk.TypeString, Default: "ok",
				Allowed: []string{"ok", "clean", "fail", "hang", "flood", "crash", "spawn", "echo", "env"}},
			{Name: "text", Type: sdk.TypeString},
			{Name: "lines", Type: sdk.TypeInt, Default: "3"},
			{Name: "pidfile", Type: sdk.TypeString},
			{Name: "countfile", Type: sdk.TypeString, Description: "Fix appends a line here each time it runs"},
			{Name: "sleep", Type: sdk.TypeDuration, Default: "0s", Description: "Fix waits this long before finishing"},
		},
	}
}

func (testPlugin) Check(ctx context.Context, req sdk.Request) (sdk.CheckResult, error) {
	switch req.Params.String("mode") {
	case "clean":
		return sdk.CheckResult{Needed: false, Summary: "nothing to do"}, nil
	case "echo":
		return sdk.CheckResult{Needed: true, Summary: req.Params.String("text")}, nil
	case "env": // the value of the variable named by text
		return sdk.CheckResult{Summary: os.Getenv(req.Params.String("text"))}, nil
	}
	return sdk.CheckResult{Needed: true, Summary: "fix needed"}, nil
}

func (testPlugin) Fix(ctx context.Context, req sdk.Request, out *sdk.Output) (sdk.FixResult, error) {
	p := req.Params
	if f := p.String("countfile"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return sdk.FixResult{}, err
		}
		fh.WriteString("ran\n")
		fh.Close()
	}
	if d := p.Duration("sleep"); d > 0 {
		select {
		case <-ctx.Done():
			return sdk.FixResult{}, ctx.Err()
		case <-time.After(d):
		}
	}
	switch p.String("mode") {
	case "fail":
		return sdk.FixResult{}, errors.New("deliberate failure")
	case "hang":
		<-make(chan struct{}) // ignores ctx on purpose
	case "flood":
		line := strings.Repeat("x", 1000)
		for {
			out.Println(line)
			if out.Err() != nil {
				return sdk.FixResult{}, out.Err()
			}
		}
	case "crash":
		os.Exit(3)
	case "spawn":
		// A child in the plugin's process group that outlives Kill unless
		// the host ends the whole group.
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			return sdk.FixResult{}, err
		}
		if f := p.String("pidfile"); f != "" {
			_ = os.WriteFile(f, []byte(itoa(cmd.Process.Pid)), 0o600)
		}
		<-make(chan struct{})
	case "echo":
		out.Println(p.String("text"))
		return sdk.FixResult{Changed: true, Summary: p.String("text")}, nil
	}
	for i := int64(0); i < p.Int("lines"); i++ {
		out.Printf("line %d", i+1)
	}
	select {
	case <-ctx.Done():
		return sdk.FixResult{}, ctx.Err()
	case <-time.After(time.Millisecond):
	}
	reboot := os.Getenv("TESTPLUGIN_REBOOT")
	return sdk.FixResult{Changed: true, Summary: "fixed", RebootRequired: reboot == "1" || reboot == "undeclared"}, nil
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

func main() { sdk.Serve(testPlugin{}) }
