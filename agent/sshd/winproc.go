package sshd

// The portable half of running processes on Windows (proc_windows.go is the
// other): the command line CreateProcess gets, the environment block, the
// pseudo console's size and the exit status. Plain Go, so it is tested on
// every system.

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf16"
)

// windowsCommandLine joins argv into the command line CreateProcess parses
// (CommandLineToArgvW rules, as Go's os/exec does), with one exception:
// cmd.exe does not parse its command line that way, so `cmd /c COMMAND`
// passes COMMAND unchanged, as Win32-OpenSSH does. Otherwise a command such
// as `echo "a b"` would reach cmd.exe with backslash-escaped quotes it does
// not understand.
func windowsCommandLine(args []string) string {
	if len(args) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(windowsProgramName(args[0]))
	base := strings.ToLower(filepath.Base(strings.ReplaceAll(args[0], `\`, "/")))
	if (base == "cmd" || base == "cmd.exe") && len(args) == 3 && strings.EqualFold(args[1], "/c") {
		b.WriteString(" /c ")
		b.WriteString(args[2])
		return b.String()
	}
	for _, a := range args[1:] {
		b.WriteByte(' ')
		b.WriteString(windowsEscapeArg(a))
	}
	return b.String()
}

// windowsProgramName quotes argv[0] when it needs it. CommandLineToArgvW
// reads the program name up to the next space (or closing quote) with no
// escapes, so it is quoted whole and never escaped.
func windowsProgramName(p string) string {
	if p == "" || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' }) {
		return `"` + p + `"`
	}
	return p
}

// windowsEscapeArg quotes one argument for CommandLineToArgvW: backslashes
// are literal except before a quote, where 2n (+1 for an escaped quote)
// backslashes stand for n.
func windowsEscapeArg(s string) string {
	if s == "" {
		return `""`
	}
	if !strings.ContainsAny(s, " \t\n\v\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	b.WriteString(strings.Repeat(`\`, slashes)) // before the closing quote
	b.WriteByte('"')
	return b.String()
}

// windowsEnvBlock builds the environment block CreateProcess takes with
// CREATE_UNICODE_ENVIRONMENT: NAME=VALUE strings in UTF-16, each ended by
// NUL, the block by another NUL. Names are case-insensitive on Windows: the
// last of several spellings wins, and the block is sorted by name ignoring
// case, as the documentation asks.
func windowsEnvBlock(env []string) ([]uint16, error) {
	type kv struct{ name, entry string }
	var vars []kv
	index := map[string]int{}
	for _, e := range env {
		if strings.ContainsRune(e, 0) {
			return nil, errors.New("environment: a variable contains NUL")
		}
		// A name may start with '=' (the per-drive "=C:=C:\dir" variables).
		eq := strings.IndexByte(e[min(1, len(e)):], '=')
		if eq < 0 {
			return nil, errors.New("environment: " + quoteShort(e) + " is not NAME=VALUE")
		}
		name := strings.ToUpper(e[:eq+min(1, len(e))])
		if name == "" {
			return nil, errors.New("environment: " + quoteShort(e) + " has no name")
		}
		if i, ok := index[name]; ok {
			vars[i].entry = e
			continue
		}
		index[name] = len(vars)
		vars = append(vars, kv{name, e})
	}
	slices.SortStableFunc(vars, func(a, b kv) int { return strings.Compare(a.name, b.name) })
	var block []uint16
	for _, v := range vars {
		block = append(block, utf16.Encode([]rune(v.entry))...)
		block = append(block, 0)
	}
	if len(block) == 0 {
		block = append(block, 0) // an empty block is two NULs
	}
	return append(block, 0), nil
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}

// consoleSize is a terminal size as a pseudo console takes it (a COORD of
// int16): at least 1x1 and at most the largest size a recording accepts.
func consoleSize(cols, rows int) (x, y int16) {
	c := int16(clampDim(cols, 80))
	r := int16(clampDim(rows, 24))
	return c, r
}

// Exit codes Windows gives a process that was interrupted or that we ended.
const (
	statusControlCExit = 0xC000013A  // the console's Ctrl+C or close
	terminatedExitCode = 0xFFFF_FFF7 // what stop passes to TerminateJobObject; -9 as a DWORD
)

// windowsExitStatus turns GetExitCodeProcess's code into an SSH exit status.
// killed means stop ended the process: it is reported as signal KILL, as
// the Unix agent reports SIGKILL, whatever code Windows returns.
func windowsExitStatus(code uint32, killed bool) exitStatus {
	switch {
	case killed || code == terminatedExitCode:
		return exitStatus{code: 128 + 9, signal: "KILL"}
	case code == statusControlCExit:
		return exitStatus{code: 128 + 2, signal: "INT"}
	}
	return exitStatus{code: int(code)}
}
