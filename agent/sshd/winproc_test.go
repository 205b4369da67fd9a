package sshd

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

// parseWindowsArgs is CommandLineToArgvW's algorithm (the 2008 rules Go's
// os/exec targets), so the escaping is checked by a round trip.
func parseWindowsArgs(cmd string) []string {
	var args []string
	// The program name: up to a space, or quoted with no escapes.
	if strings.HasPrefix(cmd, `"`) {
		end := strings.IndexByte(cmd[1:], '"')
		if end < 0 {
			return []string{cmd[1:]}
		}
		args = append(args, cmd[1:1+end])
		cmd = cmd[2+end:]
	} else {
		end := strings.IndexAny(cmd, " \t")
		if end < 0 {
			return []string{cmd}
		}
		args = append(args, cmd[:end])
		cmd = cmd[end:]
	}
	for {
		cmd = strings.TrimLeft(cmd, " \t")
		if cmd == "" {
			return args
		}
		var b strings.Builder
		quoted := false
		i := 0
		for ; i < len(cmd); i++ {
			c := cmd[i]
			if !quoted && (c == ' ' || c == '\t') {
				break
			}
			if c == '\\' {
				n := 0
				for i < len(cmd) && cmd[i] == '\\' {
					n++
					i++
				}
				if i < len(cmd) && cmd[i] == '"' {
					b.WriteString(strings.Repeat(`\`, n/2))
					if n%2 == 1 {
						b.WriteByte('"')
						continue
					}
				} else {
					b.WriteString(strings.Repeat(`\`, n))
				}
				i--
				continue
			}
			if c == '"' {
				if quoted && i+1 < len(cmd) && cmd[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				quoted = !quoted
				continue
			}
			b.WriteByte(c)
		}
		args = append(args, b.String())
		cmd = cmd[i:]
	}
}

func TestWindowsCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`}, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`},
		{[]string{`C:\Program Files\PowerShell\7\pwsh.exe`, "-NoProfile"}, `"C:\Program Files\PowerShell\7\pwsh.exe" -NoProfile`},
		{[]string{"pwsh", "-Command", `Write-Output "a b"`}, `pwsh -Command "Write-Output \"a b\""`},
		{[]string{"prog", ""}, `prog ""`},
		{[]string{"prog", `C:\dir with space\`}, `prog "C:\dir with space\\"`},
		{[]string{"prog", `a\\b`}, `prog a\\b`},
		{[]string{"prog", `a\"b`}, `prog "a\\\"b"`},
		{[]string{"prog", "tab\there"}, "prog \"tab\there\""},
		// cmd.exe gets its command unchanged.
		{[]string{`C:\Windows\system32\cmd.exe`, "/c", `echo "a b" & dir`}, `C:\Windows\system32\cmd.exe /c echo "a b" & dir`},
		{[]string{"CMD.EXE", "/C", `type "x y.txt"`}, `CMD.EXE /c type "x y.txt"`},
		// Other programs with /c are escaped as usual.
		{[]string{"prog.exe", "/c", `a "b"`}, `prog.exe /c "a \"b\""`},
	} {
		if got := windowsCommandLine(tc.args); got != tc.want {
			t.Errorf("windowsCommandLine(%q) = %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestWindowsCommandLineRoundTrip(t *testing.T) {
	for _, args := range [][]string{
		{"prog", "plain", "two words", `"quoted"`, `back\slash`, `trail\`, `trail space\ `, `\\server\share\`, `a\\"b`, "", " ", `\"`, `""`},
		{`C:\Program Files\x.exe`, `C:\Users\a b\`, `--flag="v w"`},
	} {
		line := windowsCommandLine(args)
		if got := parseWindowsArgs(line); !slices.Equal(got, args) {
			t.Errorf("%q -> %s -> %q", args, line, got)
		}
	}
}

func decodeBlock(t *testing.T, b []uint16) []string {
	t.Helper()
	if len(b) < 2 || b[len(b)-1] != 0 || b[len(b)-2] != 0 {
		t.Fatalf("block does not end with two NULs: %v", b)
	}
	var out []string
	for _, s := range strings.Split(string(utf16.Decode(b[:len(b)-2])), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func TestWindowsEnvBlock(t *testing.T) {
	b, err := windowsEnvBlock([]string{"Path=C:\\bin", "TERM=xterm", "=C:=C:\\Users", "path=C:\\other", "LANG=fr_FR.UTF-8", "NAME=värde €"})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeBlock(t, b)
	want := []string{"=C:=C:\\Users", "LANG=fr_FR.UTF-8", "NAME=värde €", "path=C:\\other", "TERM=xterm"}
	if !slices.Equal(got, want) {
		t.Errorf("block = %q, want %q", got, want)
	}
	if empty, err := windowsEnvBlock(nil); err != nil || !slices.Equal(empty, []uint16{0, 0}) {
		t.Errorf("empty block = %v, %v; want two NULs", empty, err)
	}
	for _, bad := range []string{"NOEQUALS", "=novalue", "", "A=b\x00c"} {
		if _, err := windowsEnvBlock([]string{bad}); err == nil || !strings.HasPrefix(err.Error(), "environment: ") {
			t.Errorf("windowsEnvBlock(%q) error = %v, want an environment error", bad, err)
		}
	}
}

func TestConsoleSize(t *testing.T) {
	for _, tc := range []struct {
		cols, rows int
		x, y       int16
	}{
		{80, 24, 80, 24},
		{0, 0, 80, 24},
		{-5, 1, 80, 1},
		{1 << 20, 1 << 20, 10000, 10000},
		{300, 100, 300, 100},
	} {
		if x, y := consoleSize(tc.cols, tc.rows); x != tc.x || y != tc.y {
			t.Errorf("consoleSize(%d, %d) = %d, %d; want %d, %d", tc.cols, tc.rows, x, y, tc.x, tc.y)
		}
	}
}

func TestWindowsExitStatus(t *testing.T) {
	for _, tc := range []struct {
		code   uint32
		killed bool
		want   exitStatus
	}{
		{0, false, exitStatus{code: 0}},
		{3, false, exitStatus{code: 3}},
		{1, true, exitStatus{code: 137, signal: "KILL"}},
		{terminatedExitCode, false, exitStatus{code: 137, signal: "KILL"}},
		{statusControlCExit, false, exitStatus{code: 130, signal: "INT"}},
		{0xC0000005, false, exitStatus{code: 0xC0000005}},
	} {
		if got := windowsExitStatus(tc.code, tc.killed); got != tc.want {
			t.Errorf("windowsExitStatus(%#x, %v) = %+v, want %+v", tc.code, tc.killed, got, tc.want)
		}
	}
}

// The command lines Windows sessions get, from the same specs as on Unix.
func TestWindowsSessionCommandLines(t *testing.T) {
	for _, tc := range []struct {
		spec procSpec
		want string
	}{
		{commandSpec(`C:\Windows\system32\cmd.exe`, `dir "C:\Program Files" | findstr x`), `C:\Windows\system32\cmd.exe /c dir "C:\Program Files" | findstr x`},
		{commandSpec(`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, `Get-Item "C:\a b"`),
			`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe -NoProfile -NonInteractive -Command "Get-Item \"C:\a b\""`},
		{loginShellSpec(`C:\Windows\system32\cmd.exe`), `C:\Windows\system32\cmd.exe`},
	} {
		if got := windowsCommandLine(tc.spec.args); got != tc.want {
			t.Errorf("args %q: command line %s, want %s", tc.spec.args, got, tc.want)
		}
	}
}
