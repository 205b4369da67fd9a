package runner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// Fix describes a fix that needs consent, as the person at the machine is
// told about it.
type Fix struct {
	Kind        string // "plugin" or "script"
	Name        string
	Version     string
	Description string // the manifest's or the script header's
	Check       string // what Check said would change
}

// String is the fix as a prompt shows it, e.g.
// "script clear-browser-cache 1.2.0: Clears the browser caches (check: 3 caches hold 2.1 GB)".
func (f Fix) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", f.Kind, f.Name, f.Version)
	if f.Description != "" {
		b.WriteString(": " + f.Description)
	}
	if c := strings.TrimSpace(f.Check); c != "" {
		if len(c) > 300 {
			c = c[:300] + "…"
		}
		b.WriteString(" (check: " + c + ")")
	}
	return b.String()
}

// Gate decides whether a fix that needs consent may run: the plugin's
// manifest or the script's header declares needs_consent, Check said a fix
// is needed and the run is not a dry run. It is called at most once per
// run, just before Fix, and Fix runs only if the decision approves it.
// The agent's worker asks the person at the machine through the endpoint's
// consent policy (agent/consent) and journals the decision.
type Gate func(ctx context.Context, fix Fix) wire.RunConsent

// RebootGate is called after a Fix that succeeded and said reboot_required,
// when the plugin's manifest or the script's header declares may_reboot (a
// fix that does not declare it never restarts anything). res is the run's
// result so far. It decides and schedules the restart by the endpoint's
// policy and returns the outcome as one line, which the runner adds to the
// result's details (e.g. "restart: tonight at 22:00, chosen by bob"). It is
// called after the plugin has stopped, at most once per run.
type RebootGate func(ctx context.Context, fix Fix, res wire.RunResult) string

// Hooks are what the runner asks its caller during a run; nil hooks mean
// nobody can be asked: a fix that needs consent does not run, and a restart
// stays pending.
type Hooks struct {
	Consent Gate
	Reboot  RebootGate
}

// Short names the fix without its description, e.g. "script
// clear-browser-cache 1.2.0" (what a consent receipt records).
func (f Fix) Short() string { return f.Kind + " " + f.Name + " " + f.Version }

// askConsent asks gate about fix; without a gate nobody can be asked, so
// the fix does not run.
func askConsent(ctx context.Context, gate Gate, fix Fix, now time.Time) wire.RunConsent {
	if gate == nil {
		return wire.RunConsent{By: "agent", Message: "this agent has no way to ask for consent", At: now.UTC()}
	}
	return gate(ctx, fix)
}

// notConsented is the summary of a run whose fix was not consented to.
func notConsented(c wire.RunConsent) string {
	msg := c.Message
	if msg == "" {
		msg = "not approved"
	}
	return "fix not run: " + msg
}
