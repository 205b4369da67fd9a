// Package sdk is the contract every Patchbay remediation plugin implements
// and the go-plugin (gRPC) glue between the agent and a plugin process.
//
// A plugin is one small main:
//
//	func main() { sdk.Serve(myPlugin{}) }
//
// where myPlugin implements [Plugin]. The agent launches the plugin as a
// subprocess (go-plugin, gRPC only, mutual TLS with fresh keys per launch:
// see [HostTLS]), calls Manifest, validates the
// job's parameters against it, then calls Check and, unless the job is a dry
// run and if Check says a fix is needed, Fix.
//
// Run by hand (without the agent's handshake cookie), a plugin prints its
// manifest as JSON for `./plugin manifest`; that is how `patchbay plugins
// publish` learns the name, version and parameters.
package sdk

import (
	"context"
	"strconv"
	"time"
)

// Plugin is what a plugin implements. Check must not change the machine.
// Both calls get a context that ends when the job's timeout passes or it is
// cancelled; plugins pass it on to every command they run.
type Plugin interface {
	Manifest() Manifest
	Check(ctx context.Context, req Request) (CheckResult, error)
	Fix(ctx context.Context, req Request, out *Output) (FixResult, error)
}

// Request is one Check or Fix call: parameters already validated against
// the manifest with defaults applied, and an optional attachment.
type Request struct {
	Params     Params
	Attachment *Attachment
}

// Attachment is a file the agent verified (signature and SHA-256) before the
// call: the script plugin's script. The plugin should re-hash it before use.
type Attachment struct {
	Name   string
	Path   string
	SHA256 string
}

// Params holds validated parameter values. Getters return the zero value for
// a parameter that is absent (no default and not given).
type Params map[string]string

// String returns the value of name.
func (p Params) String(name string) string { return p[name] }

// Int returns the value of name as an integer.
func (p Params) Int(name string) int64 {
	n, _ := strconv.ParseInt(p[name], 10, 64)
	return n
}

// Bool returns the value of name as a boolean.
func (p Params) Bool(name string) bool {
	b, _ := strconv.ParseBool(p[name])
	return b
}

// Duration returns the value of name as a duration.
func (p Params) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(p[name])
	return d
}

// CheckResult is what Check found.
type CheckResult struct {
	Needed  bool   // a fix would change something
	Summary string // one line for a table
	Details string // free text (or JSON) for `jobs show`
}

// FixResult is what Fix did.
type FixResult struct {
	Changed        bool
	Summary        string
	RebootRequired bool
	Details        string
}
