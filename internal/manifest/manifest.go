// Package manifest holds a plugin's manifest: its name, version, parameters
// and supported systems, and the validation of parameters against it. It is
// pure data with no dependencies beyond the standard library, so the store and
// the REST API can use it without linking the plugin runtime (go-plugin, gRPC);
// plugins see it through the aliases in plugins/sdk.
package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Parameter types a manifest may declare.
const (
	TypeString   = "string"
	TypeInt      = "int"
	TypeBool     = "bool"
	TypeDuration = "duration"
)

// Limits on parameters, enforced wherever parameters are validated (CLI,
// relay, agent and plugin), so a hostile job cannot hand a plugin megabytes.
const (
	MaxParams     = 64
	MaxParamValue = 8 << 10
)

// ErrInvalidParams is wrapped by every parameter validation error.
var ErrInvalidParams = errors.New("invalid parameters")

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	paramRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$`)
)

// ValidName reports whether s is a valid plugin or script name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidParamName reports whether s is a valid parameter name:
// [a-z][a-z0-9_]*, at most 64 characters.
func ValidParamName(s string) bool { return paramRE.MatchString(s) }

// Param declares one parameter of a plugin.
type Param struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Default     string   `json:"default,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Allowed     []string `json:"allowed,omitempty"`
	Description string   `json:"description,omitempty"`
}

// Manifest describes a plugin. It is what `plugin manifest` prints, what the
// catalog stores, and what the agent validates parameters against.
type Manifest struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Description  string   `json:"description,omitempty"`
	Params       []Param  `json:"params,omitempty"`
	OS           []string `json:"os,omitempty"`
	NeedsConsent bool     `json:"needs_consent,omitempty"`
	MayReboot    bool     `json:"may_reboot,omitempty"`
}

// Validate checks the manifest itself.
func (m *Manifest) Validate() error {
	if !ValidName(m.Name) {
		return fmt.Errorf("manifest: name %q: want [a-z][a-z0-9_-]*, at most 64 characters", m.Name)
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if len(m.Params) > MaxParams {
		return fmt.Errorf("manifest: %d parameters, at most %d", len(m.Params), MaxParams)
	}
	seen := map[string]bool{}
	for _, p := range m.Params {
		if !ValidParamName(p.Name) {
			return fmt.Errorf("manifest: parameter name %q: want [a-z][a-z0-9_]*", p.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("manifest: parameter %q declared twice", p.Name)
		}
		seen[p.Name] = true
		switch p.Type {
		case TypeString, TypeInt, TypeBool, TypeDuration:
		default:
			return fmt.Errorf("manifest: parameter %q: unknown type %q (want string, int, bool or duration)", p.Name, p.Type)
		}
		for _, a := range p.Allowed {
			if err := checkType(p, a); err != nil {
				return fmt.Errorf("manifest: parameter %q: allowed value: %w", p.Name, err)
			}
		}
		if p.Default != "" {
			if err := checkValue(p, p.Default); err != nil {
				return fmt.Errorf("manifest: parameter %q: default: %w", p.Name, err)
			}
		}
	}
	for _, o := range m.OS {
		switch o {
		case "linux", "windows", "darwin", "freebsd":
		default:
			return fmt.Errorf("manifest: unknown os %q (want linux, windows, darwin)", o)
		}
	}
	return nil
}

// Supports reports whether the plugin declares support for goos; a manifest
// without an os list supports every OS.
func (m *Manifest) Supports(goos string) bool {
	if len(m.OS) == 0 {
		return true
	}
	for _, o := range m.OS {
		if o == goos {
			return true
		}
	}
	return false
}

// Param returns the declared parameter called name.
func (m *Manifest) Param(name string) (Param, bool) {
	for _, p := range m.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// ValidateParams checks values against the manifest and returns a new map
// with defaults applied. Unknown names, missing required parameters, values
// of the wrong type and values outside the allowed list are refused with an
// error wrapping ErrInvalidParams that names every problem.
func (m *Manifest) ValidateParams(values map[string]string) (map[string]string, error) {
	if err := checkSizes(values); err != nil {
		return nil, err
	}
	var problems []string
	out := make(map[string]string, len(m.Params))
	for name, v := range values {
		p, ok := m.Param(name)
		if !ok {
			problems = append(problems, fmt.Sprintf("unknown parameter %q (%s takes %s)", name, m.Name, m.paramNames()))
			continue
		}
		if err := checkValue(p, v); err != nil {
			problems = append(problems, fmt.Sprintf("parameter %q: %v", name, err))
			continue
		}
		out[name] = v
	}
	for _, p := range m.Params {
		if _, ok := out[p.Name]; ok {
			continue
		}
		if _, given := values[p.Name]; given {
			continue // already reported
		}
		if p.Required {
			problems = append(problems, fmt.Sprintf("parameter %q is required", p.Name))
			continue
		}
		if p.Default != "" {
			out[p.Name] = p.Default
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%w: %s", ErrInvalidParams, strings.Join(problems, "; "))
	}
	return out, nil
}

// ValidateFreeParams checks parameters for a target without a manifest (a
// script published without one): any name matching [a-z][a-z0-9_]* with a
// value within the size limits.
func ValidateFreeParams(values map[string]string) (map[string]string, error) {
	if err := checkSizes(values); err != nil {
		return nil, err
	}
	var problems []string
	out := make(map[string]string, len(values))
	for k, v := range values {
		if !ValidParamName(k) {
			problems = append(problems, fmt.Sprintf("parameter name %q: want [a-z][a-z0-9_]*", k))
			continue
		}
		out[k] = v
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%w: %s", ErrInvalidParams, strings.Join(problems, "; "))
	}
	return out, nil
}

func checkSizes(values map[string]string) error {
	if len(values) > MaxParams {
		return fmt.Errorf("%w: %d parameters, at most %d", ErrInvalidParams, len(values), MaxParams)
	}
	for k, v := range values {
		if len(v) > MaxParamValue {
			return fmt.Errorf("%w: parameter %q is %d bytes, at most %d", ErrInvalidParams, k, len(v), MaxParamValue)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%w: parameter %q contains a NUL byte", ErrInvalidParams, k)
		}
	}
	return nil
}

func (m *Manifest) paramNames() string {
	if len(m.Params) == 0 {
		return "no parameters"
	}
	names := make([]string, len(m.Params))
	for i, p := range m.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

func checkValue(p Param, v string) error {
	if err := checkType(p, v); err != nil {
		return err
	}
	if len(p.Allowed) == 0 {
		return nil
	}
	for _, a := range p.Allowed {
		if a == v {
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(p.Allowed, ", "))
}

func checkType(p Param, v string) error {
	switch p.Type {
	case TypeInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
	case TypeBool:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", v)
		}
	case TypeDuration:
		if _, err := time.ParseDuration(v); err != nil {
			return fmt.Errorf("%q is not a duration (like 90s or 15m)", v)
		}
	}
	return nil
}

// Version is a parsed semantic version (major.minor.patch; a pre-release or
// build suffix is kept for display but ignored in comparisons).
type Version struct{ Major, Minor, Patch int }

// ParseVersion parses "1.2.3" or "v1.2.3".
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("version %q: want major.minor.patch, like 1.4.0", s)
	}
	var v Version
	var err error
	if v.Major, err = strconv.Atoi(m[1]); err != nil {
		return Version{}, fmt.Errorf("version %q: %w", s, err)
	}
	if v.Minor, err = strconv.Atoi(m[2]); err != nil {
		return Version{}, fmt.Errorf("version %q: %w", s, err)
	}
	if v.Patch, err = strconv.Atoi(m[3]); err != nil {
		return Version{}, fmt.Errorf("version %q: %w", s, err)
	}
	return v, nil
}

// Compare returns -1, 0 or 1.
func (v Version) Compare(o Version) int {
	switch {
	case v.Major != o.Major:
		return cmpInt(v.Major, o.Major)
	case v.Minor != o.Minor:
		return cmpInt(v.Minor, o.Minor)
	default:
		return cmpInt(v.Patch, o.Patch)
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
