package consent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLoadPolicyMissingIsDefault(t *testing.T) {
	p, err := LoadPolicy(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{Mode: ModePrompt, Backend: "auto", Timeout: 60 * time.Second, WebAddr: "127.0.0.1:0",
		WhenNoUser: NoUserDeny, Ask: AskConsole, HelperSocket: DefaultHelperSocket, Reboot: RebootAsk, RebootTonight: "22:00",
		Desktop: DesktopControl}
	if p != want {
		t.Errorf("LoadPolicy = %+v, want %+v", p, want)
	}
}

func TestPolicyRoundTrip(t *testing.T) {
	tests := []Policy{
		{Mode: ModePrompt, Backend: "web", Timeout: 90 * time.Second, WebAddr: "127.0.0.1:7071", Remember: 15 * time.Minute},
		{Mode: ModeNotify, Backend: "exec:/usr/local/bin/ask", Timeout: 1500 * time.Millisecond, WebAddr: "[::1]:0"},
		{Mode: ModeUnattended, Backend: "auto", Timeout: time.Hour, WebAddr: "localhost:0"},
		{Mode: ModePrompt, Backend: "tty", Timeout: time.Second, WebAddr: "127.0.0.1:0"},
		{Mode: ModePrompt, Backend: "helper", Timeout: time.Minute, WebAddr: "127.0.0.1:0", WhenNoUser: NoUserNotify, Ask: AskAll, HelperSocket: "/run/pb/h.sock"},
		{Mode: ModePrompt, Backend: "web", Timeout: time.Minute, Desktop: DesktopViewOnly},
	}
	for _, want := range tests {
		t.Run(string(want.Mode)+"-"+want.Backend, func(t *testing.T) {
			dir := t.TempDir()
			if err := SavePolicy(dir, want); err != nil {
				t.Fatal(err)
			}
			got, err := LoadPolicy(dir)
			if err != nil {
				t.Fatal(err)
			}
			if want = want.withDefaults(); got != want {
				t.Errorf("round trip = %+v, want %+v", got, want)
			}
			st, err := os.Stat(filepath.Join(dir, "consent.json"))
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

func TestSavePolicyFormat(t *testing.T) {
	dir := t.TempDir()
	if err := SavePolicy(dir, Policy{Mode: ModeNotify}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["timeout"] != "60s" || m["mode"] != "notify" || m["backend"] != "auto" || m["desktop"] != "control" {
		t.Errorf("file = %s, want timeout \"60s\", mode notify, backend auto, desktop control", b)
	}
	// The view-only policy is read back from the file as written by hand.
	writeFile(t, filepath.Join(dir, FileName), `{"mode":"prompt","desktop":"view-only"}`, 0o600)
	if p, err := LoadPolicy(dir); err != nil || p.Desktop != DesktopViewOnly {
		t.Errorf("LoadPolicy of desktop view-only = %+v, %v", p, err)
	}
}

func TestLoadPolicyPartialFileTakesDefaults(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), `{"mode":"notify"}`, 0o600)
	p, err := LoadPolicy(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != ModeNotify || p.Backend != "auto" || p.Timeout != time.Minute || p.WebAddr != DefaultWebAddr || p.Desktop != DesktopControl {
		t.Errorf("LoadPolicy = %+v", p)
	}
}

func TestLoadPolicyErrors(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string // substrings of the error
	}{
		{"not JSON", `mode = prompt`, []string{"consent.json", "invalid character", "remove it to use the defaults"}},
		{"truncated", `{"mode":"prompt"`, []string{"consent.json", "unexpected EOF"}},
		{"unknown field", `{"mdoe":"notify"}`, []string{"consent.json", `unknown field "mdoe"`}},
		{"bad mode", `{"mode":"always"}`, []string{"consent.json", `"always"`, "prompt, notify or unattended"}},
		{"bad backend", `{"backend":"zenity"}`, []string{"consent.json", `"zenity"`, "auto, helper, desktop, web, tty or exec:/absolute/path"}},
		{"relative exec", `{"backend":"exec:ask.sh"}`, []string{"absolute path"}},
		{"bad when_no_user", `{"when_no_user":"ask"}`, []string{"consent.json", `when_no_user "ask"`, "deny, allow or notify"}},
		{"bad ask", `{"ask":"everyone"}`, []string{"consent.json", `ask "everyone"`, "console or all"}},
		{"relative helper socket", `{"helper_socket":"h.sock"}`, []string{"consent.json", "absolute path"}},
		{"bad timeout", `{"timeout":"soon"}`, []string{"consent.json", `"soon"`, "60s"}},
		{"numeric timeout", `{"timeout":60}`, []string{"consent.json", "timeout"}},
		{"timeout too short", `{"timeout":"100ms"}`, []string{"between 1s and 1h"}},
		{"timeout too long", `{"timeout":"2h"}`, []string{"between 1s and 1h"}},
		{"public web address", `{"web_addr":"0.0.0.0:8080"}`, []string{"not on the loopback interface"}},
		{"no host web address", `{"web_addr":":8080"}`, []string{"not on the loopback interface"}},
		{"trailing data", `{"mode":"prompt"} {}`, []string{"extra data"}},
		{"bad remember", `{"remember":"a while"}`, []string{"consent.json", `"a while"`, "15m"}},
		{"remember too long", `{"remember":"9h"}`, []string{"between 0 (off) and 8h0m0s"}},
		{"negative remember", `{"remember":"-1m"}`, []string{"between 0 (off)"}},
		{"bad desktop", `{"desktop":"view"}`, []string{"consent.json", `consent desktop "view"`, "want control", "or view-only"}},
		{"desktop with spaces", `{"desktop":" view-only"}`, []string{`consent desktop " view-only"`}},
		{"desktop not a string", `{"desktop":true}`, []string{"consent.json", "desktop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, FileName), tt.file, 0o600)
			_, err := LoadPolicy(dir)
			if err == nil {
				t.Fatal("LoadPolicy succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadPolicyRefusesWritableFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), `{"mode":"unattended"}`, 0o666)
	_, err := LoadPolicy(dir)
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("LoadPolicy of a 0666 file: %v", err)
	}
}

func TestSavePolicyRefusesInvalid(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []Policy{
		{Mode: "sometimes"},
		{Backend: "exec:relative"},
		{Timeout: time.Millisecond},
		{WebAddr: "192.0.2.1:80"},
		{Desktop: "none"},
	} {
		if err := SavePolicy(dir, p); err == nil {
			t.Errorf("SavePolicy(%+v) succeeded", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Errorf("an invalid policy was written (stat: %v)", err)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"prompt", "notify", "unattended", " notify "} {
		if _, err := ParseMode(s); err != nil {
			t.Errorf("ParseMode(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "Prompt", "auto", "yes"} {
		_, err := ParseMode(s)
		if err == nil || !strings.Contains(err.Error(), "prompt, notify or unattended") {
			t.Errorf("ParseMode(%q) = %v, want an error naming the modes", s, err)
		}
	}
}

func TestParseBackend(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"auto", "auto", ""},
		{"web", "web", ""},
		{"desktop", "desktop", ""},
		{"tty", "tty", ""},
		{" web ", "web", ""},
		{"exec:/usr/local/bin/ask", "exec:/usr/local/bin/ask", ""},
		{"exec:/usr/local/../bin/ask", "exec:/usr/bin/ask", ""},
		{"exec:", "", "absolute path"},
		{"exec:ask", "", "absolute path"},
		{"exec:./ask", "", "absolute path"},
		{"zenity", "", "want auto, helper, desktop, web, tty or exec:/absolute/path"},
		{"", "", "want auto"},
		{"WEB", "", "want auto"},
	}
	for _, tt := range tests {
		got, err := ParseBackend(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseBackend(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseBackend(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNewRejectsInvalidPolicy(t *testing.T) {
	if _, err := New(Policy{Mode: "maybe"}, nil, testLogger(t)); err == nil {
		t.Error("New accepted mode maybe")
	}
	_, err := New(Policy{Backend: "web", WebAddr: "0.0.0.0:0"}, nil, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("New with a public web address: %v, want a loopback error", err)
	}
}

// writeFile writes a test file with mode perm.
func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // umask
		t.Fatal(err)
	}
}
