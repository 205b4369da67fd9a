package consent

import (
	"context"
	"fmt"
	"os"
	"time"
)

// verdict is how a dialog ended.
type verdict int

const (
	verdictFailed  verdict = iota // the tool failed (no display, crashed, ...)
	verdictApprove                // the user chose Allow
	verdictDeny                   // the user chose Deny or closed the dialog
	verdictGaveUp                 // the tool's own timeout fired
)

// dialogTool is a desktop dialog program and how to talk to it. Text is
// passed as arguments or environment variables, never spliced into a script,
// and never as markup.
type dialogTool struct {
	name string // "zenity", "kdialog", "osascript", "powershell"
	path string
	// question returns the arguments and extra environment of a two-way
	// dialog, yes (e.g. "Allow") or Deny (the default), that gives up by
	// itself after timeout.
	question func(title, text, yes string, timeout time.Duration) (args, env []string)
	// verdict reads how the question dialog ended.
	verdict func(res progResult) verdict
	// notifyPath and notify run a notification that does not wait for the
	// user; notify is nil when there is no way to notify.
	notifyPath string
	notify     func(title, text string) (args, env []string)
	// choice returns the arguments and extra environment of a three-way
	// question whose buttons are b (the third is the default, and what
	// closing the window means where the tool tells), that gives up by
	// itself after timeout; nil when the tool has none. It asks the restart
	// question (rebootButtons) and the desktop question (desktopButtons).
	choice func(title, text string, b buttons, timeout time.Duration) (args, env []string)
	// chosen reads how a three-way question ended: the index in b of the
	// button chosen with verdictApprove, verdictDeny for a dialog closed
	// without a choice, verdictGaveUp or verdictFailed.
	chosen func(res progResult, b buttons) (int, verdict)
	// indicator returns the arguments and extra environment of a window with one button, "End
	// session", that exits 0 when pressed (the helper's live-session
	// indicator); nil when the tool has none.
	indicator func(title, text string) (args, env []string)
}

// desktopBackend asks with a native dialog and tells with a notification.
type desktopBackend struct {
	tool *dialogTool
	user string // who answers a dialog: the user the agent runs as
}

func (d *desktopBackend) ask(ctx context.Context, req Request) answer {
	switch {
	case req.kind() == KindReboot:
		return d.askChoice(ctx, req, rebootButtons)
	case req.desktop == DesktopControl:
		return d.askChoice(ctx, req, desktopButtons)
	}
	now := time.Now()
	args, env := d.tool.question(promptTitleFor(req), promptText(req, now), yesLabel(req), req.Deadline.Sub(now))
	res := runProgram(ctx, d.tool.path, args, withEnv(env), nil)
	if res.err != nil {
		return answer{failed: true, message: fmt.Sprintf("desktop dialog %s could not run: %v", d.tool.name, res.err)}
	}
	switch d.tool.verdict(res) {
	case verdictApprove:
		a := answer{approved: true, by: d.user, message: "approved by the user in a " + d.tool.name + " dialog"}
		if req.desktop == DesktopViewOnly {
			a.choice, a.message = ChoiceViewOnly, "approved view only by the user in a "+d.tool.name+" dialog"
		}
		return a
	case verdictDeny:
		return answer{by: d.user, message: "denied by the user"}
	case verdictGaveUp:
		<-ctx.Done() // the deadline is ours to report
		return answer{}
	}
	return d.failed(res)
}

// failed is the answer of a dialog tool that failed.
func (d *desktopBackend) failed(res progResult) answer {
	msg := fmt.Sprintf("desktop dialog %s failed (%s)", d.tool.name, res.state)
	if line := cleanText(firstLine(res.stderr), maxMessage); line != "" {
		msg += ": " + line
	}
	return answer{failed: true, message: truncate(msg, maxReason)}
}

// askChoice asks a three-way question: the restart question, or the
// desktop question (full control, view only, deny).
func (d *desktopBackend) askChoice(ctx context.Context, req Request, b buttons) answer {
	if d.tool.choice == nil {
		return answer{failed: true, message: "desktop dialog " + d.tool.name + " cannot ask a three-way question"}
	}
	now := time.Now()
	args, env := d.tool.choice(promptTitleFor(req), promptText(req, now), b, req.Deadline.Sub(now))
	res := runProgram(ctx, d.tool.path, args, withEnv(env), nil)
	if res.err != nil {
		return answer{failed: true, message: fmt.Sprintf("desktop dialog %s could not run: %v", d.tool.name, res.err)}
	}
	i, v := d.tool.chosen(res, b)
	switch {
	case v == verdictApprove && i >= 0 && i < len(b) && b == desktopButtons:
		return desktopAnswer(i, d.user, "in a "+d.tool.name+" dialog")
	case v == verdictApprove && i >= 0 && i < len(b):
		choice := rebootChoices[i]
		return answer{approved: true, choice: choice, by: d.user, message: "restart " + choice + " chosen in a " + d.tool.name + " dialog"}
	case v == verdictDeny && b == desktopButtons:
		return answer{by: d.user, message: "denied by the user"} // Deny, or the window closed
	case v == verdictDeny:
		return answer{by: d.user, message: "the restart dialog was closed without a choice"}
	case v == verdictGaveUp:
		<-ctx.Done()
		return answer{}
	}
	return d.failed(res)
}

// buttons are the labels of a three-way question, in the order the tool's
// OK, extra (or No) and Cancel buttons show them; the third is the default.
type buttons [3]string

// Labels of the restart question's buttons.
const (
	labelNow     = "Restart now"
	labelHour    = "In 1 hour"
	labelTonight = "Tonight"
)

var (
	rebootButtons  = buttons{labelNow, labelHour, labelTonight}
	rebootChoices  = [3]string{ChoiceNow, ChoiceHour, ChoiceTonight}
	desktopButtons = buttons{labelControl, labelViewOnly, labelDeny}
)

func (d *desktopBackend) notify(ctx context.Context, ev event) error {
	if d.tool.notify == nil {
		return nil
	}
	title := "Patchbay remote session"
	if ev.kind == "reboot" {
		title = "Patchbay: this computer restarts"
	}
	args, env := d.tool.notify(title, eventText(ev))
	res := runProgram(ctx, d.tool.notifyPath, args, withEnv(env), nil)
	if res.err != nil {
		return fmt.Errorf("desktop notification: %w", res.err)
	}
	if res.exit != 0 {
		return fmt.Errorf("desktop notification: %s %s: %s", d.tool.notifyPath, res.state, cleanText(firstLine(res.stderr), maxMessage))
	}
	return nil
}

// eventText tells the user about a session event in one or two sentences.
// The reason the technician gave is left out (it is attacker-influenced and
// notification servers read markup); the technician's name is restricted on
// the wire.
func eventText(ev event) string {
	if ev.kind == "reboot" {
		return ev.text
	}
	l := ev.live
	if ev.kind == "ended" {
		s := fmt.Sprintf("The remote session of %s on this computer ended.", orSomeone(l.Technician))
		if ev.endReason != "" {
			s = fmt.Sprintf("The remote session of %s on this computer ended: %s.", orSomeone(l.Technician), ev.endReason)
		}
		return s
	}
	s := fmt.Sprintf("Technician %s started a remote session on this computer and can %s.", orSomeone(l.Technician), capList(l.Capabilities))
	if ev.url != "" {
		s += " To end it, open " + ev.url
	}
	return s
}

func orSomeone(s string) string {
	if s == "" {
		return "a technician"
	}
	return s
}

// withEnv returns the agent's environment plus extra, or nil (inherit) when
// there is nothing extra.
func withEnv(extra []string) []string {
	if len(extra) == 0 {
		return nil
	}
	return append(os.Environ(), extra...)
}

// timeoutSeconds is a dialog's own timeout: a second past ours, so that the
// agent's deadline, not the tool, ends the question.
func timeoutSeconds(d time.Duration) int {
	return int((d+time.Second-1)/time.Second) + 1
}
