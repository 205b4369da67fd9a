//go:build unix

package consent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/internal/wire"
)

// These tests put the desktop question (Allow full control / View only /
// Deny) through the real backends, the way the restart question's tests do:
// an exec program, the terminal and the web page's API here; the helper
// protocol and the dialog tools in viewonly_helper_test.go; the page in
// Chromium in viewonly_chromium_test.go.

// viewOnlyScript is an exec consent program that records what it is sent
// (one JSON line each) and answers by the reason.
func viewOnlyScript(t *testing.T) (script, seen string) {
	dir := t.TempDir()
	seen = filepath.Join(dir, "seen")
	script = writeScript(t, dir, "ask.sh", fmt.Sprintf(`in=$(cat); echo "$in" >> %q
echo by=bob
case "$in" in
  *'"reason":"view"'*) echo choice=view-only; exit 0;;
  *'"reason":"full"'*) exit 0;;
  *'"reason":"restart"'*) echo choice=now; exit 0;;
  *'"reason":"junk"'*) echo choice=everything; exit 0;;
esac
echo "not now" >&2
exit 1
`, seen))
	return script, seen
}

// lastMessage is the latest request the exec program was sent.
func lastMessage(t *testing.T, seen string) execMessage {
	t.Helper()
	lines := readLines(t, seen)
	var m execMessage
	if len(lines) == 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &m) != nil {
		t.Fatalf("the program got %q", lines)
	}
	return m
}

func TestViewOnlyThroughExec(t *testing.T) {
	script, seen := viewOnlyScript(t)
	c := start(t, execPolicy(ModePrompt, script), nil, options{})
	for _, tc := range []struct {
		name, reason string
		caps         []string
		approved     bool
		choice       string
		message      string
		desktop      string // what the program was told
	}{
		{"view only", "view", []string{wire.CapDesktop}, true, ChoiceViewOnly, "approved view only by " + script, DesktopControl},
		{"full control", "full", []string{wire.CapDesktop}, true, "", "approved by " + script, DesktopControl},
		{"deny", "no", []string{wire.CapDesktop}, false, "", "not now", DesktopControl},
		{"a restart choice on a session denies", "restart", []string{wire.CapDesktop}, false, "",
			`the answer carried choice "now", which a session request does not have (want view-only or none): denied`, DesktopControl},
		{"an unknown choice denies", "junk", []string{wire.CapDesktop}, false, "", `choice "everything"`, DesktopControl},
		{"view only without the screen: nothing to narrow", "view", []string{wire.CapSFTP}, true, "", "approved by " + script, ""},
		{"desktop-view alone is no question", "full", []string{wire.CapDesktopView}, true, "", "approved by " + script, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := c.Decide(context.Background(), desktopRequest("s-"+tc.reason, tc.reason, tc.caps...))
			if d.Approved != tc.approved || d.Choice != tc.choice || !strings.Contains(d.Message, tc.message) || d.By != "bob" {
				t.Fatalf("decision = %+v, want approved %v, choice %q, message %q", d, tc.approved, tc.choice, tc.message)
			}
			if m := lastMessage(t, seen); m.Desktop != tc.desktop || m.Kind != KindSession {
				t.Errorf("the program was told desktop %q (kind %q), want %q", m.Desktop, m.Kind, tc.desktop)
			}
		})
	}

	// A fix never gets a choice from the program's output.
	fix := desktopRequest("f-1", "view", wire.CapDesktop)
	fix.Kind, fix.Fix = KindFix, "script clear-cache 1.0"
	if d := c.Decide(context.Background(), fix); !d.Approved || d.Choice != "" {
		t.Fatalf("fix decision = %+v, want approved without a choice", d)
	}
	if m := lastMessage(t, seen); m.Desktop != "" {
		t.Errorf("a fix was offered desktop %q", m.Desktop)
	}
}

// With the policy's desktop view-only, every approval of a request for the
// screen is view only, whoever gives it.
func TestViewOnlyPolicy(t *testing.T) {
	script, seen := viewOnlyScript(t)
	t.Run("prompt: the program is told, its plain approval is view only", func(t *testing.T) {
		p := execPolicy(ModePrompt, script)
		p.Desktop = DesktopViewOnly
		c := start(t, p, nil, options{})
		d := c.Decide(context.Background(), desktopRequest("p-1", "full", wire.CapDesktop))
		if !d.Approved || d.Choice != ChoiceViewOnly || d.Message != "approved view only by "+script {
			t.Fatalf("decision = %+v", d)
		}
		if m := lastMessage(t, seen); m.Desktop != DesktopViewOnly {
			t.Errorf("the program was told desktop %q, want view-only", m.Desktop)
		}
		if d := c.Decide(context.Background(), desktopRequest("p-2", "full", wire.CapSFTP)); !d.Approved || d.Choice != "" {
			t.Fatalf("a request without the screen: %+v", d)
		}
		if d := c.Decide(context.Background(), desktopRequest("p-3", "no", wire.CapDesktop)); d.Approved || d.Choice != "" {
			t.Fatalf("a denial: %+v", d)
		}
	})
	for _, mode := range []Mode{ModeUnattended, ModeNotify} {
		t.Run(string(mode), func(t *testing.T) {
			p := execPolicy(mode, script)
			p.Desktop = DesktopViewOnly
			c := start(t, p, nil, options{})
			before := len(readLines(t, seen))
			d := c.Decide(context.Background(), desktopRequest("m-1", "full", wire.CapDesktop))
			if !d.Approved || d.Choice != ChoiceViewOnly || d.By != ByPolicy || !strings.Contains(d.Message, "view only: the policy's desktop is view-only") {
				t.Fatalf("decision = %+v", d)
			}
			if d := c.Decide(context.Background(), desktopRequest("m-2", "full", wire.CapExec)); !d.Approved || d.Choice != "" {
				t.Fatalf("a request without the screen: %+v", d)
			}
			if n := len(readLines(t, seen)); n != before {
				t.Errorf("%s mode asked the program", mode)
			}
		})
	}
	t.Run("control (the default): unattended gives full control", func(t *testing.T) {
		c := start(t, execPolicy(ModeUnattended, script), nil, options{})
		if d := c.Decide(context.Background(), desktopRequest("u-1", "full", wire.CapDesktop)); !d.Approved || d.Choice != "" {
			t.Fatalf("decision = %+v", d)
		}
	})
	t.Run("a local administrator's approval", func(t *testing.T) {
		p := Policy{Mode: ModePrompt, Backend: "web", Timeout: 20 * time.Second, Desktop: DesktopViewOnly}
		c := start(t, p, nil, options{openBrowser: func(string) {}})
		ch := decideAsync(context.Background(), c, desktopRequest("l-1", "r", wire.CapDesktop))
		waitPending(t, c, 1)
		if err := c.AnswerLocal("l-1", true, "root"); err != nil {
			t.Fatal(err)
		}
		if d := await(t, ch, 5*time.Second); !d.Approved || d.Choice != ChoiceViewOnly || d.By != "root" {
			t.Fatalf("decision = %+v", d)
		}
	})
}

func TestViewOnlyRemembered(t *testing.T) {
	script, seen := viewOnlyScript(t)
	p := execPolicy(ModePrompt, script)
	p.Remember = time.Minute
	c := start(t, p, nil, options{})
	steps := []struct {
		name, reason string
		caps         []string
		choice       string
		asks         int // the program's count after this step
	}{
		{"view only is chosen", "view", []string{wire.CapDesktop}, ChoiceViewOnly, 1},
		{"seeing again is remembered", "full", []string{wire.CapDesktopView}, "", 1},
		{"full control asks again", "full", []string{wire.CapDesktop}, "", 2},
		{"a full-control approval covers seeing", "junk", []string{wire.CapDesktopView}, "", 2},
		{"and full control again", "junk", []string{wire.CapDesktop}, "", 2},
	}
	for i, st := range steps {
		d := c.Decide(context.Background(), desktopRequest(fmt.Sprint("g-", i), st.reason, st.caps...))
		if !d.Approved || d.Choice != st.choice {
			t.Fatalf("%s: decision %+v, want approved with choice %q", st.name, d, st.choice)
		}
		if n := len(readLines(t, seen)); n != st.asks {
			t.Fatalf("%s: the program was asked %d times in all, want %d", st.name, n, st.asks)
		}
	}

	// With the view-only policy a remembered approval is view only too.
	p.Desktop = DesktopViewOnly
	c2 := start(t, p, nil, options{})
	before := len(readLines(t, seen))
	for i, reason := range []string{"full", "junk"} {
		d := c2.Decide(context.Background(), desktopRequest(fmt.Sprint("v-", i), reason, wire.CapDesktop))
		if !d.Approved || d.Choice != ChoiceViewOnly {
			t.Fatalf("request %d: decision %+v, want view only", i, d)
		}
	}
	if n := len(readLines(t, seen)); n != before+1 {
		t.Fatalf("the program was asked %d times, want once", n-before)
	}
}

func TestViewOnlyTTY(t *testing.T) {
	for _, tc := range []struct {
		desktop, typed string
		approved       bool
		choice         string
		question       string
		text           string
	}{
		{DesktopControl, "v", true, ChoiceViewOnly, "Allow [f]ull control, [v]iew only, or [N]o? [N]",
			"View only: the technician sees your screen but cannot type or click."},
		{DesktopControl, "view only", true, ChoiceViewOnly, "[v]iew only", "  - see and control your screen"},
		{DesktopControl, "F", true, "", "[f]ull control", "Allow full control: the technician sees your screen and can type and click."},
		{DesktopControl, "", false, "", "[N]o? [N]", "see and control your screen"},
		{DesktopControl, "y", false, "", "[N]o? [N]", "see and control your screen"},
		{DesktopViewOnly, "y", true, ChoiceViewOnly, "Allow view only? [y/N]",
			"This computer's policy allows view only: the technician sees your screen but cannot type or click."},
		{DesktopViewOnly, "n", false, "", "Allow view only? [y/N]", "  - see your screen (view only)"},
	} {
		t.Run(tc.desktop+" typed "+tc.typed, func(t *testing.T) {
			tty := newFakeTTY()
			c := start(t, Policy{Backend: "tty", Timeout: 10 * time.Second, Desktop: tc.desktop}, nil, options{tty: tty})
			ch := decideAsync(context.Background(), c, desktopRequest("t-1", "INC-7", wire.CapDesktop))
			waitFor(t, "the prompt", 5*time.Second, func() bool { return strings.Contains(tty.screen(), tc.question) })
			tty.typeLine(t, tc.typed)
			d := await(t, ch, 5*time.Second)
			if d.Approved != tc.approved || d.Choice != tc.choice || d.By != currentUser() {
				t.Errorf("decision = %+v", d)
			}
			screen := tty.screen()
			if !strings.Contains(screen, tc.text) {
				t.Errorf("the prompt does not say %q:\n%s", tc.text, screen)
			}
			if tc.desktop == DesktopViewOnly && strings.Contains(screen, "control your screen") {
				t.Errorf("the view-only prompt offers control:\n%s", screen)
			}
		})
	}
}

func TestViewOnlyWebAPI(t *testing.T) {
	c, _ := webConsent(t, ModePrompt, 20*time.Second, nil)
	ch := decideAsync(context.Background(), c, desktopRequest("w-1", "INC-8", wire.CapDesktop))
	s := waitPending(t, c, 1)
	if p := s.Pending[0]; p.Desktop != DesktopControl || !strings.Contains(p.DesktopText, "View only: the technician sees your screen but cannot type or click.") ||
		p.Capabilities[1].Text != "see and control your screen" {
		t.Fatalf("pending = %+v", p)
	}
	for _, bad := range []map[string]any{
		{"session_id": "w-1", "approve": true, "choice": "now"},
		{"session_id": "w-1", "approve": true, "choice": "control"},
	} {
		if code, body := api(t, c, "POST", "/api/answer", bad); code != http.StatusBadRequest || !strings.Contains(body, "want view-only or none") {
			t.Errorf("answer %v: %d %s", bad, code, body)
		}
	}
	if code, body := api(t, c, "POST", "/api/answer", map[string]any{"session_id": "w-1", "approve": true, "choice": "view-only"}); code != http.StatusOK {
		t.Fatalf("answer: %d %s", code, body)
	}
	if d := await(t, ch, 5*time.Second); !d.Approved || d.Choice != ChoiceViewOnly || d.Message != "approved view only by the user in the consent page" {
		t.Fatalf("decision = %+v", d)
	}
	// A denial with a choice is a denial.
	ch = decideAsync(context.Background(), c, desktopRequest("w-2", "INC-8", wire.CapDesktop))
	waitPending(t, c, 1)
	api(t, c, "POST", "/api/answer", map[string]any{"session_id": "w-2", "approve": false, "choice": "view-only"})
	if d := await(t, ch, 5*time.Second); d.Approved || d.Choice != "" {
		t.Fatalf("decision = %+v", d)
	}

	// View only on a request without the screen: nothing to narrow.
	ch = decideAsync(context.Background(), c, desktopRequest("w-5", "INC-8", wire.CapSFTP))
	if p := waitPending(t, c, 1).Pending[0]; p.Desktop != "" || p.DesktopText != "" {
		t.Fatalf("pending without the screen = %+v", p)
	}
	api(t, c, "POST", "/api/answer", map[string]any{"session_id": "w-5", "approve": true, "choice": "view-only"})
	if d := await(t, ch, 5*time.Second); !d.Approved || d.Choice != "" || d.Message != "approved by the user in the consent page" {
		t.Fatalf("decision = %+v", d)
	}

	// The view-only policy: the page offers view only, and Approve means it.
	p := Policy{Mode: ModePrompt, Backend: "web", Timeout: 20 * time.Second, Desktop: DesktopViewOnly}
	c2 := start(t, p, nil, options{openBrowser: func(string) {}})
	ch = decideAsync(context.Background(), c2, desktopRequest("w-3", "INC-9", wire.CapDesktop))
	s = waitPending(t, c2, 1)
	if p := s.Pending[0]; p.Desktop != DesktopViewOnly || p.Capabilities[1].Text != "see your screen (view only)" ||
		!strings.Contains(p.DesktopText, "policy allows view only") {
		t.Fatalf("pending = %+v", p)
	}
	api(t, c2, "POST", "/api/answer", map[string]any{"session_id": "w-3", "approve": true})
	if d := await(t, ch, 5*time.Second); !d.Approved || d.Choice != ChoiceViewOnly || d.Message != "approved view only by the user in the consent page" {
		t.Fatalf("decision = %+v", d)
	}
}
