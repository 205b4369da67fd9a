package sdk

import "github.com/patchbay/patchbay/internal/manifest"

// The manifest types and helpers live in internal/manifest, which has no
// dependencies, so the store and the API use them without linking go-plugin
// and gRPC. These aliases keep the plugin API unchanged.

// Parameter types a manifest may declare.
const (
	TypeString   = manifest.TypeString
	TypeInt      = manifest.TypeInt
	TypeBool     = manifest.TypeBool
	TypeDuration = manifest.TypeDuration
)

// Limits on parameters, enforced wherever parameters are validated (CLI,
// relay, agent and plugin), so a hostile job cannot hand a plugin megabytes.
const (
	MaxParams     = manifest.MaxParams
	MaxParamValue = manifest.MaxParamValue
)

// ErrInvalidParams is wrapped by every parameter validation error.
var ErrInvalidParams = manifest.ErrInvalidParams

// Param declares one parameter of a plugin.
type Param = manifest.Param

// Manifest describes a plugin. It is what `plugin manifest` prints, what the
// catalog stores, and what the agent validates parameters against.
type Manifest = manifest.Manifest

// Version is a parsed semantic version.
type Version = manifest.Version

// ValidName reports whether s is a valid plugin or script name.
func ValidName(s string) bool { return manifest.ValidName(s) }

// ValidParamName reports whether s is a valid parameter name.
func ValidParamName(s string) bool { return manifest.ValidParamName(s) }

// ValidateFreeParams checks parameters for a target without a manifest.
func ValidateFreeParams(values map[string]string) (map[string]string, error) {
	return manifest.ValidateFreeParams(values)
}

// ParseVersion parses "1.2.3" or "v1.2.3".
func ParseVersion(s string) (Version, error) { return manifest.ParseVersion(s) }
