package apiv1

import "time"

// Artifact kinds.
const (
	KindPlugin = "plugin"
	KindScript = "script"
)

// Upload limits of the catalog (POST /v1/plugins and POST /v1/scripts). They are
// separate from the 64 KiB limit on JSON bodies.
const (
	MaxPluginUpload = 256 << 20 // whole multipart body of a plugin upload
	MaxScriptSize   = 1 << 20   // a script file
	MaxSignature    = 64 << 10  // an armored SSHSIG signature
	MaxManifest     = 256 << 10 // a plugin's JSON manifest
)

// Multipart part names of the catalog uploads.
const (
	PartFile     = "file"     // the executable or script; its file name is kept for scripts
	PartSig      = "sig"      // the armored SSHSIG signature of the file
	PartManifest = "manifest" // plugins only: the JSON printed by `PLUGIN manifest`
)

// Artifact is one signed plugin or script of the relay's catalog, named by the
// lower-case hex SHA-256 of its content.
type Artifact struct {
	SHA256  string `json:"sha256"`
	Kind    string `json:"kind"` // plugin | script
	Name    string `json:"name"`
	Version string `json:"version"`
	// OS is the plugin executable's GOOS, or for a script the comma-separated OS
	// list of its manifest ("" = any OS).
	OS string `json:"os"`
	// Arch is the plugin executable's GOARCH; "" for scripts.
	Arch        string  `json:"arch"`
	Size        int64   `json:"size"`
	Description string  `json:"description"`
	Params      []Param `json:"params"`
	// FreeParams is set for a script published without a header manifest: it
	// takes any parameter whose name matches [a-z][a-z0-9_]*.
	FreeParams   bool `json:"free_params,omitempty"`
	NeedsConsent bool `json:"needs_consent,omitempty"`
	MayReboot    bool `json:"may_reboot,omitempty"`
	// Signer is the SHA256:... fingerprint of the key that signed the file. The
	// relay only checked that the signature matches the file; whether that key
	// is trusted is decided by each agent's allowed_signers file.
	Signer        string    `json:"signer"`
	SignerKeyType string    `json:"signer_key_type"`
	PublishedBy   string    `json:"published_by"`
	PublishedAt   time.Time `json:"published_at"`
	// Sites it is published to ("ORG/SITE"), or ["all"]; publish with
	// ?site=REF (repeatable) to limit it.
	Sites []string `json:"sites"`
}

// Param is one declared parameter of a plugin or script (the manifest's).
type Param struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Default     string   `json:"default,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Allowed     []string `json:"allowed,omitempty"`
	Description string   `json:"description,omitempty"`
}
