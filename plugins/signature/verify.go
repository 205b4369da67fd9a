package signature

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Verify checks that armoredSig is a valid patchbay-plugin signature over
// everything read from data, and that a line of a trusts the signing key at
// time now: a plain-key line listing the key, or a cert-authority line whose
// CA issued the signing user certificate (valid at now, with a principal the
// line's principals match, and no critical options). The line must allow
// namespace patchbay-plugin (or name no namespaces) and its valid-after /
// valid-before window must contain now. The first such line wins.
//
// Errors: ErrBadSignature (malformed, or does not verify over data),
// ErrWrongNamespace, ErrUntrustedSigner (valid, but not trusted; the message
// says why). A read error from data is returned as is.
func (a *AllowedSigners) Verify(data io.Reader, armoredSig []byte, now time.Time) (Signer, error) {
	return a.VerifyNamespace(data, armoredSig, now, Namespace)
}

// VerifyNamespace is Verify for namespace ns (e.g. ReleaseNamespace): the
// signature must be made for ns and the trusting line must allow ns.
func (a *AllowedSigners) VerifyNamespace(data io.Reader, armoredSig []byte, now time.Time, ns string) (Signer, error) {
	sig, err := parseChecked(armoredSig, ns)
	if errors.Is(err, ErrUnsupportedKey) {
		return Signer{}, fmt.Errorf("verify signature: %w: %w", ErrUntrustedSigner, err)
	}
	if err != nil {
		return Signer{}, fmt.Errorf("verify signature: %w", err)
	}
	if err := verifyData(sig, data, ns); err != nil {
		return Signer{}, fmt.Errorf("verify signature: %w", err)
	}
	s := describe(sig.PublicKey)
	principal, err := a.trust(sig.PublicKey, now, ns)
	if err != nil {
		return Signer{}, fmt.Errorf("verify signature: %w: %s key %s: %w", ErrUntrustedSigner, s.KeyType, s.Fingerprint, err)
	}
	s.Principal = principal
	return s, nil
}

// trust returns the principal of the first line that trusts key at now, or
// why none does.
func (a *AllowedSigners) trust(key ssh.PublicKey, now time.Time, ns string) (string, error) {
	cert, isCert := key.(*ssh.Certificate)
	var entries []AllowedSigner
	if a != nil {
		entries = a.entries
	}
	var why []string
	for _, e := range entries {
		var principal string
		switch {
		case e.CertAuthority && isCert && bytes.Equal(cert.SignatureKey.Marshal(), e.Key.Marshal()):
			p, err := checkCert(cert, e, now)
			if err != nil {
				why = append(why, fmt.Sprintf("line %d: %v", e.Line, err))
				continue
			}
			principal = p
		case !e.CertAuthority && !isCert && bytes.Equal(key.Marshal(), e.Key.Marshal()):
			principal = e.Principal()
		default:
			continue
		}
		if err := checkLine(e, now, ns); err != nil {
			why = append(why, fmt.Sprintf("line %d: %v", e.Line, err))
			continue
		}
		return principal, nil
	}
	if len(why) == 0 {
		if isCert {
			return "", fmt.Errorf("no cert-authority line lists its issuer %s", ssh.FingerprintSHA256(cert.SignatureKey))
		}
		return "", errors.New("not in allowed signers")
	}
	return "", errors.New(strings.Join(why, "; "))
}

// checkLine checks a matching line's namespaces and validity window.
func checkLine(e AllowedSigner, now time.Time, ns string) error {
	if !e.AllowsNamespace(ns) {
		return fmt.Errorf("namespaces %q do not include %s", strings.Join(e.Namespaces, ","), ns)
	}
	t := now.Unix()
	if !e.ValidAfter.IsZero() && t < e.ValidAfter.Unix() {
		return fmt.Errorf("not valid before %s", e.ValidAfter.UTC().Format(time.RFC3339))
	}
	if !e.ValidBefore.IsZero() && t > e.ValidBefore.Unix() {
		return fmt.Errorf("expired at %s", e.ValidBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkCert checks a certificate issued by e's CA the way ssh-keygen -Y
// verify does, and returns the first of its principals that e's principals
// match. Critical options are refused, as none has a meaning for signatures.
func checkCert(cert *ssh.Certificate, e AllowedSigner, now time.Time) (string, error) {
	if cert.CertType != ssh.UserCert {
		return "", errors.New("certificate is not a user certificate")
	}
	if len(cert.ValidPrincipals) == 0 {
		return "", errors.New("certificate lists no principals")
	}
	principal := ""
	for _, p := range cert.ValidPrincipals {
		if matchList(p, e.Principals) {
			principal = p
			break
		}
	}
	if principal == "" {
		return "", fmt.Errorf("certificate principals %q do not match %q", cert.ValidPrincipals, strings.Join(e.Principals, ","))
	}
	checker := ssh.CertChecker{Clock: func() time.Time { return now }}
	if err := checker.CheckCert(principal, cert); err != nil {
		return "", fmt.Errorf("certificate %q: %w", cert.KeyId, err)
	}
	return principal, nil
}
