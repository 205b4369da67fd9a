//go:build unix && !darwin

package consent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeDesktop puts stand-ins for dialog tools on PATH (the real ones need a
// display and a person). Each records its arguments in DIR/NAME.args and
// exits with the status in DIR/NAME.exit (0 if absent) after sleeping the
// seconds in DIR/NAME.sleep.
func fakeDesktop(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range tools {
		writeScript(t, dir, name, fmt.Sprintf(`PATH=/usr/bin:/bin
d=%q
for a in "$@"; do printf '%%s\n' "$a"; done > "$d/%s.args"
[ -f "$d/%s.sleep" ] && sleep "$(cat "$d/%s.sleep")"
[ -f "$d/%s.stderr" ] && cat "$d/%s.stderr" >&2
exit "$(cat "$d/%s.exit" 2>/dev/null || echo 0)"
`, dir, name, name, name, name, name, name))
	}
	t.Setenv("PATH", dir)
	t.Setenv("DISPLAY", ":99")
	t.Setenv("WAYLAND_DISPLAY", "")
	return dir
}

func TestDesktopZenity(t *testing.T) {
	tests := []struct {
		exit     string
		approved bool
		by       string
		message  string
	}{
		{"0", true, currentUser(), "approved by the user in a zenity dialog"},
		{"1", false, currentUser(), "denied by the user"},
		{"255", false, ByAgent, "desktop dialog zenity failed (exit 255): cannot open display"},
	}
	for _, tt := range tests {
		t.Run("exit "+tt.exit, func(t *testing.T) {
			dir := fakeDesktop(t, "zenity")
			writeFile(t, filepath.Join(dir, "zenity.exit"), tt.exit, 0o600)
			writeFile(t, filepath.Join(dir, "zenity.stderr"), "cannot open display\n", 0o600)
			c := start(t, Policy{Backend: "desktop", Timeout: 20 * time.Second}, nil, options{openBrowser: func(string) {}})
			if c.URL() == "" {
				t.Error("the desktop backend serves no page to end sessions from")
			}
			d := c.Decide(context.Background(), testRequest("z1", "bob", "<b>urgent</b> & more", time.Time{}))
			if d.Approved != tt.approved || d.By != tt.by || d.Message != tt.message || d.Backend != "desktop" {
				t.Errorf("decision = %+v", d)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "zenity.args"))
			args := string(b)
			for _, want := range []string{"--question\n", "--no-markup\n", "--ok-label=Allow\n", "--cancel-label=Deny\n",
				"--default-cancel\n", "--timeout=21\n", "Technician bob asks for a remote session on desk-42.",
				"Reason: <b>urgent</b> & more", "  - copy files to and from this machine"} {
				if !strings.Contains(args, want) {
					t.Errorf("zenity arguments lack %q:\n%s", want, args)
				}
			}
		})
	}
}

// zenity giving up by itself is a timeout, reported at the agent's deadline.
func TestDesktopZenityGivesUp(t *testing.T) {
	dir := fakeDesktop(t, "zenity")
	writeFile(t, filepath.Join(dir, "zenity.exit"), "5", 0o600)
	c := start(t, Policy{Backend: "desktop", Timeout: time.Second}, nil, options{})
	d := c.Decide(context.Background(), testRequest("z2", "bob", "why", time.Time{}))
	if d.Approved || d.By != ByTimeout || d.Message != "no answer within 1s" {
		t.Errorf("decision = %+v", d)
	}
}

// A dialog nobody answers is killed at the deadline.
func TestDesktopKilledAtDeadline(t *testing.T) {
	dir := fakeDesktop(t, "kdialog")
	writeFile(t, filepath.Join(dir, "kdialog.sleep"), "30", 0o600)
	c := start(t, Policy{Backend: "desktop", Timeout: time.Second}, nil, options{})
	began := time.Now()
	d := c.Decide(context.Background(), testRequest("k1", "bob", "why", time.Time{}))
	if d.Approved || d.By != ByTimeout || time.Since(began) > 5*time.Second {
		t.Errorf("decision = %+v after %s", d, time.Since(began))
	}
	b, _ := os.ReadFile(filepath.Join(dir, "kdialog.args"))
	if !strings.HasPrefix(string(b), "--title\n"+promptTitle+"\n--yes-label\nAllow\n--no-label\nDeny\n--yesno\nTechnician bob") {
		t.Errorf("kdialog arguments:\n%s", b)
	}
}

// The web page answers too; the dialog is then closed.
func TestDesktopAnsweredInPage(t *testing.T) {
	dir := fakeDesktop(t, "zenity")
	writeFile(t, filepath.Join(dir, "zenity.sleep"), "30", 0o600)
	c := start(t, Policy{Backend: "desktop", Timeout: 20 * time.Second}, nil, options{})
	ch := decideAsync(context.Background(), c, testRequest("z3", "bob", "why", time.Time{}))
	waitPending(t, c, 1)
	api(t, c, "POST", "/api/answer", map[string]any{"session_id": "z3", "approve": true})
	if d := await(t, ch, 5*time.Second); !d.Approved {
		t.Errorf("decision = %+v", d)
	}
}

func TestDesktopNotify(t *testing.T) {
	dir := fakeDesktop(t, "zenity", "notify-send")
	c := start(t, Policy{Mode: ModeNotify, Backend: "desktop"}, nil, options{})
	c.Started(Live{ID: "z4", Technician: "bob", Reason: "<i>secret</i>", Capabilities: []string{"shell"}})
	args := filepath.Join(dir, "notify-send.args")
	waitFor(t, "a notification", 5*time.Second, func() bool { return fileContains(args, "started a remote session") })
	b, _ := os.ReadFile(args)
	if !strings.Contains(string(b), "--\nPatchbay remote session\nTechnician bob started a remote session on this computer and can open an interactive shell. To end it, open "+c.URL()) {
		t.Errorf("notify-send arguments:\n%s", b)
	}
	if strings.Contains(string(b), "secret") {
		t.Error("the notification carries the technician's reason")
	}
	c.Ended("z4", "a <b>bold</b> end")
	waitFor(t, "the end notification", 5*time.Second, func() bool { return fileContains(args, "ended: a &lt;b&gt;bold&lt;/b&gt; end.") })
}

func TestDesktopUnavailable(t *testing.T) {
	fakeDesktop(t) // an empty PATH
	_, err := New(Policy{Backend: "desktop"}, nil, testLogger(t))
	if err == nil || err.Error() != "desktop backend: neither zenity nor kdialog found; install one or use --consent-backend web" {
		t.Errorf("New without a dialog tool: %v", err)
	}
	fakeDesktop(t, "zenity")
	t.Setenv("DISPLAY", "")
	if _, err = New(Policy{Backend: "desktop"}, nil, testLogger(t)); err == nil || !strings.Contains(err.Error(), "no display") {
		t.Errorf("New without a display: %v", err)
	}
	// auto falls back to the helpers in users' sessions as root (a
	// service), else to the web page.
	c := start(t, Policy{Backend: "auto", HelperSocket: helperSocket(t)}, nil, options{sessions: tableSessions{}})
	switch {
	case autoHelper():
		if c.kind != "helper" {
			t.Errorf("auto without a display, as root, chose %q", c.kind)
		}
	case c.kind != "web" || c.URL() == "":
		t.Errorf("auto without a display chose %q", c.kind)
	}
}

func TestDesktopAutoPrefersDialog(t *testing.T) {
	fakeDesktop(t, "kdialog")
	c := start(t, Policy{Backend: "auto"}, nil, options{})
	if c.kind != "desktop" || c.desktop.tool.name != "kdialog" {
		t.Errorf("auto chose %q", c.kind)
	}
}

// In prompt mode the desktop backend also says how to end a session.
func TestDesktopPromptModeTellsHowToEnd(t *testing.T) {
	dir := fakeDesktop(t, "zenity")
	c := start(t, Policy{Backend: "desktop"}, nil, options{})
	c.Started(Live{ID: "z5", Technician: "bob", Capabilities: []string{"exec"}})
	args := filepath.Join(dir, "zenity.args")
	waitFor(t, "a notification", 5*time.Second, func() bool { return fileContains(args, "--notification") })
	if !fileContains(args, "To end it, open "+escapeMarkup(c.URL())) {
		b, _ := os.ReadFile(args)
		t.Errorf("zenity notification arguments:\n%s", b)
	}
}
