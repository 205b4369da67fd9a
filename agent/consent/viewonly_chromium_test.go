package consent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// desktopRequest asks for a shell and caps (wire.CapDesktop: the screen).
func desktopRequest(id, reason string, caps ...string) Request {
	r := testRequest(id, "alice@helpdesk", reason, time.Time{})
	r.Capabilities = append([]string{wire.CapShell}, caps...)
	return r
}

// The desktop question in the consent page, in a real browser: a request
// for the screen rendered by the server gets Allow full control / View only
// / Deny and is allowed view only; one rendered by the page's script is
// allowed full control; with the view-only policy the page offers only
// Allow view only / Deny.
func TestChromiumViewOnly(t *testing.T) {
	page := startChromium(t)
	c := start(t, Policy{Mode: ModePrompt, Backend: "web", Timeout: 60 * time.Second}, nil, options{openBrowser: func(string) {}})
	btn := func(action, id string) string {
		return `document.querySelector('button[data-action="` + action + `"][data-session="` + id + `"]')`
	}
	buttons := func(id string) string {
		return page.eval(t, `Array.from(document.querySelectorAll('li[data-session="`+id+`"] button')).map(b => b.textContent).join("|")`).(string)
	}

	first := decideAsync(context.Background(), c, desktopRequest("vo-1", "INC-1", wire.CapDesktop))
	waitPending(t, c, 1)
	page.navigate(t, c.URL())
	page.waitTrue(t, "the View only button", btn("view-only", "vo-1")+` !== null`)
	if got := buttons("vo-1"); got != "Allow full control|View only|Deny" {
		t.Errorf("server-rendered buttons %q", got)
	}
	text := page.eval(t, `document.querySelector('li[data-session="vo-1"]').innerText`).(string)
	for _, want := range []string{"see and control your screen", "View only: the technician sees your screen but cannot type or click."} {
		if !strings.Contains(text, want) {
			t.Errorf("the request does not say %q:\n%s", want, text)
		}
	}
	page.eval(t, btn("view-only", "vo-1")+`.click()`)
	if d := await(t, first, 10*time.Second); !d.Approved || d.Choice != ChoiceViewOnly || d.Backend != "web" {
		t.Fatalf("first decision = %+v, want view only", d)
	}

	// Rendered by the script while the page is open.
	second := decideAsync(context.Background(), c, desktopRequest("vo-2", "INC-2", wire.CapDesktop))
	page.waitTrue(t, "the second request", btn("view-only", "vo-2")+` !== null`)
	if got := buttons("vo-2"); got != "Allow full control|View only|Deny" {
		t.Errorf("script-rendered buttons %q", got)
	}
	if text := page.eval(t, `document.querySelector('li[data-session="vo-2"] .desktop-text').innerText`).(string); !strings.Contains(text, "cannot type or click") {
		t.Errorf("script-rendered explanation %q", text)
	}
	page.eval(t, btn("approve", "vo-2")+`.click()`)
	if d := await(t, second, 10*time.Second); !d.Approved || d.Choice != "" {
		t.Fatalf("second decision = %+v, want full control", d)
	}

	// Without the screen: the plain question.
	third := decideAsync(context.Background(), c, desktopRequest("vo-3", "INC-3", wire.CapSFTP))
	page.waitTrue(t, "the third request", btn("approve", "vo-3")+` !== null`)
	if got := buttons("vo-3"); got != "Approve|Deny" {
		t.Errorf("buttons without the screen %q", got)
	}
	page.eval(t, btn("deny", "vo-3")+`.click()`)
	if d := await(t, third, 10*time.Second); d.Approved {
		t.Fatalf("third decision = %+v", d)
	}

	// The view-only policy.
	c2 := start(t, Policy{Mode: ModePrompt, Backend: "web", Timeout: 60 * time.Second, Desktop: DesktopViewOnly}, nil, options{openBrowser: func(string) {}})
	fourth := decideAsync(context.Background(), c2, desktopRequest("vo-4", "INC-4", wire.CapDesktop))
	waitPending(t, c2, 1)
	page.navigate(t, c2.URL())
	page.waitTrue(t, "the fourth request", btn("approve", "vo-4")+` !== null`)
	if got := buttons("vo-4"); got != "Allow view only|Deny" {
		t.Errorf("view-only policy buttons %q", got)
	}
	text = page.eval(t, `document.querySelector('li[data-session="vo-4"]').innerText`).(string)
	if !strings.Contains(text, "see your screen (view only)") || !strings.Contains(text, "policy allows view only") || strings.Contains(text, "control your screen") {
		t.Errorf("the view-only request reads:\n%s", text)
	}
	page.eval(t, btn("approve", "vo-4")+`.click()`)
	if d := await(t, fourth, 10*time.Second); !d.Approved || d.Choice != ChoiceViewOnly {
		t.Fatalf("fourth decision = %+v, want view only", d)
	}
}
