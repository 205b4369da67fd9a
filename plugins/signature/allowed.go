package signature

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Limits on an allowed_signers file.
const (
	MaxAllowedSignersSize  = 1 << 20
	MaxAllowedSignersLines = 10000
	MaxAllowedSignersLine  = 32 << 10
)

// AllowedSigners is a parsed OpenSSH allowed_signers file (see ssh-keygen(1),
// ALLOWED SIGNERS). The zero value is an empty set, which trusts nothing.
// It is not modified after parsing and is safe for concurrent use.
type AllowedSigners struct {
	entries []AllowedSigner
}

// AllowedSigner is one line of an allowed_signers file.
type AllowedSigner struct {
	// Line is the 1-based line number in the file.
	Line int
	// Principals are the line's principal patterns, in order ('*' and '?'
	// wildcards; a leading '!' negates).
	Principals []string
	// CertAuthority: Key is a certificate authority, and the line trusts user
	// certificates it issued rather than the key itself.
	CertAuthority bool
	// Namespaces are the namespace patterns the key is trusted for; nil means
	// any namespace.
	Namespaces []string
	// ValidAfter and ValidBefore bound when the key is trusted; zero means
	// unbounded. Both bounds are inclusive, as in OpenSSH.
	ValidAfter, ValidBefore time.Time
	// Key is the public key (the CA's key for a cert-authority line).
	Key ssh.PublicKey
	// Comment is whatever follows the key on the line.
	Comment string
}

// Principal returns the first principal that is not a negation ("" if none).
func (s AllowedSigner) Principal() string {
	for _, p := range s.Principals {
		if !strings.HasPrefix(p, "!") {
			return p
		}
	}
	return ""
}

// AllowsNamespace reports whether the line trusts its key for namespace ns.
func (s AllowedSigner) AllowsNamespace(ns string) bool {
	return s.Namespaces == nil || matchList(ns, s.Namespaces)
}

// Entries returns the signer lines (not comments or blank lines) in file order.
func (a *AllowedSigners) Entries() []AllowedSigner {
	if a == nil {
		return nil
	}
	return append([]AllowedSigner(nil), a.entries...)
}

// Len returns the number of signer lines.
func (a *AllowedSigners) Len() int {
	if a == nil {
		return 0
	}
	return len(a.entries)
}

// LoadAllowedSigners reads and parses an allowed_signers file. A missing file
// is an error wrapping fs.ErrNotExist.
func LoadAllowedSigners(path string) (*AllowedSigners, error) {
	b, err := readFileLimit(path, MaxAllowedSignersSize)
	if err != nil {
		return nil, fmt.Errorf("allowed signers: %w", err)
	}
	a, err := ParseAllowedSigners(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ParseAllowedSigners parses the OpenSSH allowed_signers format: one signer
// per line,
//
//	principals [options] keytype base64-key [comment]
//
// with '#' comment lines and blank lines ignored. principals is a
// comma-separated list of patterns, optionally in double quotes. options are
// comma-separated without spaces: cert-authority, namespaces="list",
// valid-after="time" and valid-before="time", where time is
// YYYYMMDD[HHMM[SS]] in local time, or in UTC with a "Z" or "UTC" suffix.
// Anything else, including unknown options, is an error naming the line.
// Certificates cannot be listed (list their CA with cert-authority).
func ParseAllowedSigners(r io.Reader) (*AllowedSigners, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxAllowedSignersSize+1))
	if err != nil {
		return nil, fmt.Errorf("allowed signers: %w", err)
	}
	if len(b) > MaxAllowedSignersSize {
		return nil, fmt.Errorf("allowed signers: larger than %d bytes", MaxAllowedSignersSize)
	}
	a := &AllowedSigners{}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > MaxAllowedSignersLines {
		return nil, fmt.Errorf("allowed signers: more than %d lines", MaxAllowedSignersLines)
	}
	for i, raw := range lines {
		n := i + 1
		if len(raw) > MaxAllowedSignersLine {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n, MaxAllowedSignersLine)
		}
		if bytes.IndexByte(raw, 0) >= 0 {
			return nil, fmt.Errorf("line %d: contains a NUL byte", n)
		}
		line := strings.Trim(string(raw), " \t\r")
		if line == "" || line[0] == '#' {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		e.Line = n
		a.entries = append(a.entries, e)
	}
	return a, nil
}

// parseLine parses one non-blank, non-comment line.
func parseLine(line string) (AllowedSigner, error) {
	var e AllowedSigner
	principals, rest, err := principalsField(line)
	if err != nil {
		return e, err
	}
	if e.Principals, err = splitList(principals, "principal"); err != nil {
		return e, err
	}
	if e.Principal() == "" {
		return e, errors.New("no principal (only negated patterns)")
	}

	tok, after := nextField(rest)
	if tok == "" {
		return e, errors.New("missing key after the principals")
	}
	if !keyTypeName(tok) {
		if err := parseOptions(tok, &e); err != nil {
			return e, err
		}
		if tok, after = nextField(after); tok == "" {
			return e, errors.New("missing key after the options")
		}
	}
	if e.Key, e.Comment, err = parseKey(tok, after); err != nil {
		return e, err
	}
	return e, nil
}

// principalsField splits off the first field, which may be double-quoted.
func principalsField(line string) (field, rest string, err error) {
	if line[0] == '"' {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return "", "", errors.New("principals: missing closing quote")
		}
		field, rest = line[1:1+end], line[2+end:]
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return "", "", errors.New("principals: no space after the closing quote")
		}
		return field, rest, nil
	}
	field, rest = nextField(line)
	if strings.ContainsRune(field, '"') {
		return "", "", errors.New("principals: a quote inside an unquoted principal list")
	}
	return field, rest, nil
}

// nextField returns the first space-separated field of s, ignoring spaces
// inside double quotes, and what follows it.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted && i+1 < len(s) && s[i+1] == '"':
			i++
		case c == '"':
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			return s[:i], s[i:]
		}
	}
	return s, ""
}

// splitList splits a comma-separated list, refusing empty elements (and
// white space in namespaces, where " b" in "a, b" is surely a mistake).
func splitList(s, what string) ([]string, error) {
	if s == "" {
		return nil, fmt.Errorf("empty %s list", what)
	}
	l := strings.Split(s, ",")
	for _, v := range l {
		if v == "" || v == "!" {
			return nil, fmt.Errorf("empty %s in list %q", what, s)
		}
		if what == "namespace" && strings.ContainsAny(v, " \t") {
			return nil, fmt.Errorf("%s %q contains white space", what, v)
		}
	}
	return l, nil
}

// parseOptions parses the comma-separated options field into e.
func parseOptions(s string, e *AllowedSigner) error {
	seen := map[string]bool{}
	for {
		name, value, hasValue, rest, err := nextOption(s)
		if err != nil {
			return err
		}
		if name != "cert-authority" && seen[name] {
			return fmt.Errorf("option %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "cert-authority":
			if hasValue {
				return errors.New("option cert-authority takes no value")
			}
			e.CertAuthority = true
		case "namespaces":
			if !hasValue {
				return errors.New(`option namespaces needs a value, e.g. namespaces="patchbay-plugin"`)
			}
			if e.Namespaces, err = splitList(value, "namespace"); err != nil {
				return fmt.Errorf("option namespaces: %w", err)
			}
		case "valid-after", "valid-before":
			if !hasValue {
				return fmt.Errorf(`option %s needs a value, e.g. %s="20260102"`, name, name)
			}
			t, err := parseTime(value)
			if err != nil {
				return fmt.Errorf("option %s: %w", name, err)
			}
			if name == "valid-after" {
				e.ValidAfter = t
			} else {
				e.ValidBefore = t
			}
		default:
			if !hasValue && strings.ContainsRune(name, '-') {
				return fmt.Errorf("unknown option %q (or unsupported key type)", name)
			}
			return fmt.Errorf("unknown option %q (allowed: cert-authority, namespaces, valid-after, valid-before)", name)
		}
		if rest == "" {
			break
		}
		s = rest
	}
	if !e.ValidAfter.IsZero() && !e.ValidBefore.IsZero() && !e.ValidBefore.After(e.ValidAfter) {
		return errors.New("valid-before is not after valid-after")
	}
	return nil
}

// nextOption parses one option at the start of s: name or name="value"
// (a backslash escapes a quote inside the value). rest is what follows the
// separating comma.
func nextOption(s string) (name, value string, hasValue bool, rest string, err error) {
	i := strings.IndexAny(s, "=,")
	if i < 0 {
		return strings.ToLower(s), "", false, "", checkOptionName(s)
	}
	name = strings.ToLower(s[:i])
	if err := checkOptionName(s[:i]); err != nil {
		return "", "", false, "", err
	}
	if s[i] == ',' {
		rest = s[i+1:]
		if rest == "" {
			return "", "", false, "", errors.New("options end with a comma")
		}
		return name, "", false, rest, nil
	}
	s = s[i+1:]
	if s == "" || s[0] != '"' {
		return "", "", false, "", fmt.Errorf(`option %s: value must be in double quotes`, name)
	}
	var v strings.Builder
	j := 1
	for ; j < len(s) && s[j] != '"'; j++ {
		if s[j] == '\\' && j+1 < len(s) && s[j+1] == '"' {
			j++
		}
		v.WriteByte(s[j])
	}
	if j >= len(s) {
		return "", "", false, "", fmt.Errorf("option %s: missing closing quote", name)
	}
	s = s[j+1:]
	switch {
	case s == "":
	case s[0] != ',':
		return "", "", false, "", fmt.Errorf("option %s: unexpected %q after the closing quote", name, s)
	case len(s) == 1:
		return "", "", false, "", errors.New("options end with a comma")
	default:
		rest = s[1:]
	}
	return name, v.String(), true, rest, nil
}

// checkOptionName refuses empty option names.
func checkOptionName(s string) error {
	if s == "" {
		return errors.New("empty option")
	}
	return nil
}

// parseTime parses YYYYMMDD[HHMM[SS]][Z|UTC] like OpenSSH: UTC with the
// suffix, local time without.
func parseTime(s string) (time.Time, error) {
	loc := time.Local
	v := s
	switch u := strings.ToUpper(s); {
	case strings.HasSuffix(u, "UTC"):
		v, loc = s[:len(s)-3], time.UTC
	case strings.HasSuffix(u, "Z"):
		v, loc = s[:len(s)-1], time.UTC
	}
	var layout string
	switch len(v) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("time %q: want YYYYMMDD[HHMM[SS]][Z]", s)
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return time.Time{}, fmt.Errorf("time %q: want YYYYMMDD[HHMM[SS]][Z]", s)
		}
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, err)
	}
	if t.Unix() <= 0 {
		return time.Time{}, fmt.Errorf("time %q: before 1970", s)
	}
	return t, nil
}

// keyTypeName reports whether s names an SSH key or certificate type, so a
// field is taken for a key rather than for options.
func keyTypeName(s string) bool {
	switch s {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoRSA, "ssh-dss":
		return true
	}
	return strings.HasSuffix(s, "-cert-v01@openssh.com")
}

// parseKey parses "base64 [comment]" following a key type field.
func parseKey(keyType, rest string) (ssh.PublicKey, string, error) {
	if strings.HasSuffix(keyType, "-cert-v01@openssh.com") {
		return nil, "", fmt.Errorf("key type %s: a certificate cannot be listed; list its CA's key with the cert-authority option", keyType)
	}
	if !keyTypeName(keyType) {
		return nil, "", fmt.Errorf("%w: key type %q", ErrUnsupportedKey, keyType)
	}
	b64, comment := nextField(rest)
	if b64 == "" {
		return nil, "", fmt.Errorf("key type %s: missing base64 key", keyType)
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", fmt.Errorf("key type %s: invalid base64: %w", keyType, err)
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return nil, "", fmt.Errorf("key type %s: invalid key: %w", keyType, err)
	}
	if key.Type() != keyType {
		return nil, "", fmt.Errorf("key type %s does not match the key, which is %s", keyType, key.Type())
	}
	if err := CheckKey(key); err != nil {
		return nil, "", err
	}
	return key, strings.TrimSpace(comment), nil
}
