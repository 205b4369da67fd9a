package consent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// Values of Policy.Reboot.
const (
	RebootAsk   = "ask"   // default: ask a logged-in user; nobody logged in: now
	RebootNever = "never" // never restart; the result says a restart is pending
	RebootForce = "force" // restart now even with users logged in, after telling them
)

// DefaultRebootTonight is the default clock time of a "tonight" restart.
const DefaultRebootTonight = "22:00"

// Restart choices (RebootDecision.Choice).
const (
	ChoiceNow     = "now"
	ChoiceHour    = "1h"
	ChoiceTonight = "tonight"
)

// rebootCommandTimeout bounds the restart command (it only schedules).
const rebootCommandTimeout = 30 * time.Second

// ValidChoice reports whether s is a restart choice.
func ValidChoice(s string) bool {
	return s == ChoiceNow || s == ChoiceHour || s == ChoiceTonight
}

// ParseReboot checks a reboot policy value.
func ParseReboot(s string) (string, error) {
	switch s = strings.TrimSpace(s); s {
	case RebootAsk, RebootNever, RebootForce:
		return s, nil
	}
	return "", fmt.Errorf("consent reboot %q: want ask, never or force", s)
}

// parseClock parses "HH:MM" (24-hour).
func parseClock(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, 0, fmt.Errorf("consent reboot_tonight %q: want a 24-hour clock time such as 22:00", s)
	}
	return t.Hour(), t.Minute(), nil
}

// checkRebootCommand checks Policy.RebootCommand: empty, or an absolute path.
func checkRebootCommand(s string) error {
	if s != "" && (!filepath.IsAbs(s) || filepath.Clean(s) != s) {
		return fmt.Errorf("consent reboot_command %q: want an absolute path to a program (no arguments), e.g. /usr/local/sbin/org-restart, or empty for shutdown", s)
	}
	return nil
}

// RebootDecision is what happens to a restart a fix requires.
type RebootDecision struct {
	// Choice is ChoiceNow, ChoiceHour or ChoiceTonight; "" means no restart
	// (policy never, or the choice could not be obtained).
	Choice string
	Policy string    // the policy that applied: ask, never or force
	By     string    // a local user's name, or ByPolicy, ByNoUser, ByTimeout, ByAgent
	Reason string    // how it was decided, e.g. "chosen by bob", "nobody logged in"
	At     time.Time // when it was decided
	When   time.Time // when the machine restarts (zero without a restart)
}

// Text is the decision as a run result shows it, e.g. "restart: tonight at
// 22:00, chosen by bob", "restart now: nobody logged in", "restart pending:
// policy never".
func (d RebootDecision) Text() string {
	switch d.Choice {
	case ChoiceNow:
		return "restart now: " + d.Reason
	case ChoiceHour:
		return "restart: in 1 hour at " + d.When.Local().Format("15:04") + ", " + d.Reason
	case ChoiceTonight:
		return "restart: tonight at " + d.When.Local().Format("15:04") + ", " + d.Reason
	}
	return "restart pending: " + d.Reason
}

// restartAt is when choice restarts the machine, from now.
func (c *Consent) restartAt(choice string, now time.Time) time.Time {
	switch choice {
	case ChoiceNow:
		return now
	case ChoiceHour:
		return now.Add(time.Hour)
	case ChoiceTonight:
		h, m, _ := parseClock(c.policy.RebootTonight)
		t := time.Date(now.Year(), now.Month(), now.Day(), h, m, 0, 0, now.Location())
		if !t.After(now) {
			t = t.AddDate(0, 0, 1)
		}
		return t
	}
	return time.Time{}
}

// loggedIn reports whether a user is logged in at the machine, and who
// (for the log and the result).
func (c *Consent) loggedIn(ctx context.Context) (bool, string) {
	if c.helper != nil {
		users := c.helper.users()
		return len(users) > 0, strings.Join(users, ", ")
	}
	f := c.opts.loggedIn
	if f == nil {
		f = whoIsLoggedIn
	}
	users, err := f(ctx)
	if err != nil {
		c.log.Debug().Err(err).Msg("consent: cannot tell whether a user is logged in; assuming one is")
		return true, "someone (who could not tell)"
	}
	return len(users) > 0, strings.Join(users, ", ")
}

// whoIsLoggedIn lists the logged-in users with `who`.
func whoIsLoggedIn(ctx context.Context) ([]string, error) {
	if runtime.GOOS == "windows" {
		return nil, errors.New("no who on Windows")
	}
	path, err := exec.LookPath("who")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res := runProgram(ctx, path, nil, nil, nil)
	if res.err != nil {
		return nil, res.err
	}
	if res.exit != 0 {
		return nil, fmt.Errorf("who: %s", res.state)
	}
	var users []string
	for line := range strings.Lines(string(res.stdout)) {
		if f := strings.Fields(line); len(f) > 0 && !containsString(users, f[0]) {
			users = append(users, cleanText(f[0], 64))
		}
	}
	return users, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// DecideReboot decides, by the policy's reboot setting, whether and when
// the machine restarts for a fix that requires it. req is Kind KindReboot
// (set when empty), names the fix (Fix), the technician and the run
// (SessionID). It never restarts anything: ScheduleReboot does.
//
// The endpoint's policy is the authority; what the job asks (req.JobReboot)
// can only hold a restart back, with one exception:
//   - policy never: no restart, whatever the job asks;
//   - job never: no restart (the result says a restart is pending);
//   - job force-in-window: restart now without asking when nobody is
//     logged in (who lists no session; with the helper backend, no desktop
//     user) and the window is still open by this machine's clock; nobody
//     logged in after the window closed: no restart (nobody to ask, and
//     outside the window); someone logged in: the policy decides as for
//     ask (they are asked, or told under force);
//   - job ask, or none: the policy decides (ask, force) as it always has.
func (c *Consent) DecideReboot(ctx context.Context, req Request) RebootDecision {
	req.Kind, req.Tonight = KindReboot, c.policy.RebootTonight
	req = c.cleanRequest(req)
	req.Fix = cleanText(req.Fix, maxReason)
	d := c.decideReboot(ctx, req)
	d.Policy = c.policy.Reboot
	if d.At.IsZero() {
		d.At = time.Now()
	}
	if d.Choice != "" && d.When.IsZero() {
		d.When = c.restartAt(d.Choice, d.At)
	}
	c.log.Info().Str("run_id", req.SessionID).Str("fix", req.Fix).Str("policy", d.Policy).Str("choice", d.Choice).
		Str("by", d.By).Time("when", d.When).Str("decision", d.Text()).Msg("restart decision")
	return d
}

func (c *Consent) decideReboot(ctx context.Context, req Request) RebootDecision {
	if c.policy.Reboot == RebootNever {
		return RebootDecision{By: ByPolicy, Reason: "policy never (this endpoint is never restarted by a fix; restart it by hand)"}
	}
	switch req.JobReboot {
	case wire.RebootNever:
		return RebootDecision{By: ByJob, Reason: "the job asks for no restart (patch policy reboot never; restart it by hand)"}
	case wire.RebootForceInWindow:
		present, _ := c.loggedIn(ctx)
		now := time.Now()
		switch {
		case present:
			// Someone is there: the endpoint's policy decides, as for ask.
		case now.Before(req.WindowEnd):
			return RebootDecision{Choice: ChoiceNow, By: ByJob, At: now,
				Reason: "force-in-window, nobody logged in, window open until " + req.WindowEnd.Local().Format("15:04")}
		default:
			return RebootDecision{By: ByJob, At: now, Reason: "force-in-window, but the window closed at " +
				req.WindowEnd.Local().Format("15:04") + " and nobody is logged in to ask (restart it by hand or in a window)"}
		}
	}
	switch c.policy.Reboot {
	case RebootForce:
		present, who := c.loggedIn(ctx)
		if !present {
			return RebootDecision{Choice: ChoiceNow, By: ByPolicy, Reason: "policy force, nobody logged in"}
		}
		c.tellReboot(ctx, fmt.Sprintf("This computer (%s) restarts now to finish a fix (%s) run by %s. Save your work.",
			req.Hostname, req.Fix, orSomeone(req.Technician)))
		return RebootDecision{Choice: ChoiceNow, By: ByPolicy, Reason: "policy force, " + who + " logged in and told"}
	}
	present, _ := c.loggedIn(ctx)
	if !present {
		return RebootDecision{Choice: ChoiceNow, By: ByNoUser, Reason: "nobody logged in"}
	}
	if c.policy.Mode == ModeUnattended || c.kind == "web" || c.asker() == nil {
		why := "the web page offers no restart choice"
		if c.policy.Mode == ModeUnattended {
			why = "unattended mode asks nobody"
		}
		return RebootDecision{Choice: ChoiceTonight, By: ByAgent, Reason: "a user is logged in but " + why + " (no answer means tonight)"}
	}
	d := c.decide(ctx, req)
	switch {
	case d.Approved && ValidChoice(d.Choice):
		return RebootDecision{Choice: d.Choice, By: d.By, Reason: "chosen by " + d.By, At: d.At}
	case d.By == ByTimeout:
		return RebootDecision{Choice: ChoiceTonight, By: ByTimeout, Reason: d.Message + " (no answer means tonight)"}
	case d.By == ByNoUser:
		return RebootDecision{Choice: ChoiceTonight, By: ByNoUser, Reason: "a user is logged in but none could be asked (no answer means tonight)"}
	case d.By == ByAgent:
		return RebootDecision{By: ByAgent, Reason: "could not ask the user: " + d.Message}
	}
	return RebootDecision{Choice: ChoiceTonight, By: d.By, Reason: "no choice made by " + d.By + " (no answer means tonight)", At: d.At}
}

// tellReboot tells the logged-in users that the machine restarts, waiting
// (a few seconds at most) until the backend has shown it.
func (c *Consent) tellReboot(ctx context.Context, text string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c.helper != nil {
		c.helper.broadcast(encodeHelperMsg(helperMsg{Type: helperNotice, Text: text}))
		return
	}
	n := c.notifier()
	if n == nil {
		c.log.Warn().Str("text", text).Msg("consent: no backend to tell the user that the machine restarts (shutdown itself warns terminal users)")
		return
	}
	if err := n.notify(ctx, event{kind: "reboot", text: text}); err != nil {
		c.log.Warn().Err(err).Msg("consent: could not tell the user that the machine restarts")
	}
}

// ScheduleReboot runs the policy's restart command for d (nothing when d has
// no choice). It returns once the command has exited: shutdown only
// schedules the restart (for now, the agent is stopped soon after).
func (c *Consent) ScheduleReboot(ctx context.Context, d RebootDecision) error {
	if d.Choice == "" {
		return nil
	}
	if !ValidChoice(d.Choice) {
		return fmt.Errorf("restart: unknown choice %q", d.Choice)
	}
	when := d.When
	if when.IsZero() {
		when = c.restartAt(d.Choice, time.Now())
	}
	secs := max(0, int(time.Until(when).Round(time.Second)/time.Second))
	if d.Choice == ChoiceNow {
		secs = 0
	}
	path, args, err := c.rebootCommand(d.Choice, secs, when)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, rebootCommandTimeout)
	defer cancel()
	res := runProgram(ctx, path, args, nil, nil)
	cmdline := strings.Join(append([]string{path}, args...), " ")
	switch {
	case res.err != nil:
		return fmt.Errorf("restart command %s could not run: %w", cmdline, res.err)
	case res.exit != 0:
		msg := fmt.Sprintf("restart command %s failed (%s)", cmdline, res.state)
		if line := cleanText(firstLine(res.stderr), maxMessage); line != "" {
			msg += ": " + line
		}
		return errors.New(msg)
	}
	c.log.Info().Str("command", cmdline).Str("choice", d.Choice).Time("when", when).Msg("restart scheduled")
	return nil
}

// rebootCommand is the program and arguments that schedule a restart.
func (c *Consent) rebootCommand(choice string, secs int, when time.Time) (string, []string, error) {
	if p := c.policy.RebootCommand; p != "" {
		if err := checkProgram("reboot_command", p); err != nil {
			return "", nil, err
		}
		return p, []string{choice, strconv.Itoa(secs), when.Format(time.RFC3339)}, nil
	}
	path, err := exec.LookPath("shutdown")
	if err != nil {
		return "", nil, fmt.Errorf("restart: %w (set reboot_command to the program that restarts this machine)", err)
	}
	if runtime.GOOS == "windows" {
		return path, []string{"/r", "/t", strconv.Itoa(secs), "/c", "Patchbay: a fix requires a restart"}, nil
	}
	switch choice {
	case ChoiceNow:
		return path, []string{"-r", "now"}, nil
	case ChoiceHour:
		return path, []string{"-r", "+60"}, nil
	}
	return path, []string{"-r", when.Local().Format("15:04")}, nil
}

// checkProgram checks that path is an executable file only its owner may
// change.
func checkProgram(what, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("consent %s: %w", what, err)
	}
	if !st.Mode().IsRegular() || (runtime.GOOS != "windows" && st.Mode().Perm()&0o111 == 0) {
		return fmt.Errorf("consent %s: %s is not an executable file", what, path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("consent %s: %s is writable by group or others, who could run anything as the agent; chmod go-w it", what, path)
	}
	return nil
}
