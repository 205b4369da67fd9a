package scriptmeta

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/patchbay/patchbay/internal/manifest"
)

const (
	beginMarker = "# patchbay:begin"
	endMarker   = "# patchbay:end"
	// maxValue bounds one header value (a description or a param line).
	maxValue = 1024
)

var keyRE = regexp.MustCompile(`^[a-z_]+$`)

// block is where the header is: the 1-based line numbers of its markers.
type block struct{ begin, end int }

// marker reports whether line is a begin or end marker, however spaced or
// cased ("#patchbay:BEGIN" counts, so that it can be refused as misspelt).
func marker(line string) string {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "#") {
		return ""
	}
	t = strings.ToLower(strings.Join(strings.Fields(strings.TrimLeft(t, "#")), ""))
	switch t {
	case "patchbay:begin":
		return "begin"
	case "patchbay:end":
		return "end"
	}
	return ""
}

// findBlock locates the header block, nil when the script has none. Only a
// shebang, blank lines and comments may come before `# patchbay:begin`, and
// no marker may appear anywhere else in the file.
func findBlock(lines []string) (*block, error) {
	var b *block
	code := false // a line of code has been seen
	for i, l := range lines {
		n := i + 1
		m := marker(l)
		switch {
		case b != nil && b.end == 0: // inside the block
			switch m {
			case "end":
				if strings.TrimRight(l, " \t") != endMarker {
					return nil, errorf(n, "write the end marker exactly as %q", endMarker)
				}
				b.end = n
			case "begin":
				return nil, errorf(n, "%q inside the header (it began at line %d)", beginMarker, b.begin)
			default:
				if n >= MaxHeaderLines {
					return nil, errorf(b.begin, "no %q within the first %d lines", endMarker, MaxHeaderLines)
				}
			}
		case m == "begin" && b != nil:
			return nil, errorf(n, "a second %q: a script has one header (the first is at line %d)", beginMarker, b.begin)
		case m == "begin" && code:
			return nil, errorf(n, "%q after code: only a shebang, blank lines and comments may come before the header", beginMarker)
		case m == "begin":
			if strings.TrimRight(l, " \t") != beginMarker {
				return nil, errorf(n, "write the begin marker exactly as %q", beginMarker)
			}
			if n >= MaxHeaderLines {
				return nil, errorf(n, "the header must end within the first %d lines", MaxHeaderLines)
			}
			b = &block{begin: n}
		case m == "end":
			return nil, errorf(n, "%q without %q before it", endMarker, beginMarker)
		case b == nil && !code:
			t := strings.TrimSpace(l)
			if !(t == "" || strings.HasPrefix(t, "#") || (n == 1 && strings.HasPrefix(l, "#!"))) {
				code = true
			}
		}
	}
	if b != nil && b.end == 0 {
		return nil, errorf(b.begin, "%q without %q", beginMarker, endMarker)
	}
	return b, nil
}

// parseBlock reads the key: value lines between the markers into s.
func parseBlock(s *Script, lines []string, b *block, extShell, ext string) error {
	m := &s.Manifest
	seen := map[string]int{}
	shellLine := 0
	for n := b.begin + 1; n < b.end; n++ {
		l := strings.TrimRight(lines[n-1], " \t")
		if l == "#" {
			continue
		}
		if !strings.HasPrefix(l, "# ") {
			return errorf(n, "header lines start with %q (or are a lone %q)", "# ", "#")
		}
		body := strings.TrimSpace(l[2:])
		if body == "" {
			continue
		}
		key, value, ok := strings.Cut(body, ":")
		if !ok || !keyRE.MatchString(key) {
			return errorf(n, "want %q, like %q", "key: value", "name: flush-dns")
		}
		value = strings.TrimSpace(value)
		if err := checkText(value); err != nil {
			return errorf(n, "%s: %v", key, err)
		}
		if prev, dup := seen[key]; dup && key != "param" {
			return errorf(n, "%s: given twice (also at line %d)", key, prev)
		}
		seen[key] = n
		var err error
		switch key {
		case "name":
			if !manifest.ValidName(value) {
				return errorf(n, "name: %q: want [a-z][a-z0-9_-]*, at most 64 characters", value)
			}
			m.Name = value
		case "version":
			if _, err := manifest.ParseVersion(value); err != nil {
				return errorf(n, "%v", err)
			}
			m.Version = value
		case "description":
			m.Description = value
		case "os":
			m.OS, err = parseOS(value)
		case "shell":
			switch value {
			case ShellSh, ShellBash, ShellPowerShell:
				s.Shell, shellLine = value, n
			default:
				return errorf(n, "shell: %q: want sh, bash or powershell", value)
			}
		case "timeout":
			s.Timeout, err = parseTimeout(value)
		case "needs_consent":
			m.NeedsConsent, err = parseBool(value)
		case "may_reboot":
			m.MayReboot, err = parseBool(value)
		case "check":
			s.Check, err = parseBool(value)
		case "param":
			var p manifest.Param
			p, err = parseParam(value)
			if err == nil {
				err = addParam(m, p, n, seen)
			}
		default:
			return errorf(n, "unknown key %q (want name, version, description, os, shell, timeout, needs_consent, may_reboot, check or param)", key)
		}
		if err != nil {
			if _, ok := err.(*SyntaxError); ok {
				return err
			}
			return errorf(n, "%s: %v", key, err)
		}
	}
	for _, k := range []string{"name", "description"} {
		if _, ok := seen[k]; !ok {
			return errorf(b.begin, "the header has no %s: line", k)
		}
	}
	switch {
	case s.Shell == "":
		s.Shell = extShell
		if s.Shell == "" {
			s.Shell = shellFromShebang(lines[0])
		}
	case extShell != "" && extShell != s.Shell && !(extShell == ShellSh && s.Shell == ShellBash):
		return errorf(shellLine, "shell: %s, but the file name ends in %s", s.Shell, ext)
	}
	if s.Shell == ShellSh || s.Shell == ShellBash {
		for _, o := range m.OS {
			if o == "windows" {
				return errorf(seen["os"], "os: windows, but %s scripts do not run on Windows (write a .ps1 for it)", s.Shell)
			}
		}
	}
	return nil
}

// checkText refuses empty, overlong, non-UTF-8 and control-character values.
func checkText(v string) error {
	switch {
	case v == "":
		return errEmpty
	case len(v) > maxValue:
		return &valueError{"is longer than " + strconv.Itoa(maxValue) + " bytes"}
	case !utf8.ValidString(v):
		return &valueError{"is not valid UTF-8"}
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\t' {
			return &valueError{"contains a control character"}
		}
	}
	return nil
}

type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

var errEmpty = &valueError{"empty value"}

func parseBool(v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &valueError{strconv.Quote(v) + ": want true or false"}
}

func parseTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > MaxTimeout {
		return 0, &valueError{strconv.Quote(v) + ": want a duration between 1s and 24h, like 90s or 15m"}
	}
	return d, nil
}

func parseOS(v string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		switch o {
		case "linux", "darwin", "windows":
		default:
			return nil, &valueError{strconv.Quote(o) + ": want a comma-separated list of linux, darwin and windows"}
		}
		if seen[o] {
			return nil, &valueError{strconv.Quote(o) + " listed twice"}
		}
		seen[o] = true
		out = append(out, o)
	}
	return out, nil
}

const paramSyntax = "want NAME TYPE [required] [default=VALUE] [allowed=A|B|C] -- description"

// parseParam reads `NAME TYPE [required] [default=VALUE] [allowed=A|B|C]
// [-- description]`. Values cannot contain spaces.
func parseParam(v string) (manifest.Param, error) {
	spec, desc, hasDesc := strings.Cut(v, " -- ")
	var p manifest.Param
	if hasDesc {
		p.Description = strings.TrimSpace(desc)
		if p.Description == "" {
			return p, &valueError{"empty description after --"}
		}
	}
	f := strings.Fields(spec)
	if len(f) < 2 {
		return p, &valueError{paramSyntax}
	}
	p.Name, p.Type = f[0], f[1]
	if !manifest.ValidParamName(p.Name) {
		return p, &valueError{"name " + strconv.Quote(p.Name) + ": want [a-z][a-z0-9_]*, at most 64 characters"}
	}
	if IsReservedParam(p.Name) {
		return p, &valueError{"name " + strconv.Quote(p.Name) + " is reserved for the script plugin (name, args, timeout, max_output)"}
	}
	switch p.Type {
	case manifest.TypeString, manifest.TypeInt, manifest.TypeBool, manifest.TypeDuration:
	default:
		return p, &valueError{p.Name + ": type " + strconv.Quote(p.Type) + ": want string, int, bool or duration"}
	}
	var hasDefault, hasAllowed bool
	for _, o := range f[2:] {
		switch {
		case o == "required":
			if p.Required {
				return p, &valueError{p.Name + ": required given twice"}
			}
			p.Required = true
		case strings.HasPrefix(o, "default="):
			if hasDefault {
				return p, &valueError{p.Name + ": default given twice"}
			}
			hasDefault = true
			p.Default = strings.TrimPrefix(o, "default=")
			if p.Default == "" {
				return p, &valueError{p.Name + ": empty default= (leave it out for no default)"}
			}
		case strings.HasPrefix(o, "allowed="):
			if hasAllowed {
				return p, &valueError{p.Name + ": allowed given twice"}
			}
			hasAllowed = true
			seen := map[string]bool{}
			for _, a := range strings.Split(strings.TrimPrefix(o, "allowed="), "|") {
				if a == "" {
					return p, &valueError{p.Name + ": empty value in allowed= (write allowed=a|b|c)"}
				}
				if seen[a] {
					return p, &valueError{p.Name + ": " + strconv.Quote(a) + " allowed twice"}
				}
				seen[a] = true
				p.Allowed = append(p.Allowed, a)
			}
		case o == "--" || strings.HasPrefix(o, "--"):
			return p, &valueError{p.Name + ": write the description after \" -- \" (spaces around --)"}
		default:
			return p, &valueError{p.Name + ": unknown option " + strconv.Quote(o) + " (" + paramSyntax + ")"}
		}
	}
	if p.Required && hasDefault {
		return p, &valueError{p.Name + ": a required parameter takes no default"}
	}
	one := manifest.Manifest{Name: "x", Version: DefaultVersion, Params: []manifest.Param{p}}
	if err := one.Validate(); err != nil { // default and allowed values of the right type, default allowed
		return p, &valueError{strings.TrimPrefix(err.Error(), "manifest: ")}
	}
	return p, nil
}

// addParam appends p to m, refusing duplicates and too many parameters.
func addParam(m *manifest.Manifest, p manifest.Param, n int, seen map[string]int) error {
	if prev, ok := seen["param "+p.Name]; ok {
		return errorf(n, "param: %q declared twice (also at line %d)", p.Name, prev)
	}
	if len(m.Params) >= manifest.MaxParams {
		return errorf(n, "param: more than %d parameters", manifest.MaxParams)
	}
	seen["param "+p.Name] = n
	m.Params = append(m.Params, p)
	return nil
}
