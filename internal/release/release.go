// Package release reads a Patchbay release: a directory of binaries and
// packages with a SHA256SUMS manifest the organisation signs with its own key.
//
// The layout, made by `make release` and served by a relay (`serve
// --releases DIR`, server/releases), is
//
//	<version>/SHA256SUMS       "<64 hex>  <name>" per file (sha256sum's format), sorted by name
//	<version>/SHA256SUMS.sig   SSHSIG over SHA256SUMS, namespace patchbay-release
//	<version>/patchbay-agent_<version>_<os>_<arch>[.exe]
//	<version>/patchbay_<version>_<os>_<arch>[.exe]
//	<version>/patchbay-plugin-<name>_<version>_<os>_<arch>[.exe]
//	<version>/patchbay-server_<version>_linux_<arch>
//	<version>/*.deb, *.rpm, com.patchbay.agent.plist
//
// so that anyone can check one with stock tools:
//
//	ssh-keygen -Y verify -f allowed_signers -I ORG -n patchbay-release -s SHA256SUMS.sig < SHA256SUMS
//	sha256sum -c --ignore-missing SHA256SUMS
//
// An agent trusts a release only when SHA256SUMS verifies against its own
// allowed_signers for namespace patchbay-release and the binary it fetched
// hashes to the manifest's line: a relay can serve releases but never forge one.
package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/patchbay/patchbay/plugins/signature"
)

// File names inside a release directory.
const (
	SumsName = "SHA256SUMS"
	SigName  = "SHA256SUMS.sig"
)

// Limits on untrusted input.
const (
	MaxSumsSize = 1 << 20 // a SHA256SUMS file
	MaxFiles    = 4096    // lines of a SHA256SUMS file
	MaxNameLen  = 200     // a file name in it
	MaxVersion  = 64      // a version string
)

// Errors callers branch on.
var (
	// ErrMalformed: SHA256SUMS (or a version or name) is not well formed.
	ErrMalformed = errors.New("malformed release manifest")
	// ErrNotInRelease: the release has no such file.
	ErrNotInRelease = errors.New("file not in release")
	// ErrHashMismatch: a file's bytes do not hash to its manifest line.
	ErrHashMismatch = errors.New("file does not match the release manifest")
)

// File is one line of SHA256SUMS.
type File struct {
	Name   string
	SHA256 string // 64 lowercase hex digits
}

// Manifest is a parsed SHA256SUMS.
type Manifest struct {
	Files []File // sorted by Name, names unique
}

// Parse reads a SHA256SUMS file strictly: each line "<hex>  <name>" (text
// mode) or "<hex> *<name>" (binary mode), hex lowercase or uppercase, names
// plain file names (see CheckName), no duplicates, no empty lines except a
// final newline.
func Parse(b []byte) (*Manifest, error) {
	if len(b) > MaxSumsSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSumsSize)
	}
	text := strings.TrimSuffix(string(b), "\n")
	if text == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	lines := strings.Split(text, "\n")
	if len(lines) > MaxFiles {
		return nil, fmt.Errorf("%w: more than %d files", ErrMalformed, MaxFiles)
	}
	m := &Manifest{Files: make([]File, 0, len(lines))}
	seen := make(map[string]bool, len(lines))
	for i, line := range lines {
		if len(line) < 67 || (line[64:66] != "  " && line[64:66] != " *") {
			return nil, fmt.Errorf("%w: line %d: want \"<64 hex digits>  <file name>\"", ErrMalformed, i+1)
		}
		sum := strings.ToLower(line[:64])
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%w: line %d: hash is not hexadecimal", ErrMalformed, i+1)
		}
		name := line[66:]
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: line %d: %s listed twice", ErrMalformed, i+1, name)
		}
		seen[name] = true
		m.Files = append(m.Files, File{Name: name, SHA256: sum})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Name < m.Files[j].Name })
	return m, nil
}

// Marshal returns m in SHA256SUMS format (text mode, sorted by name).
func (m *Manifest) Marshal() []byte {
	files := append([]File(nil), m.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var b bytes.Buffer
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Name)
	}
	return b.Bytes()
}

// Lookup returns the line for name.
func (m *Manifest) Lookup(name string) (File, error) {
	i := sort.Search(len(m.Files), func(i int) bool { return m.Files[i].Name >= name })
	if i < len(m.Files) && m.Files[i].Name == name {
		return m.Files[i], nil
	}
	return File{}, fmt.Errorf("%w: %s", ErrNotInRelease, name)
}

// CheckName accepts a plain file name: 1..MaxNameLen of [A-Za-z0-9._+-],
// not starting with a dot or a dash.
func CheckName(name string) error {
	if err := checkToken(name, MaxNameLen); err != nil {
		return fmt.Errorf("%w: file name %q: %w", ErrMalformed, name, err)
	}
	return nil
}

// CheckVersion accepts a version string as `make release` makes one (git
// describe, e.g. v1.4.0 or v1.4.0-3-g1a2b3c4): 1..MaxVersion of
// [A-Za-z0-9._+-], not starting with a dot or a dash.
func CheckVersion(v string) error {
	if err := checkToken(v, MaxVersion); err != nil {
		return fmt.Errorf("%w: version %q: %w", ErrMalformed, v, err)
	}
	return nil
}

func checkToken(s string, maxLen int) error {
	if s == "" || len(s) > maxLen {
		return fmt.Errorf("want 1 to %d characters", maxLen)
	}
	if s[0] == '.' || s[0] == '-' {
		return errors.New("must not start with '.' or '-'")
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '+' || c == '-'
		if !ok {
			return fmt.Errorf("character %q not allowed (letters, digits, . _ + - only)", c)
		}
	}
	return nil
}

// AgentName is the file name of the agent binary of version for goos/goarch.
func AgentName(version, goos, goarch string) string {
	return binaryName("patchbay-agent", version, goos, goarch)
}

// CLIName is the file name of the CLI binary of version for goos/goarch.
func CLIName(version, goos, goarch string) string {
	return binaryName("patchbay", version, goos, goarch)
}

// PluginName is the file name of built-in plugin name of version.
func PluginName(plugin, version, goos, goarch string) string {
	return binaryName("patchbay-plugin-"+plugin, version, goos, goarch)
}

func binaryName(prog, version, goos, goarch string) string {
	n := prog + "_" + version + "_" + goos + "_" + goarch
	if goos == "windows" {
		n += ".exe"
	}
	return n
}

// Verify parses sums and checks sig over it: made for namespace
// patchbay-release by a key that signers trust for that namespace at now.
// Errors wrap ErrMalformed or plugins/signature's sentinels
// (ErrBadSignature, ErrWrongNamespace, ErrUntrustedSigner).
func Verify(sums, sig []byte, signers *signature.AllowedSigners, now time.Time) (*Manifest, signature.Signer, error) {
	m, err := Parse(sums)
	if err != nil {
		return nil, signature.Signer{}, fmt.Errorf("release manifest: %w", err)
	}
	who, err := signers.VerifyNamespace(bytes.NewReader(sums), sig, now, signature.ReleaseNamespace)
	if err != nil {
		return nil, signature.Signer{}, fmt.Errorf("release manifest %s: %w", SumsName, err)
	}
	return m, who, nil
}

// Check reads r to its end and reports whether it hashes to f's line.
func Check(r io.Reader, f File) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("hash %s: %w", f.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, the manifest says %s", ErrHashMismatch, f.Name, got, f.SHA256)
	}
	return nil
}
