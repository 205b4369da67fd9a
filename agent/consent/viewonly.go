package consent

import (
	"fmt"
	"slices"

	"github.com/patchbay/patchbay/internal/wire"
)

// View only: a session request that asks for wire.CapDesktop (see and
// control the screen) gets three answers wherever the person is asked:
// Allow (full control), View only (Decision.Choice ChoiceViewOnly: the
// agent's session manager grants wire.CapDesktopView instead) and Deny.
// The endpoint policy's Desktop (DesktopViewOnly) allows view only and
// nothing more: every approval of such a request, whoever or whatever
// gives it (a person, notify or unattended mode, a remembered approval,
// when_no_user), then carries ChoiceViewOnly, and the prompt offers only
// "Allow view only" and "Deny".
//
// An answer to a session request that carries any other choice (a restart
// choice, or a value this agent does not know, from a helper or an exec
// program) is a denial that says so: a choice the agent cannot read is
// never taken for full control, and guessing "view only" would hand out
// access the person may not have meant either.

// Values of Policy.Desktop.
const (
	DesktopControl  = "control"   // default: the person chooses full control or view only
	DesktopViewOnly = "view-only" // the screen may be seen, never controlled
)

// ParseDesktop checks a desktop policy value.
func ParseDesktop(s string) (string, error) {
	switch s {
	case DesktopControl, DesktopViewOnly:
		return s, nil
	}
	return "", fmt.Errorf("consent desktop %q: want control (the person chooses full control or view only) or view-only (the screen may only be seen)", s)
}

// Labels of the desktop question's answers.
const (
	labelControl       = "Allow full control"
	labelViewOnly      = "View only"
	labelDeny          = "Deny"
	labelAllow         = "Allow"
	labelAllowViewOnly = "Allow view only"
)

// viewOnlyText explains the View only answer.
const viewOnlyText = "the technician sees your screen but cannot type or click"

// asksDesktop reports whether req is a session request for wire.CapDesktop.
func (r Request) asksDesktop() bool {
	return r.kind() == KindSession && slices.Contains(r.Capabilities, wire.CapDesktop)
}

// desktopOffer is what the prompt of req offers for the screen: "" (no
// desktop question: Allow / Deny), DesktopControl (Allow full control /
// View only / Deny) or DesktopViewOnly (Allow view only / Deny).
func (c *Consent) desktopOffer(req Request) string {
	if !req.asksDesktop() {
		return ""
	}
	return c.policy.Desktop
}

// yesLabel is the approving button of a two-way prompt for req.
func yesLabel(req Request) string {
	if req.desktop == DesktopViewOnly {
		return labelAllowViewOnly
	}
	return labelAllow
}

// promptCaps are the capabilities as the prompt shows them: with the view
// only policy, the screen is offered as wire.CapDesktopView.
func promptCaps(req Request) []string {
	if req.desktop != DesktopViewOnly {
		return req.Capabilities
	}
	caps := make([]string, 0, len(req.Capabilities))
	for _, c := range req.Capabilities {
		if c == wire.CapDesktop {
			c = wire.CapDesktopView
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps
}

// desktopPromptText explains the desktop answers in the prompt ("" when
// there is no desktop question).
func desktopPromptText(req Request) string {
	switch req.desktop {
	case DesktopControl:
		return labelControl + ": the technician sees your screen and can type and click.\n" + labelViewOnly + ": " + viewOnlyText + "."
	case DesktopViewOnly:
		return "This computer's policy allows view only: " + viewOnlyText + "."
	}
	return ""
}

// checkChoice turns an answer to a session or fix request whose choice does
// not fit it into a denial; a view-only choice on a request that does not
// ask for the screen is dropped (there is nothing to narrow).
func checkChoice(req Request, a answer) answer {
	if req.kind() == KindReboot || !a.approved || a.choice == "" {
		if req.kind() != KindReboot {
			a.choice = ""
		}
		return a
	}
	if a.choice == ChoiceViewOnly && req.kind() == KindSession {
		if !req.asksDesktop() {
			a.choice = ""
		}
		return a
	}
	return answer{by: a.by, message: fmt.Sprintf("the answer carried choice %q, which a %s request does not have (want view-only or none): denied",
		cleanText(a.choice, 32), req.kind())}
}

// settleDesktop applies the desktop policy to a decision on req: with
// DesktopViewOnly every approval of a request for the screen is view only.
func (c *Consent) settleDesktop(req Request, d Decision) Decision {
	if req.kind() == KindReboot {
		return d
	}
	if !d.Approved || !req.asksDesktop() {
		d.Choice = ""
		return d
	}
	if c.policy.Desktop == DesktopViewOnly && d.Choice != ChoiceViewOnly {
		d.Choice = ChoiceViewOnly
		d.Message += " (view only: the policy's desktop is view-only)"
	}
	return d
}

// grantCaps are the capabilities a remembered approval of req covers: a
// view-only approval covers wire.CapDesktopView, not wire.CapDesktop.
func grantCaps(req Request, choice string) []string {
	caps := slices.Clone(req.Capabilities)
	if choice == ChoiceViewOnly {
		for i, c := range caps {
			if c == wire.CapDesktop {
				caps[i] = wire.CapDesktopView
			}
		}
	}
	slices.Sort(caps)
	return slices.Compact(caps)
}

// desktopAnswer is the answer of the three-way desktop question by the
// index of the button chosen (0 full control, 1 view only, 2 deny).
func desktopAnswer(i int, by, where string) answer {
	switch i {
	case 0:
		return answer{approved: true, by: by, message: "approved with full control by the user " + where}
	case 1:
		return answer{approved: true, choice: ChoiceViewOnly, by: by, message: "approved view only by the user " + where}
	}
	return answer{by: by, message: "denied by the user"}
}
