// Package service installs, removes and inspects patchbay-agent as a system
// service: a systemd unit on Linux, a LaunchDaemon on macOS, a service of the
// Windows service manager (with restart-on-failure recovery actions). It also
// runs the agent under the Windows service manager (Run).
//
// The unit and plist are rendered here (SystemdUnit, LaunchdPlist) so that
// packages built elsewhere (make release's .deb/.rpm) can be checked against
// the same text. Install under Options.Root writes the files into a
// directory tree and calls no service manager: for image builders and tests.
package service

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Names of the installed service.
const (
	Name            = "patchbay-agent" // systemd unit (Name+".service") and Windows service name
	DisplayName     = "Patchbay agent" // Windows display name
	Description     = "Patchbay endpoint agent: keeps this machine reachable by its Patchbay relay"
	LaunchdLabel    = "com.patchbay.agent" // launchd label
	SystemdUnitPath = "/etc/systemd/system/patchbay-agent.service"
	SystemdWantsDir = "/etc/systemd/system/multi-user.target.wants"
	LaunchdPath     = "/Library/LaunchDaemons/com.patchbay.agent.plist"
)

// DefaultBinary is where `service install --copy-binary` puts the agent on
// goos: /usr/local/bin/patchbay-agent (Linux, macOS),
// %ProgramFiles%\Patchbay\patchbay-agent.exe (Windows; C:\Program Files
// when the variable is unset or this is not Windows).
func DefaultBinary(goos string) string {
	if goos == "windows" {
		pf := os.Getenv("ProgramFiles")
		if pf == "" || runtime.GOOS != "windows" {
			pf = `C:\Program Files`
		}
		return pf + `\Patchbay\patchbay-agent.exe`
	}
	return "/usr/local/bin/patchbay-agent"
}

// SystemdUnit renders the agent's systemd unit: bin run --data dataDir,
// restarted on any exit but a clean stop.
//
// Hardening is limited by the agent's job: it installs OS updates and
// packages (so /usr and /etc stay writable: no ProtectSystem), and opens
// sessions in which a technician may use sudo (so no NoNewPrivileges). What
// it does not need is closed: kernel tunables and modules, the clock,
// personality and realtime changes. UMask 0077 keeps every file it writes
// private; KillMode=mixed lets it end its sessions itself on SIGTERM before
// the rest of the cgroup is killed.
func SystemdUnit(bin, dataDir string) string {
	var b strings.Builder
	b.WriteString(`[Unit]
Description=` + Description + `
Documentation=https://github.com/patchbay/patchbay
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=` + systemdQuote(bin) + ` run --data ` + systemdQuote(dataDir) + `
Restart=always
RestartSec=5s
TimeoutStopSec=30s
KillMode=mixed
UMask=0077
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectClock=yes
LockPersonality=yes
RestrictRealtime=yes
ProtectKernelLogs=yes
SystemCallArchitectures=native
`)
	if dataDir == "/var/lib/patchbay-agent" {
		// systemd creates it (0700) if an image was built without it.
		b.WriteString("StateDirectory=patchbay-agent\nStateDirectoryMode=0700\n")
	}
	b.WriteString(`
[Install]
WantedBy=multi-user.target
`)
	return b.String()
}

// systemdQuote quotes one ExecStart word when it needs it (systemd.syntax:
// double quotes, backslash escapes; % doubled for specifiers).
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;$") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`, "$", "$$")
	return `"` + r.Replace(s) + `"`
}

// LaunchdPlist renders the agent's LaunchDaemon: bin run --data dataDir, run
// at load (boot) and kept alive, logs to /var/log/patchbay-agent.log.
func LaunchdPlist(bin, dataDir string) string {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + LaunchdLabel + `</string>
	<key>ProgramArguments</key>
	<array>
		<string>` + xmlText(bin) + `</string>
		<string>run</string>
		<string>--data</string>
		<string>` + xmlText(dataDir) + `</string>
		<string>--log-format</string>
		<string>json</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<key>ExitTimeOut</key>
	<integer>30</integer>
	<key>Umask</key>
	<integer>63</integer>
	<key>StandardErrorPath</key>
	<string>/var/log/patchbay-agent.log</string>
	<key>StandardOutPath</key>
	<string>/var/log/patchbay-agent.log</string>
</dict>
</plist>
`)
	return b.String()
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// WindowsArgs are the arguments the Windows service starts the agent with.
func WindowsArgs(dataDir string) []string {
	return []string{"run", "--data", dataDir, "--log-format", "json"}
}

// ExecArgs returns the program and arguments that the service installed for
// goos runs: what a container entrypoint or a test runs in the foreground
// instead of the service manager.
func ExecArgs(goos, bin, dataDir string) []string {
	switch goos {
	case "windows":
		return append([]string{bin}, WindowsArgs(dataDir)...)
	case "darwin":
		return []string{bin, "run", "--data", dataDir, "--log-format", "json"}
	}
	return []string{bin, "run", "--data", dataDir}
}

// ParseExecStart splits a unit's ExecStart line as SystemdUnit writes it
// (words, double-quoted where needed) into the program and its arguments.
func ParseExecStart(unit string) ([]string, error) {
	for _, line := range strings.Split(unit, "\n") {
		v, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		var words []string
		var cur strings.Builder
		inWord, quoted := false, false
		for i := 0; i < len(v); i++ {
			c := v[i]
			switch {
			case quoted && c == '\\' && i+1 < len(v):
				i++
				switch v[i] {
				case 'n':
					cur.WriteByte('\n')
				case 't':
					cur.WriteByte('\t')
				default:
					cur.WriteByte(v[i])
				}
			case c == '"':
				quoted, inWord = !quoted, true
			case !quoted && (c == ' ' || c == '\t'):
				if inWord {
					words = append(words, cur.String())
					cur.Reset()
					inWord = false
				}
			case (c == '%' || c == '$') && i+1 < len(v) && v[i+1] == c:
				cur.WriteByte(c)
				i++
				inWord = true
			default:
				cur.WriteByte(c)
				inWord = true
			}
		}
		if quoted {
			return nil, fmt.Errorf("parse ExecStart: unterminated quote in %q", v)
		}
		if inWord {
			words = append(words, cur.String())
		}
		if len(words) == 0 {
			return nil, fmt.Errorf("parse ExecStart: empty")
		}
		return words, nil
	}
	return nil, fmt.Errorf("parse unit: no ExecStart line")
}
