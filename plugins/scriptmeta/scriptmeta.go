// Package scriptmeta parses the manifest that a Patchbay remediation script
// carries in a header comment, and validates a job's parameters against it.
//
// The header is a block of comment lines near the top of the script (after
// an optional shebang, blank lines and other comments), between the lines
// `# patchbay:begin` and `# patchbay:end`:
//
//	#!/bin/sh
//	# patchbay:begin
//	# name: renew-dhcp
//	# description: Renew the DHCP lease of one interface
//	# os: linux
//	# shell: sh
//	# timeout: 2m
//	# needs_consent: true
//	# param: interface string default=eth0 -- the interface to renew
//	# patchbay:end
//
// scripts/README.md documents every key. A script without the block has no
// manifest: its name is the file name without the extension and it takes
// any parameter whose name matches [a-z][a-z0-9_]*.
package scriptmeta

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchbay/patchbay/internal/manifest"
)

// Limits on what Parse reads.
const (
	// MaxScriptSize is the largest script Parse accepts.
	MaxScriptSize = 1 << 20
	// MaxHeaderLines is how far into the file `# patchbay:end` may be.
	MaxHeaderLines = 200
	// MaxTimeout is the longest `timeout:` a header may declare.
	MaxTimeout = 24 * time.Hour
)

// Shells a script may declare.
const (
	ShellSh         = "sh"
	ShellBash       = "bash"
	ShellPowerShell = "powershell"
)

// DefaultVersion is the version of a script whose header has no `version:`.
const DefaultVersion = "0.0.0"

// reserved are the script plugin's own parameter names: the agent routes a
// job parameter with one of these names to the plugin, never to the script,
// so a script may not declare them.
var reserved = map[string]bool{"name": true, "args": true, "timeout": true, "max_output": true}

// IsReservedParam reports whether name belongs to the script plugin (name,
// args, timeout, max_output) and so cannot be a script parameter.
func IsReservedParam(name string) bool { return reserved[name] }

// Script is a parsed script.
type Script struct {
	// Manifest is the header's manifest (Name, Version, Description, Params,
	// OS, NeedsConsent, MayReboot). Without a header only Name (from the
	// file name) and Version ("0.0.0") are set.
	Manifest manifest.Manifest
	// Shell is sh, bash or powershell: the `shell:` key, else from the file
	// extension (.sh, .bash, .ps1), else from the shebang; empty when none of
	// these says (see ShellFor).
	Shell string
	// Timeout is the header's `timeout:`; zero when absent.
	Timeout time.Duration
	// Check is the header's `check:`: the script can run in check mode
	// (PATCHBAY_MODE=check; exit 0 = nothing to do, 10 = fix needed).
	Check bool
	// HasManifest reports whether the script has a header block.
	HasManifest bool
}

// ShellFor returns the shell to run the script with on goos: Shell, or when
// that is empty the platform's default (powershell on Windows, sh elsewhere).
func (s *Script) ShellFor(goos string) string {
	if s.Shell != "" {
		return s.Shell
	}
	if goos == "windows" {
		return ShellPowerShell
	}
	return ShellSh
}

// ValidateParams checks a job's parameters for the script and returns them
// with defaults applied. A script with a manifest takes only the parameters
// it declares; one without takes any name matching [a-z][a-z0-9_]*. Errors
// wrap manifest.ErrInvalidParams.
func (s *Script) ValidateParams(values map[string]string) (map[string]string, error) {
	if s.HasManifest {
		return s.Manifest.ValidateParams(values)
	}
	return manifest.ValidateFreeParams(values)
}

// SyntaxError is a problem with a script's header, at a 1-based line.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

func errorf(line int, format string, a ...any) error {
	return &SyntaxError{Line: line, Msg: fmt.Sprintf(format, a...)}
}

// Parse reads the header of the script called filename (only its base name
// and extension are used). A script without a header block is valid: it has
// no manifest (HasManifest false), its name is the file name without the
// extension, and its shell comes from the extension or shebang. A malformed
// header, or a `# patchbay:begin` anywhere but in the leading comments, is an
// error naming the line: a broken header never silently turns into "no
// manifest" (which would accept any parameter).
func Parse(filename string, content []byte) (*Script, error) {
	if len(content) > MaxScriptSize {
		return nil, fmt.Errorf("script is %d bytes, at most %d", len(content), MaxScriptSize)
	}
	content = bytes.TrimPrefix(content, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark (PowerShell editors write one)
	if i := bytes.IndexByte(content, 0); i >= 0 {
		return nil, errorf(1+bytes.Count(content[:i], []byte("\n")), "NUL byte: a script must be UTF-8 text (not UTF-16)")
	}
	base := filepath.Base(strings.ReplaceAll(filename, `\`, "/"))
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	lines := strings.Split(string(content), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}

	block, err := findBlock(lines)
	if err != nil {
		return nil, err
	}
	s := &Script{Manifest: manifest.Manifest{Version: DefaultVersion}}
	extShell := shellFromExt(ext)
	if block == nil {
		if !manifest.ValidName(stem) {
			return nil, fmt.Errorf("no %q header and the file name %q is not a valid script name ([a-z][a-z0-9_-]*): rename the file or add a header with a name: line", beginMarker, stem)
		}
		s.Manifest.Name = stem
		s.Shell = extShell
		if s.Shell == "" {
			s.Shell = shellFromShebang(lines[0])
		}
		return s, nil
	}
	s.HasManifest = true
	if err := parseBlock(s, lines, block, extShell, ext); err != nil {
		return nil, err
	}
	if err := s.Manifest.Validate(); err != nil { // parseBlock checked every part; this is a safety net
		return nil, errorf(block.begin, "%v", err)
	}
	return s, nil
}

// shellFromExt maps a file extension to a shell, "" when unknown.
func shellFromExt(ext string) string {
	switch strings.ToLower(ext) {
	case ".sh":
		return ShellSh
	case ".bash":
		return ShellBash
	case ".ps1":
		return ShellPowerShell
	}
	return ""
}

// shellFromShebang maps a first line such as "#!/bin/sh" or
// "#!/usr/bin/env bash" to a shell, "" when it is not one we run.
func shellFromShebang(first string) string {
	if !strings.HasPrefix(first, "#!") {
		return ""
	}
	f := strings.Fields(first[2:])
	if len(f) == 0 {
		return ""
	}
	prog := f[0]
	if filepath.Base(prog) == "env" {
		prog = ""
		for _, a := range f[1:] {
			if !strings.HasPrefix(a, "-") {
				prog = a
				break
			}
		}
	}
	switch strings.TrimSuffix(strings.ToLower(filepath.Base(strings.ReplaceAll(prog, `\`, "/"))), ".exe") {
	case "sh", "dash":
		return ShellSh
	case "bash":
		return ShellBash
	case "pwsh", "powershell":
		return ShellPowerShell
	}
	return ""
}
