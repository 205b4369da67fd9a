package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

// Scope names, in the order they are reported.
const (
	scopeTemp    = "temp"
	scopeUser    = "user"
	scopePackage = "package"
	scopeDNS     = "dns"
)

// allScopes lists every scope in report order.
var allScopes = []string{scopeTemp, scopeUser, scopePackage, scopeDNS}

// fileScopes are the scopes that delete files (dns runs a command instead).
var fileScopes = []string{scopeTemp, scopeUser, scopePackage}

// config is a validated request.
type config struct {
	scopes  map[string]bool
	root    string        // absolute, symlinks resolved (the directory all paths live under)
	sandbox bool          // root is not the machine's real root: commands are never run
	minAge  time.Duration // only entries at least this old are deleted
	user    string        // "" for every home
	now     time.Time     // when the run started; ages are measured from it
}

// has reports whether scope s was asked for.
func (c config) has(s string) bool { return c.scopes[s] }

// parseConfig validates the parameters of one Check or Fix call.
func parseConfig(p sdk.Params, now time.Time) (config, error) {
	c := config{now: now}
	var err error
	if c.scopes, err = parseScopes(p.String("scopes")); err != nil {
		return config{}, err
	}
	if c.root, c.sandbox, err = parseRoot(p.String("root")); err != nil {
		return config{}, err
	}
	age := p.String("min_age")
	if age == "" {
		age = defaultMinAge
	}
	if c.minAge, err = time.ParseDuration(age); err != nil {
		return config{}, fmt.Errorf("min_age: %q is not a duration (like 1h or 30m)", age)
	}
	if c.minAge < 0 {
		return config{}, fmt.Errorf("min_age: %s is negative", c.minAge)
	}
	if c.user, err = parseUser(p.String("user")); err != nil {
		return config{}, err
	}
	return c, nil
}

// parseScopes parses a comma-separated scope list such as "temp,dns".
func parseScopes(s string) (map[string]bool, error) {
	if strings.TrimSpace(s) == "" {
		s = defaultScopes
	}
	scopes := map[string]bool{}
	var unknown []string
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch f {
		case "":
		case scopeTemp, scopeUser, scopePackage, scopeDNS:
			scopes[f] = true
		default:
			unknown = append(unknown, fmt.Sprintf("%q", f))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("scopes: unknown scope %s (want a comma-separated list of %s)",
			strings.Join(unknown, ", "), strings.Join(allScopes, ", "))
	}
	if len(scopes) == 0 {
		return nil, errors.New("scopes: empty (want a comma-separated list of " + strings.Join(allScopes, ", ") + ")")
	}
	return scopes, nil
}

// parseRoot checks the root parameter and resolves it. "/" (the default)
// means the machine itself: on Windows that is the system drive. Anything
// else is a sandbox: paths are resolved under it and no command is run.
func parseRoot(s string) (root string, sandbox bool, err error) {
	if s == "" || s == "/" {
		return systemRoot(), false, nil
	}
	if !filepath.IsAbs(s) {
		return "", false, fmt.Errorf("root: %q is not an absolute path", s)
	}
	// The operator chose root; resolving links in it is theirs to decide.
	// Below root, links are never trusted blindly (see openBase).
	resolved, err := filepath.EvalSymlinks(filepath.Clean(s))
	if err != nil {
		return "", false, fmt.Errorf("root: %w", err)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", false, fmt.Errorf("root: %w", err)
	}
	if !fi.IsDir() {
		return "", false, fmt.Errorf("root: %s is not a directory", s)
	}
	return resolved, resolved != systemRoot(), nil
}

// parseUser checks the user parameter: one account name, never a path.
func parseUser(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if s == "." || s == ".." || len(s) > 256 || strings.ContainsAny(s, `/\:`+"\x00") {
		return "", fmt.Errorf("user: %q is not an account name", s)
	}
	return s, nil
}

// systemRoot is the directory root "/" stands for on this OS.
func systemRoot() string {
	if runtime.GOOS == "windows" {
		if d := os.Getenv("SystemDrive"); d != "" {
			return d + `\`
		}
		return `C:\`
	}
	return "/"
}
