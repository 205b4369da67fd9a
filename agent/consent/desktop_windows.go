//go:build windows

package consent

import (
	"errors"
	"os/exec"
	"strconv"
	"time"
)

// The PowerShell scripts read their text from environment variables, so
// nothing the technician wrote is ever parsed as code. WScript.Shell's Popup
// has a timeout (a MessageBox has none): it returns 6 for Yes, 7 for No and -1
// when it gives up. Flags: 4 Yes/No, 32 question icon, 256 No is the default,
// 4096 system modal (on top).
//
// Written but untested: an agent running as a Windows service lives in
// session 0 and cannot show a dialog on the user's desktop; there the helper
// backend runs these dialogs from a helper the service launches in the
// user's session (helperlaunch_windows.go).
const (
	psQuestion = `$r = (New-Object -ComObject WScript.Shell).Popup($env:PATCHBAY_CONSENT_TEXT, [int]$env:PATCHBAY_CONSENT_SECONDS, $env:PATCHBAY_CONSENT_TITLE, 4 + 32 + 256 + 4096); if ($r -eq 6) { exit 0 } elseif ($r -eq -1) { exit 5 } else { exit 1 }`
	// A three-way question: Yes/No/Cancel (3) read as its three buttons
	// (Restart now / In 1 hour / Tonight, or Allow full control / View only
	// / Deny), which the text says; Cancel (and closing) is the default
	// (512: third button).
	psChoice = `$r = (New-Object -ComObject WScript.Shell).Popup($env:PATCHBAY_CONSENT_TEXT, [int]$env:PATCHBAY_CONSENT_SECONDS, $env:PATCHBAY_CONSENT_TITLE, 3 + 48 + 512 + 4096); if ($r -eq 6) { exit 0 } elseif ($r -eq 7) { exit 10 } elseif ($r -eq -1) { exit 5 } else { exit 11 }`
	// The live-session indicator: a small always-on-top window with one
	// button, End session (exit 0); closing it otherwise exits 1.
	psIndicator = `Add-Type -AssemblyName System.Windows.Forms; $f = New-Object System.Windows.Forms.Form; $f.Text = $env:PATCHBAY_CONSENT_TITLE; $f.TopMost = $true; $f.AutoSize = $true; $f.AutoSizeMode = 'GrowAndShrink'; $f.Padding = 12; $p = New-Object System.Windows.Forms.FlowLayoutPanel; $p.FlowDirection = 'TopDown'; $p.AutoSize = $true; $l = New-Object System.Windows.Forms.Label; $l.Text = $env:PATCHBAY_CONSENT_TEXT; $l.AutoSize = $true; $l.MaximumSize = New-Object System.Drawing.Size(420, 0); $b = New-Object System.Windows.Forms.Button; $b.Text = 'End session'; $b.AutoSize = $true; $b.DialogResult = 'OK'; $p.Controls.Add($l); $p.Controls.Add($b); $f.Controls.Add($p); $f.AcceptButton = $b; if ($f.ShowDialog() -eq 'OK') { exit 0 } else { exit 1 }`
	psNotify    = `$null = (New-Object -ComObject WScript.Shell).Popup($env:PATCHBAY_CONSENT_TEXT, 10, $env:PATCHBAY_CONSENT_TITLE, 64 + 4096)`
)

// findDialog uses Windows PowerShell, else PowerShell 7.
func findDialog() (*dialogTool, error) {
	p, err := exec.LookPath("powershell.exe")
	if err != nil {
		if p, err = exec.LookPath("pwsh.exe"); err != nil {
			return nil, errors.New("desktop backend: PowerShell not found; use --consent-backend web")
		}
	}
	args := func(script string) []string {
		return []string{"-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", script}
	}
	return &dialogTool{
		name: "powershell",
		path: p,
		question: func(title, text, yes string, timeout time.Duration) ([]string, []string) {
			if yes != labelAllow {
				text += "\n\nYes: " + yes + ". No: " + labelDeny + "."
			}
			return args(psQuestion), []string{"PATCHBAY_CONSENT_TITLE=" + title, "PATCHBAY_CONSENT_TEXT=" + text,
				"PATCHBAY_CONSENT_SECONDS=" + strconv.Itoa(timeoutSeconds(timeout))}
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
		choice: func(title, text string, b buttons, timeout time.Duration) ([]string, []string) {
			text += "\n\nYes: " + b[0] + ". No: " + b[1] + ". Cancel: " + b[2] + "."
			return args(psChoice), []string{"PATCHBAY_CONSENT_TITLE=" + title, "PATCHBAY_CONSENT_TEXT=" + text,
				"PATCHBAY_CONSENT_SECONDS=" + strconv.Itoa(timeoutSeconds(timeout))}
		},
		chosen: func(res progResult, _ buttons) (int, verdict) {
			switch res.exit {
			case 0:
				return 0, verdictApprove
			case 10:
				return 1, verdictApprove
			case 11:
				return 2, verdictApprove
			case 5:
				return -1, verdictGaveUp
			}
			return -1, verdictFailed
		},
		indicator: func(title, text string) ([]string, []string) {
			return args(psIndicator), []string{"PATCHBAY_CONSENT_TITLE=" + title, "PATCHBAY_CONSENT_TEXT=" + text}
		},
		notifyPath: p,
		notify: func(title, text string) ([]string, []string) {
			return args(psNotify), []string{"PATCHBAY_CONSENT_TITLE=" + title, "PATCHBAY_CONSENT_TEXT=" + text}
		},
	}, nil
}
