//go:build darwin

package consent

import (
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The AppleScript reads its text (and its button labels) from argv, so
// nothing the technician wrote is ever parsed as a script. "Deny", and the
// third button of a three-way question, is the cancel button: choosing it
// (or pressing Escape) makes osascript fail with error -128.
var (
	osaQuestion = []string{
		"-e", "on run argv",
		"-e", `display dialog (item 2 of argv) with title (item 1 of argv) buttons {"Deny", (item 4 of argv)} default button "Deny" cancel button "Deny" giving up after ((item 3 of argv) as integer) with icon caution`,
		"-e", "end run",
	}
	osaChoice = []string{
		"-e", "on run argv",
		"-e", `display dialog (item 2 of argv) with title (item 1 of argv) buttons {(item 6 of argv), (item 5 of argv), (item 4 of argv)} default button (item 6 of argv) cancel button (item 6 of argv) giving up after ((item 3 of argv) as integer) with icon caution`,
		"-e", "end run",
	}
	osaIndicator = []string{
		"-e", "on run argv",
		"-e", `display dialog (item 2 of argv) with title (item 1 of argv) buttons {"End session"} default button "End session"`,
		"-e", "end run",
	}
	osaNotify = []string{
		"-e", "on run argv",
		"-e", "display notification (item 2 of argv) with title (item 1 of argv)",
		"-e", "end run",
	}
)

// findDialog uses osascript. An agent running as a LaunchDaemon (outside the
// user's session) gets error -1713 "No user interaction allowed": such a
// request is denied with that message; use the web backend there.
func findDialog() (*dialogTool, error) {
	p, err := exec.LookPath("osascript")
	if err != nil {
		return nil, errors.New("desktop backend: osascript not found; use --consent-backend web")
	}
	return &dialogTool{
		name: "osascript",
		path: p,
		question: func(title, text, yes string, timeout time.Duration) ([]string, []string) {
			return append(append([]string{}, osaQuestion...), title, text, strconv.Itoa(timeoutSeconds(timeout)), yes), nil
		},
		verdict: func(res progResult) verdict {
			out := string(res.stdout)
			switch {
			case res.exit == 0 && strings.Contains(out, "gave up:true"):
				return verdictGaveUp
			case res.exit == 0 && strings.Contains(out, "button returned:Allow"):
				return verdictApprove
			case res.exit == 1 && strings.Contains(string(res.stderr), "(-128)"):
				return verdictDeny
			}
			return verdictFailed
		},
		choice: func(title, text string, b buttons, timeout time.Duration) ([]string, []string) {
			return append(append([]string{}, osaChoice...), title, text, strconv.Itoa(timeoutSeconds(timeout)), b[0], b[1], b[2]), nil
		},
		chosen: func(res progResult, b buttons) (int, verdict) {
			out := string(res.stdout)
			switch {
			case res.exit == 0 && strings.Contains(out, "gave up:true"):
				return -1, verdictGaveUp
			case res.exit == 0 && strings.Contains(out, "button returned:"+b[0]+","):
				return 0, verdictApprove
			case res.exit == 0 && strings.Contains(out, "button returned:"+b[1]+","):
				return 1, verdictApprove
			case res.exit == 1 && strings.Contains(string(res.stderr), "(-128)"):
				return 2, verdictApprove // the cancel button
			}
			return -1, verdictFailed
		},
		notifyPath: p,
		notify: func(title, text string) ([]string, []string) {
			return append(append([]string{}, osaNotify...), title, text), nil
		},
		indicator: func(title, text string) ([]string, []string) {
			return append(append([]string{}, osaIndicator...), title, text), nil
		},
	}, nil
}
