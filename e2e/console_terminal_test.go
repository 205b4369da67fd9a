package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/patchbay/patchbay/internal/asciicast"
)

// The console's terminal: SSH in the browser (our Go client compiled to
// WebAssembly, its key made in the page), over the same session websocket
// as patchbay ssh, with the agent's consent (the exec: backend), host
// certificate check and recording unchanged.
func TestConsoleTerminal(t *testing.T) {
	for _, f := range []string{"webssh.wasm", "wasm_exec.js", "xterm.mjs", "addon-fit.mjs", "xterm.css"} {
		if _, err := os.Stat(filepath.Join("..", "server", "console", "web", "vendor", f)); err != nil {
			t.Fatalf("the console's built files are missing (%v): run make web (make build and make test do)", err)
		}
	}
	browser := startBrowser(t)
	f := newSessionFleet(t)
	p := newPage(t, browser)
	p.run(t, chromedp.Navigate(strings.TrimSpace(f.alice.Run("console", "--no-open"))))
	row := fmt.Sprintf(`document.querySelector('tr[data-id="%s"]')`, f.agent.ID)
	p.waitJS(t, "the agent's row", row+` !== null && `+row+`.dataset.online === 'true'`)

	t.Run("echo through the browser's SSH client", func(t *testing.T) {
		p.run(t, chromedp.Click(`tr[data-id="`+f.agent.ID+`"] [data-action="terminal"]`))
		p.waitJS(t, "the terminal form", `document.querySelector('#term-form') !== null`)
		// A reason is required, in the page as on the relay.
		p.run(t, chromedp.Click("#term-connect"))
		p.waitJS(t, "the reason required", `document.querySelector('#term-status').textContent.includes('reason is required')`)
		p.run(t, chromedp.SendKeys("#term-reason", "INC-42 check the shell"),
			chromedp.Click("#term-connect"))
		p.waitJS(t, "the session approved", `document.querySelector('#term-status').dataset.state === 'approved'`)
		p.waitJS(t, "a prompt", `document.querySelector('#terminal .xterm-rows') !== null && document.querySelector('#terminal .xterm-rows').textContent.trim() !== ''`)
		p.typeInto(t, "#terminal .xterm-helper-textarea", "echo $((6*7))\r")
		p.waitJS(t, "42 in the terminal", `[...document.querySelectorAll('#terminal .xterm-rows > div')].some((d) => d.textContent.trim() === '42')`)
		p.screenshot(t, "terminal")
		id := p.str(t, `document.querySelector('#term-status').dataset.session`)
		p.typeInto(t, "#terminal .xterm-helper-textarea", "exit\r")
		p.waitJS(t, "the session ended", `document.querySelector('#term-status').dataset.state === 'ended'`)
		p.screenshot(t, "terminal-ended")
		if msg := p.str(t, `document.querySelector('#term-status').textContent`); !strings.Contains(msg, "ended") {
			t.Errorf("status after exit = %q", msg)
		}
		// The relay bridged bytes it cannot read: it certified the page's
		// public key (audited) and the recording comes from the agent.
		waitFor(t, 10*time.Second, "recording stored", func() bool {
			for _, s := range f.admin.sessions(t) {
				if s.ID == id && s.RecordingSize > 0 && s.Ended != nil {
					return true
				}
			}
			return false
		})
		// The output as the terminal showed it, whatever way its bytes were
		// split into events.
		cast := f.admin.Run("sessions", "recording", id)
		var shown, typed strings.Builder
		if _, err := asciicast.Parse(strings.NewReader(cast), func(e asciicast.Event) error {
			switch e.Type {
			case "o":
				shown.WriteString(e.Data)
			case "i":
				typed.WriteString(e.Data)
			}
			return nil
		}); err != nil {
			t.Fatalf("recording: %v", err)
		}
		if !strings.Contains(shown.String(), "\r42\r\n") && !strings.Contains(shown.String(), "\n42\r\n") || !strings.Contains(typed.String(), "echo $((6*7))") {
			t.Errorf("recording lacks the command and its output:\n%s", tail(cast, 1000))
		}
		if out := f.admin.Run("audit", "list"); !strings.Contains(out, "ssh-cert.issue") {
			t.Errorf("audit log lacks the browser's certificate:\n%s", tail(out, 2000))
		}
	})

	t.Run("a denied session shows the user's reason", func(t *testing.T) {
		f.setAnswer(t, "deny")
		p.run(t, chromedp.Navigate(f.r.URL+"/#/fleet"))
		p.waitJS(t, "the agent's row", row+` !== null && `+row+`.dataset.online === 'true'`)
		p.run(t, chromedp.Click(`tr[data-id="`+f.agent.ID+`"] [data-action="terminal"]`))
		p.waitJS(t, "the terminal form", `document.querySelector('#term-form') !== null`)
		p.run(t, chromedp.SendKeys("#term-reason", "INC-43"), chromedp.Click("#term-connect"))
		p.waitJS(t, "the session denied", `document.querySelector('#term-status').dataset.state === 'denied'`)
		p.screenshot(t, "terminal-denied")
		if msg := p.str(t, `document.querySelector('#term-status').textContent`); !strings.Contains(msg, "not now, I am presenting") {
			t.Errorf("denied status = %q, want the user's reason", msg)
		}
	})
}

// typeInto focuses sel and types text as one keyDown (with its text) and
// keyUp a key, as a keyboard does: chromedp.SendKeys adds a char event,
// which xterm.js takes as a second keystroke.
func (p *page) typeInto(t *testing.T, sel, text string) {
	t.Helper()
	keys := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, r := range text {
			key, code, vk := string(r), "", int64(0)
			if r == '\r' {
				key, code, vk = "Enter", "Enter", 13
			}
			for _, ev := range []input.DispatchKeyEventParams{
				{Type: input.DispatchKeyEventTypeKeyDown, Key: key, Code: code, WindowsVirtualKeyCode: vk, Text: string(r)},
				{Type: input.DispatchKeyEventTypeKeyUp, Key: key, Code: code, WindowsVirtualKeyCode: vk},
			} {
				if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, ev); err != nil {
					return err
				}
			}
		}
		return nil
	})
	p.run(t, chromedp.Focus(sel), keys)
}
