// Package trust manages the agent's trusted signers: the OpenSSH
// allowed_signers file DATA/allowed_signers that decides whose plugin and
// script signatures the agent accepts.
//
// The relay has no way to change this file. Only local commands run by an
// administrator do (patchbay-agent enroll --trust, patchbay-agent trust
// add|list|remove), and it may be edited by hand like any allowed_signers file.
// Every write replaces the file atomically and leaves the lines it does not
// add or remove, comments included, byte for byte as they were. Concurrent
// edits by two processes are not serialised: the last write wins.
package trust

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/plugins/signature"
)

// FileName is the trusted signers file's name in the agent's data directory.
const FileName = "allowed_signers"

// MaxPrincipalLen caps the principal given to Add.
const MaxPrincipalLen = 128

// defaultMode is the mode of a new file: public keys are not secret.
const defaultMode = 0o644

// Errors callers branch on.
var (
	// ErrNotFound: Remove matched no line.
	ErrNotFound = errors.New("no such trusted signer")
	// ErrAlreadyTrusted: Add was given a key that a line already lists.
	ErrAlreadyTrusted = errors.New("key already trusted")
	// ErrInsecureFile: the file is writable by group or others, so someone
	// other than its owner could make the agent trust them.
	ErrInsecureFile = errors.New("trusted signers file is writable by group or others")
)

// Entry is one signer line of the file, for listing.
type Entry struct {
	// Principal is the line's principals as written (comma-separated).
	Principal string `json:"principal"`
	// KeyType is the key's SSH type, e.g. "ssh-ed25519".
	KeyType string `json:"key_type"`
	// Fingerprint is the key's SHA256 fingerprint ("SHA256:...").
	Fingerprint string `json:"fingerprint"`
	// CertAuthority: the key is a CA, trusted to certify signers.
	CertAuthority bool `json:"cert_authority,omitempty"`
	// Namespaces the key is trusted for; nil means any namespace.
	Namespaces []string `json:"namespaces"`
	// ValidAfter and ValidBefore bound when the line applies (zero: unbounded).
	ValidAfter  time.Time `json:"valid_after,omitzero"`
	ValidBefore time.Time `json:"valid_before,omitzero"`
	Comment     string    `json:"comment,omitempty"`
	// Line is the 1-based line number in the file.
	Line int `json:"line"`
}

// Path returns the trusted signers file of the data directory dataDir.
func Path(dataDir string) string {
	return filepath.Join(dataDir, FileName)
}

// Load parses the trusted signers file. A missing file is an empty set,
// which trusts nothing; a malformed file, or one writable by group or others,
// is an error naming the file (and the line).
func Load(dataDir string) (*signature.AllowedSigners, error) {
	_, a, _, err := read(dataDir)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// List returns the signer lines of the file, in order (none if it is missing).
func List(dataDir string) ([]Entry, error) {
	a, err := Load(dataDir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range a.Entries() {
		out = append(out, Entry{
			Principal:     strings.Join(e.Principals, ","),
			KeyType:       e.Key.Type(),
			Fingerprint:   ssh.FingerprintSHA256(e.Key),
			CertAuthority: e.CertAuthority,
			Namespaces:    e.Namespaces,
			ValidAfter:    e.ValidAfter,
			ValidBefore:   e.ValidBefore,
			Comment:       e.Comment,
			Line:          e.Line,
		})
	}
	return out, nil
}

// Add trusts the public key pubKeyLine (authorized_keys format, such as the
// .pub file next to a signing key: "ssh-ed25519 AAAA... comment") for
// principal, appending the line
//
//	principal namespaces="patchbay-plugin" keytype base64 comment
//
// namespaces replaces patchbay-plugin if given. The principal must be
// non-empty, at most 128 characters, without white space, control
// characters, quotes or commas, and not start with '#' or '!'. A key that a
// line already lists is refused with ErrAlreadyTrusted. Certificates are
// refused (trust their CA with a cert-authority line by hand).
func Add(dataDir, principal string, pubKeyLine []byte, namespaces ...string) error {
	if err := checkPrincipal(principal); err != nil {
		return fmt.Errorf("trust add: %w", err)
	}
	if len(namespaces) == 0 {
		namespaces = []string{signature.Namespace}
	}
	for _, ns := range namespaces {
		if err := checkNamespace(ns); err != nil {
			return fmt.Errorf("trust add: %w", err)
		}
	}
	key, comment, err := parsePublicKey(pubKeyLine)
	if err != nil {
		return fmt.Errorf("trust add: %w", err)
	}

	content, a, mode, err := read(dataDir)
	if err != nil {
		return fmt.Errorf("trust add: %w", err)
	}
	for _, e := range a.Entries() {
		if !e.CertAuthority && bytes.Equal(e.Key.Marshal(), key.Marshal()) {
			return fmt.Errorf("trust add: %w: %s is already trusted for %s (line %d of %s)",
				ErrAlreadyTrusted, ssh.FingerprintSHA256(key), strings.Join(e.Principals, ","), e.Line, Path(dataDir))
		}
	}

	line := fmt.Sprintf(`%s namespaces="%s" %s %s`, principal, strings.Join(namespaces, ","),
		key.Type(), base64.StdEncoding.EncodeToString(key.Marshal()))
	if comment != "" {
		line += " " + comment
	}
	if len(content) > 0 && content[len(content)-1] != '\n' {
		content = append(content, '\n')
	}
	content = append(content, line+"\n"...)
	if err := install(dataDir, content, mode); err != nil {
		return fmt.Errorf("trust add: %w", err)
	}
	return nil
}

// Import replaces the trusted signers file with the content of
// allowedSignersFile, after checking that it parses and that at least one of
// its lines trusts a key for namespace patchbay-plugin. On error the current
// file is left untouched.
func Import(dataDir string, allowedSignersFile string) error {
	f, err := os.Open(allowedSignersFile)
	if err != nil {
		return fmt.Errorf("trust import: %w", err)
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, signature.MaxAllowedSignersSize+1))
	if err != nil {
		return fmt.Errorf("trust import: read %s: %w", allowedSignersFile, err)
	}
	a, err := signature.ParseAllowedSigners(bytes.NewReader(content))
	if err != nil {
		return fmt.Errorf("trust import: %s: %w", allowedSignersFile, err)
	}
	usable := false
	for _, e := range a.Entries() {
		usable = usable || e.AllowsNamespace(signature.Namespace)
	}
	if !usable {
		return fmt.Errorf("trust import: %s has no line trusting a key for namespace %s", allowedSignersFile, signature.Namespace)
	}
	mode := os.FileMode(defaultMode)
	if _, _, m, err := read(dataDir); err == nil {
		mode = m
	}
	if err := install(dataDir, content, mode); err != nil {
		return fmt.Errorf("trust import: %w", err)
	}
	return nil
}

// Remove deletes every line one of whose principals, or whose key
// fingerprint ("SHA256:..."), equals match, and returns how many it deleted;
// none is ErrNotFound. A line listing several principals is removed whole.
func Remove(dataDir string, match string) (int, error) {
	if match == "" {
		return 0, errors.New("trust remove: empty principal or fingerprint")
	}
	content, a, mode, err := read(dataDir)
	if err != nil {
		return 0, fmt.Errorf("trust remove: %w", err)
	}
	drop := map[int]bool{}
	for _, e := range a.Entries() {
		if ssh.FingerprintSHA256(e.Key) == match || slices.Contains(e.Principals, match) {
			drop[e.Line-1] = true
		}
	}
	if len(drop) == 0 {
		return 0, fmt.Errorf("trust remove: %w: no line with principal or fingerprint %q in %s", ErrNotFound, match, Path(dataDir))
	}
	lines := bytes.Split(content, []byte("\n"))
	kept := lines[:0]
	for i, l := range lines {
		if !drop[i] {
			kept = append(kept, l)
		}
	}
	if err := install(dataDir, bytes.Join(kept, []byte("\n")), mode); err != nil {
		return 0, fmt.Errorf("trust remove: %w", err)
	}
	return len(drop), nil
}

// read returns the file's content, its parsed form and its permission bits
// (defaultMode and an empty set if it does not exist).
func read(dataDir string) ([]byte, *signature.AllowedSigners, os.FileMode, error) {
	path := Path(dataDir)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &signature.AllowedSigners{}, defaultMode, nil
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("trusted signers: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("trusted signers: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, 0, fmt.Errorf("trusted signers %s: not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return nil, nil, 0, fmt.Errorf("trusted signers %s: %w (mode %04o); fix with: chmod go-w %s",
			path, ErrInsecureFile, fi.Mode().Perm(), path)
	}
	content, err := io.ReadAll(io.LimitReader(f, signature.MaxAllowedSignersSize+1))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("trusted signers: read %s: %w", path, err)
	}
	a, err := signature.ParseAllowedSigners(bytes.NewReader(content))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("trusted signers %s: %w", path, err)
	}
	return content, a, fi.Mode().Perm(), nil
}

// install checks that content parses and atomically writes it.
func install(dataDir string, content []byte, mode os.FileMode) error {
	if _, err := signature.ParseAllowedSigners(bytes.NewReader(content)); err != nil {
		return fmt.Errorf("new %s would not parse: %w", FileName, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(Path(dataDir), content, mode)
}

// parsePublicKey parses exactly one OpenSSH public key line.
func parsePublicKey(b []byte) (ssh.PublicKey, string, error) {
	key, comment, options, rest, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, "", fmt.Errorf("not an OpenSSH public key (want e.g. the .pub file next to the signing key): %w", err)
	}
	if len(options) > 0 {
		return nil, "", fmt.Errorf("public key has options %q: want a bare key, not an authorized_keys or allowed_signers line", strings.Join(options, ","))
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey(rest); err == nil {
		return nil, "", errors.New("more than one public key given")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, "", errors.New("a certificate cannot be trusted directly: trust its CA with a cert-authority line")
	}
	if err := signature.CheckKey(key); err != nil {
		return nil, "", err
	}
	comment = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, comment)
	return key, strings.TrimSpace(comment), nil
}

// checkPrincipal validates a principal for Add.
func checkPrincipal(p string) error {
	switch {
	case p == "":
		return errors.New("empty principal")
	case len(p) > MaxPrincipalLen:
		return fmt.Errorf("principal longer than %d characters", MaxPrincipalLen)
	case p[0] == '#' || p[0] == '!':
		return fmt.Errorf("principal %q: must not start with %q", p, p[0])
	}
	for _, r := range p {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '\'' || r == ',' || r == unicode.ReplacementChar {
			return fmt.Errorf("principal %q: no white space, control characters, quotes or commas allowed", p)
		}
	}
	return nil
}

// checkNamespace validates a namespace for Add.
func checkNamespace(ns string) error {
	if ns == "" {
		return errors.New("empty namespace")
	}
	for _, r := range ns {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '\\' || r == ',' || r == unicode.ReplacementChar {
			return fmt.Errorf("namespace %q: no white space, control characters, quotes, backslashes or commas allowed", ns)
		}
	}
	return nil
}
