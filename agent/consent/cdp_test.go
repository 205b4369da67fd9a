package consent

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/patchbay/patchbay/internal/testtool"
)

// A minimal Chrome DevTools Protocol client: enough to drive one page of a
// headless Chromium (navigate, evaluate, screenshot).

// chromiumBin is where CI installs Chromium (Debian's chromium package).
const chromiumBin = "/usr/bin/chromium"

// chromiumFlags keep a headless Chromium quiet, offline and self-contained.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
	"--disable-sync", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
	"--window-size=1000,1000", "--remote-debugging-port=0",
}

// cdpPage is a websocket to one page target.
type cdpPage struct {
	ws     *websocket.Conn
	nextID int
}

// startChromium starts Chromium and connects to its first page. It skips the
// test when Chromium is missing, or fails it with PATCHBAY_REQUIRE_TOOLS=1.
func startChromium(t *testing.T) *cdpPage {
	t.Helper()
	testtool.Need(t, chromiumBin, "chromium")
	profile := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromiumBin, append(chromiumFlags, "--user-data-dir="+profile, "about:blank")...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setProcessGroup(cmd) // Chromium's helpers join the group and die with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killProcessGroup(cmd.Process.Pid)
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("chromium output:\n%s", b)
		}
	})

	// Chromium writes the port it chose to DevToolsActivePort.
	var port string
	waitFor(t, "Chromium's DevTools port", 30*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		port, _, _ = strings.Cut(string(b), "\n")
		return err == nil && port != ""
	})
	var targets []struct{ Type, WebSocketDebuggerURL string }
	waitFor(t, "a page target", 10*time.Second, func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&targets) == nil && len(targets) > 0 && targets[0].WebSocketDebuggerURL != ""
	})
	for _, tg := range targets {
		if tg.Type != "page" {
			continue
		}
		ws, _, err := websocket.DefaultDialer.Dial(tg.WebSocketDebuggerURL, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", tg.WebSocketDebuggerURL, err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		return &cdpPage{ws: ws}
	}
	t.Fatalf("no page target in %+v", targets)
	return nil
}

// call sends one command and returns its result, skipping events.
func (p *cdpPage) call(method string, params any, result any) error {
	p.nextID++
	id := p.nextID
	_ = p.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := p.ws.WriteJSON(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	_ = p.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := p.ws.ReadJSON(&msg); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if msg.ID != id {
			continue // an event, or an earlier command's late answer
		}
		if msg.Error != nil {
			return fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(msg.Result, result)
	}
}

// eval evaluates a JavaScript expression in the page and returns its value.
func (p *cdpPage) eval(t *testing.T, expr string) any {
	t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluate %s: %s", expr, r.ExceptionDetails.Text)
	}
	return r.Result.Value
}

// waitTrue polls a JavaScript condition.
func (p *cdpPage) waitTrue(t *testing.T, what, expr string) {
	t.Helper()
	waitFor(t, what, 15*time.Second, func() bool { return p.eval(t, expr) == true })
}

// navigate loads url and waits for the document to be complete.
func (p *cdpPage) navigate(t *testing.T, url string) {
	t.Helper()
	if err := p.call("Page.navigate", map[string]any{"url": url}, nil); err != nil {
		t.Fatal(err)
	}
	p.waitTrue(t, "the page to load", `document.readyState === "complete" && location.href === `+jsString(url))
}

// screenshot captures the viewport as PNG.
func (p *cdpPage) screenshot(t *testing.T) []byte {
	t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	if err := p.call("Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
