//go:build unix && !darwin

package consent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// hasDisplay reports whether the agent can reach a graphical session.
func hasDisplay() bool {
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// findDialog picks zenity, else kdialog, and notify-send for notifications
// when it is installed.
func findDialog() (*dialogTool, error) {
	if !hasDisplay() {
		return nil, errors.New("desktop backend: no display (DISPLAY and WAYLAND_DISPLAY are unset): run the agent in the user's graphical session or use --consent-backend web")
	}
	var t *dialogTool
	if p, err := exec.LookPath("zenity"); err == nil {
		t = zenityTool(p)
	} else if p, err := exec.LookPath("kdialog"); err == nil {
		t = kdialogTool(p)
	} else {
		return nil, errors.New("desktop backend: neither zenity nor kdialog found; install one or use --consent-backend web")
	}
	if p, err := exec.LookPath("notify-send"); err == nil {
		t.notifyPath = p
		t.notify = func(title, text string) ([]string, []string) {
			return []string{"--app-name=Patchbay", "--expire-time=15000", "--", title, escapeMarkup(text)}, nil
		}
	}
	return t, nil
}

// zenityTool: exit 0 is Allow, 1 is Deny (or the window closed), 5 is its timeout.
func zenityTool(path string) *dialogTool {
	return &dialogTool{
		name: "zenity",
		path: path,
		question: func(title, text, yes string, timeout time.Duration) ([]string, []string) {
			return []string{"--question", "--title=" + title, "--text=" + text, "--no-markup",
				"--ok-label=" + yes, "--cancel-label=" + labelDeny, "--default-cancel", "--width=480",
				fmt.Sprintf("--timeout=%d", timeoutSeconds(timeout))}, nil
		},
		verdict: func(res progResult) verdict {
			switch res.exit {
			case 0:
				return verdictApprove
			case 1:
				return verdictDeny
			case 5:
				return verdictGaveUp
			}
			return verdictFailed
		},
		// A three-way question: OK is the first button (exit 0), the extra
		// button prints its label and exits 1, Cancel (the third, the
		// default) exits 1 with nothing printed, closing the window too.
		choice: func(title, text string, b buttons, timeout time.Duration) ([]string, []string) {
			return []string{"--question", "--title=" + title, "--text=" + text, "--no-markup",
				"--ok-label=" + b[0], "--extra-button=" + b[1], "--cancel-label=" + b[2],
				"--default-cancel", "--width=480", fmt.Sprintf("--timeout=%d", timeoutSeconds(timeout))}, nil
		},
		chosen: func(res progResult, b buttons) (int, verdict) {
			switch out := strings.TrimSpace(string(res.stdout)); {
			case res.exit == 0:
				return 0, verdictApprove
			case res.exit == 1 && out == b[1]:
				return 1, verdictApprove
			case res.exit == 1 && out == b[2]:
				return 2, verdictApprove
			case res.exit == 1:
				return -1, verdictDeny // the third button, or closed: the default
			case res.exit == 5:
				return -1, verdictGaveUp
			}
			return -1, verdictFailed
		},
		notifyPath: path,
		notify: func(title, text string) ([]string, []string) {
			return []string{"--notification", "--text=" + escapeMarkup(text)}, nil
		},
		indicator: func(title, text string) ([]string, []string) {
			return []string{"--info", "--title=" + title, "--text=" + text, "--no-markup", "--ok-label=End session", "--width=420"}, nil
		},
	}
}

// kdialogTool: exit 0 is Allow, 1 is Deny; it has no timeout of its own (the
// agent kills it at the deadline).
func kdialogTool(path string) *dialogTool {
	return &dialogTool{
		name: "kdialog",
		path: path,
		question: func(title, text, yes string, _ time.Duration) ([]string, []string) {
			return []string{"--title", title, "--yes-label", yes, "--no-label", labelDeny, "--yesno", text}, nil
		},
		verdict: func(res progResult) verdict {
			switch res.exit {
			case 0:
				return verdictApprove
			case 1:
				return verdictDeny
			}
			return verdictFailed
		},
		// A three-way question: Yes is the first button (0), No the second
		// (1), Cancel the third (2, also closing the window).
		choice: func(title, text string, b buttons, _ time.Duration) ([]string, []string) {
			return []string{"--title", title, "--yes-label", b[0], "--no-label", b[1],
				"--cancel-label", b[2], "--yesnocancel", text}, nil
		},
		chosen: func(res progResult, _ buttons) (int, verdict) {
			if res.exit >= 0 && res.exit <= 2 {
				return res.exit, verdictApprove
			}
			return -1, verdictFailed
		},
		notifyPath: path,
		notify: func(title, text string) ([]string, []string) {
			return []string{"--title", title, "--passivepopup", text, "15"}, nil
		},
		indicator: func(title, text string) ([]string, []string) {
			return []string{"--title", title, "--ok-label", "End session", "--msgbox", text}, nil
		},
	}
}

// escapeMarkup escapes text for Pango markup (notification bodies).
func escapeMarkup(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&#39;", `"`, "&quot;").Replace(s)
}
