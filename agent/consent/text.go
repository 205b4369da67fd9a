package consent

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/patchbay/patchbay/internal/wire"
)

// Bounds on text shown to the user (the wire protocol has the same or lower).
const (
	maxTechnician = wire.MaxTechnicianLen
	maxReason     = wire.MaxReasonLen
	maxMessage    = 200 // a program's stderr line in Decision.Message
)

// cleanText makes attacker-influenced text safe to show: invalid UTF-8,
// control characters and formatting characters (bidirectional overrides,
// zero-width characters) become U+FFFD, tabs and line breaks become spaces,
// and the result is cut to max bytes on a character boundary.
func cleanText(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\u2028' || r == '\u2029':
			r = ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.Is(unicode.Cf, r):
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// truncate cuts s to max bytes on a character boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// firstLine returns the first non-empty line of b, trimmed.
func firstLine(b []byte) string {
	for line := range strings.Lines(string(b)) {
		if s := strings.TrimSpace(line); s != "" {
			return s
		}
	}
	return ""
}

// capText says what a capability lets a technician do.
func capText(c string) string {
	if t, ok := wire.CapabilityText[c]; ok {
		return t
	}
	return c + " (unknown capability)"
}

// capTexts maps each capability to its plain words.
func capTexts(caps []string) map[string]string {
	m := make(map[string]string, len(caps))
	for _, c := range caps {
		m[c] = capText(c)
	}
	return m
}

// capList lists capabilities in plain words on one line.
func capList(caps []string) string {
	if len(caps) == 0 {
		return "nothing named"
	}
	words := make([]string, len(caps))
	for i, c := range caps {
		words[i] = capText(c)
	}
	return strings.Join(words, ", ")
}

// promptTitle is the title of a dialog or notification.
const promptTitle = "Patchbay: remote session request"

// promptTitleFor is the title of req's dialog.
func promptTitleFor(req Request) string {
	switch req.kind() {
	case KindFix:
		return "Patchbay: a fix asks to run"
	case KindReboot:
		return "Patchbay: a fix asks to restart this computer"
	}
	return promptTitle
}

// promptText is the question of a dialog or terminal prompt. Its first line
// holds no user-controlled text other than the technician's name (letters,
// digits and _.@- on the wire), so that no toolkit takes it for markup.
func promptText(req Request, now time.Time) string {
	var b strings.Builder
	reason := req.Reason
	if reason == "" {
		reason = "(none given)"
	}
	left := formatWindow(req.Deadline.Sub(now).Round(time.Second)) + " (by " + req.Deadline.Local().Format(time.TimeOnly) + ")"
	switch req.kind() {
	case KindReboot:
		tonight := "tonight"
		if req.Tonight != "" {
			tonight += " at " + req.Tonight
		}
		fmt.Fprintf(&b, "A fix that technician %s ran on %s needs to restart this computer.\n\n", orSomeone(req.Technician), req.Hostname)
		fmt.Fprintf(&b, "Fix: %s\n\nReason: %s\n\n", req.Fix, reason)
		fmt.Fprintf(&b, "Restart now, in 1 hour, or %s? Save your work first.\n\n", tonight)
		fmt.Fprintf(&b, "Run %s.\n", req.SessionID)
		fmt.Fprintf(&b, "If you do not answer within %s, it restarts %s.", left, tonight)
		return b.String()
	case KindFix:
		fmt.Fprintf(&b, "Technician %s asks to run a fix on %s.\n\n", orSomeone(req.Technician), req.Hostname)
		fmt.Fprintf(&b, "Fix: %s\n\nReason: %s\n\n", req.Fix, reason)
		fmt.Fprintf(&b, "Run %s.\n", req.SessionID)
		fmt.Fprintf(&b, "If you do not answer within %s, it does not happen.", left)
		return b.String()
	}
	fmt.Fprintf(&b, "Technician %s asks for a remote session on %s.\n\n", req.Technician, req.Hostname)
	fmt.Fprintf(&b, "Reason: %s\n\nThey will be able to:\n", reason)
	for _, c := range promptCaps(req) {
		fmt.Fprintf(&b, "  - %s\n", capText(c))
	}
	if t := desktopPromptText(req); t != "" {
		fmt.Fprintf(&b, "\n%s\n", t)
	}
	fmt.Fprintf(&b, "\nSession %s.\n", req.SessionID)
	fmt.Fprintf(&b, "If you do not answer within %s, the request is denied.", left)
	return b.String()
}

// sortLive orders live sessions by start, then ID.
func sortLive(l []Live) {
	slices.SortFunc(l, func(a, b Live) int {
		return cmp.Or(a.Started.Compare(b.Started), cmp.Compare(a.ID, b.ID))
	})
}

// formatWindow writes a prompt window in whole seconds ("60s"), or with a
// tenth of a second below 10s ("1.5s").
func formatWindow(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < 10*time.Second && d%time.Second != 0:
		return d.Round(100 * time.Millisecond).String()
	default:
		return fmt.Sprintf("%ds", int((d+time.Second/2)/time.Second))
	}
}
