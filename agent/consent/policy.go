package consent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// FileName is the policy file's name in the agent's data directory.
const FileName = "consent.json"

// Policy defaults and bounds.
const (
	DefaultMode    = ModePrompt
	DefaultBackend = "auto"
	DefaultTimeout = 60 * time.Second
	DefaultWebAddr = "127.0.0.1:0"
	MinTimeout     = time.Second
	MaxTimeout     = time.Hour
)

// Values of Policy.WhenNoUser: what a request gets when nobody is logged
// in at the machine to ask (helper backend).
const (
	NoUserDeny   = "deny"   // default: refused, "nobody is logged in at the machine"
	NoUserAllow  = "allow"  // approved without telling anyone
	NoUserNotify = "notify" // approved; whoever logs in meanwhile sees it in the indicator
)

// Values of Policy.Ask: who is asked when several users are logged in
// (helper backend).
const (
	AskConsole = "console" // default: the user at the console (seat0's active session)
	AskAll     = "all"     // every logged-in user with a helper; the first answer wins
)

// execPrefix starts an exec backend spec.
const execPrefix = "exec:"

// Policy is the agent's consent configuration, persisted in DATA/consent.json.
// Only local commands on the endpoint change it; the relay cannot.
type Policy struct {
	Mode    Mode   `json:"mode"`    // default prompt
	Backend string `json:"backend"` // "exec:/abs/path", "helper", "web", "desktop", "tty" or "auto" (default)
	// Timeout: no answer within it means deny; default 60s. Stored as a
	// duration string ("60s") in the JSON field "timeout".
	Timeout time.Duration `json:"-"`
	// WebAddr is the loopback address the web page listens on; default
	// "127.0.0.1:0" (a free port).
	WebAddr string `json:"web_addr,omitempty"`
	// Remember, in prompt mode, is how long an approval also covers later
	// requests from the same technician for the same or fewer capabilities
	// (0, the default: every request asks; at most MaxRemember). Stored as
	// a duration string in the JSON field "remember".
	Remember time.Duration `json:"-"`
	// WhenNoUser is what happens, with the helper backend, when nobody is
	// logged in at the machine to ask: NoUserDeny (default), NoUserAllow
	// or NoUserNotify. Servers and kiosks differ.
	WhenNoUser string `json:"when_no_user,omitempty"`
	// Ask is who is asked when several users are logged in: AskConsole
	// (default) or AskAll.
	Ask string `json:"ask,omitempty"`
	// HelperSocket is the unix socket helpers connect to; default
	// DefaultHelperSocket.
	HelperSocket string `json:"helper_socket,omitempty"`
	// Reboot is what happens when a fix that may reboot requires a
	// restart: RebootAsk (default), RebootNever or RebootForce (see
	// DecideReboot).
	Reboot string `json:"reboot,omitempty"`
	// RebootTonight is the clock time ("HH:MM", local) of a "tonight"
	// restart; default DefaultRebootTonight.
	RebootTonight string `json:"reboot_tonight,omitempty"`
	// RebootCommand is the absolute path of the organisation's own restart
	// program (see ScheduleReboot); empty: shutdown.
	RebootCommand string `json:"reboot_command,omitempty"`
	// Desktop is what a person may allow of a request for the screen
	// (wire.CapDesktop): DesktopControl (default: full control or view
	// only, as they choose) or DesktopViewOnly (every approval is view
	// only; see ChoiceViewOnly).
	Desktop string `json:"desktop,omitempty"`
}

// DefaultPolicy is the policy of an agent without a consent.json.
func DefaultPolicy() Policy {
	return Policy{Mode: DefaultMode, Backend: DefaultBackend, Timeout: DefaultTimeout, WebAddr: DefaultWebAddr,
		WhenNoUser: NoUserDeny, Ask: AskConsole, HelperSocket: DefaultHelperSocket,
		Reboot: RebootAsk, RebootTonight: DefaultRebootTonight, Desktop: DesktopControl}
}

// withDefaults fills the fields left empty.
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.Mode == "" {
		p.Mode = d.Mode
	}
	if p.Backend == "" {
		p.Backend = d.Backend
	}
	if p.Timeout == 0 {
		p.Timeout = d.Timeout
	}
	if p.WebAddr == "" {
		p.WebAddr = d.WebAddr
	}
	if p.WhenNoUser == "" {
		p.WhenNoUser = NoUserDeny
	}
	if p.Ask == "" {
		p.Ask = AskConsole
	}
	if p.HelperSocket == "" {
		p.HelperSocket = DefaultHelperSocket
	}
	if p.Reboot == "" {
		p.Reboot = RebootAsk
	}
	if p.RebootTonight == "" {
		p.RebootTonight = DefaultRebootTonight
	}
	if p.Desktop == "" {
		p.Desktop = DesktopControl
	}
	return p
}

// Validate checks every field; empty fields mean their defaults.
func (p Policy) Validate() error {
	p = p.withDefaults()
	if _, err := ParseMode(string(p.Mode)); err != nil {
		return err
	}
	if _, err := ParseBackend(p.Backend); err != nil {
		return err
	}
	if p.Timeout < MinTimeout || p.Timeout > MaxTimeout {
		return fmt.Errorf("consent timeout %s: want between 1s and 1h", p.Timeout)
	}
	if err := checkLoopback(p.WebAddr); err != nil {
		return err
	}
	if p.Remember < 0 || p.Remember > MaxRemember {
		return fmt.Errorf("consent remember %s: want between 0 (off) and %s", p.Remember, MaxRemember)
	}
	switch p.WhenNoUser {
	case NoUserDeny, NoUserAllow, NoUserNotify:
	default:
		return fmt.Errorf("consent when_no_user %q: want deny, allow or notify", p.WhenNoUser)
	}
	switch p.Ask {
	case AskConsole, AskAll:
	default:
		return fmt.Errorf("consent ask %q: want console or all", p.Ask)
	}
	if !filepath.IsAbs(p.HelperSocket) {
		return fmt.Errorf("consent helper_socket %q: want an absolute path", p.HelperSocket)
	}
	if _, err := ParseReboot(p.Reboot); err != nil {
		return err
	}
	if _, _, err := parseClock(p.RebootTonight); err != nil {
		return err
	}
	if _, err := ParseDesktop(p.Desktop); err != nil {
		return err
	}
	return checkRebootCommand(p.RebootCommand)
}

// ParseBackend checks a backend spec and returns it in canonical form:
// "exec:/abs/path", "helper", "web", "desktop", "tty" or "auto".
func ParseBackend(s string) (string, error) {
	s = strings.TrimSpace(s)
	if path, ok := strings.CutPrefix(s, execPrefix); ok {
		if path == "" || !filepath.IsAbs(path) {
			return "", fmt.Errorf("consent backend %q: exec needs an absolute path, e.g. exec:/usr/local/bin/ask-user", s)
		}
		return execPrefix + filepath.Clean(path), nil
	}
	switch s {
	case "web", "desktop", "tty", "auto", "helper":
		return s, nil
	}
	return "", fmt.Errorf("consent backend %q: want auto, helper, desktop, web, tty or exec:/absolute/path", s)
}

// checkLoopback accepts only listen addresses on the loopback interface.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("consent web address %q: %w (want e.g. 127.0.0.1:0)", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("consent web address %q: bad port", addr)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("consent web address %q is not on the loopback interface: the consent page must only be reachable from this machine (use 127.0.0.1:PORT or [::1]:PORT)", addr)
}

// policyJSON is the file format.
type policyJSON struct {
	Mode     Mode   `json:"mode"`
	Backend  string `json:"backend"`
	Timeout  string `json:"timeout"`
	WebAddr  string `json:"web_addr,omitempty"`
	Remember string `json:"remember,omitempty"`

	WhenNoUser   string `json:"when_no_user,omitempty"`
	Ask          string `json:"ask,omitempty"`
	HelperSocket string `json:"helper_socket,omitempty"`

	Reboot        string `json:"reboot,omitempty"`
	RebootTonight string `json:"reboot_tonight,omitempty"`
	RebootCommand string `json:"reboot_command,omitempty"`

	Desktop string `json:"desktop,omitempty"`
}

// MarshalJSON writes the timeout as a duration string.
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(policyJSON{Mode: p.Mode, Backend: p.Backend, Timeout: formatTimeout(p.Timeout), WebAddr: p.WebAddr,
		Remember: formatTimeout(p.Remember), WhenNoUser: p.WhenNoUser, Ask: p.Ask, HelperSocket: p.HelperSocket,
		Reboot: p.Reboot, RebootTonight: p.RebootTonight, RebootCommand: p.RebootCommand, Desktop: p.Desktop})
}

// UnmarshalJSON reads the timeout as a duration string ("60s", "2m").
func (p *Policy) UnmarshalJSON(b []byte) error {
	var j policyJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	var d time.Duration
	if j.Timeout != "" {
		var err error
		if d, err = time.ParseDuration(j.Timeout); err != nil {
			return fmt.Errorf("timeout %q: want a duration such as \"60s\" or \"2m\"", j.Timeout)
		}
	}
	var remember time.Duration
	if j.Remember != "" {
		var err error
		if remember, err = time.ParseDuration(j.Remember); err != nil {
			return fmt.Errorf("remember %q: want a duration such as \"15m\" (0s: off)", j.Remember)
		}
	}
	*p = Policy{Mode: j.Mode, Backend: j.Backend, Timeout: d, WebAddr: j.WebAddr, Remember: remember,
		WhenNoUser: j.WhenNoUser, Ask: j.Ask, HelperSocket: j.HelperSocket,
		Reboot: j.Reboot, RebootTonight: j.RebootTonight, RebootCommand: j.RebootCommand, Desktop: j.Desktop}
	return nil
}

// formatTimeout writes whole seconds as "60s", anything else as Go does.
func formatTimeout(d time.Duration) string {
	if d == 0 {
		return ""
	}
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// PolicyPath returns the policy file of the data directory dir.
func PolicyPath(dir string) string { return filepath.Join(dir, FileName) }

// LoadPolicy reads DATA/consent.json. A missing file is the default policy;
// fields left out take their defaults. A malformed or invalid file is an
// error naming the file and how to fix it.
func LoadPolicy(dir string) (Policy, error) {
	path := PolicyPath(dir)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultPolicy(), nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("load consent policy: %w", err)
	}
	if err := checkPolicyFile(path); err != nil {
		return Policy{}, fmt.Errorf("load consent policy: %w", err)
	}
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("load consent policy: %s: %v; fix the file (e.g. {\"mode\":\"prompt\",\"backend\":\"auto\",\"timeout\":\"60s\"}) or remove it to use the defaults", path, err)
	}
	if dec.More() {
		return Policy{}, fmt.Errorf("load consent policy: %s: extra data after the JSON object; fix the file or remove it to use the defaults", path)
	}
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("load consent policy: %s: %v; fix the file or remove it to use the defaults", path, err)
	}
	p.Backend, _ = ParseBackend(p.Backend)
	return p, nil
}

// SavePolicy validates p and writes it to DATA/consent.json atomically, mode
// 0600. Only local commands on the endpoint call it.
func SavePolicy(dir string, p Policy) error {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return fmt.Errorf("save consent policy: %w", err)
	}
	p.Backend, _ = ParseBackend(p.Backend)
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("save consent policy: %w", err)
	}
	if err := atomicfile.WriteSecret(PolicyPath(dir), append(b, '\n')); err != nil {
		return fmt.Errorf("save consent policy: %w", err)
	}
	return nil
}

// checkPolicyFile refuses a policy file that someone other than its owner
// could change (and so switch consent off).
func checkPolicyFile(path string) error {
	if runtime.GOOS == "windows" {
		return nil // ACLs, not mode bits: the installer protects the data directory
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others, who could switch consent off; chmod 600 it", path)
	}
	return nil
}
