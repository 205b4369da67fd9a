// Package signature signs and verifies plugins and scripts with OpenSSH SSHSIG
// signatures, and decides whom to trust with OpenSSH allowed_signers files.
//
// A signature covers the whole file, uses namespace [Namespace] and is
// armored ("-----BEGIN SSH SIGNATURE-----"), so it interoperates both ways with
//
//	ssh-keygen -Y sign -n patchbay-plugin -f KEY FILE
//	ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n patchbay-plugin -s FILE.sig < FILE
//
// Ed25519, ECDSA (nistp256/384/521), their FIDO (sk-) variants and RSA keys of
// at least 2048 bits are supported, as are OpenSSH user certificates issued by a
// key listed on a cert-authority line. DSA keys are refused.
package signature

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/atomicfile"
)

// Namespace is the SSHSIG namespace of every plugin and script signature.
const Namespace = "patchbay-plugin"

// ReleaseNamespace is the SSHSIG namespace of a release's SHA256SUMS
// (internal/release): a key trusted for plugins is not thereby trusted to
// replace the agent, unless its allowed_signers line names both (or none).
const ReleaseNamespace = "patchbay-release"

// Limits on untrusted input.
const (
	// MaxSignatureSize caps an armored signature.
	MaxSignatureSize = 64 << 10
	// MaxKeyFileSize caps a private key file.
	MaxKeyFileSize = 1 << 20
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
)

// hashAlgorithm is what Sign uses; it is also ssh-keygen's default.
const hashAlgorithm = sshsig.HashSHA512

// Errors callers branch on.
var (
	// ErrPassphraseNeeded: the private key is encrypted and no passphrase was given.
	ErrPassphraseNeeded = errors.New("private key is encrypted: passphrase needed")
	// ErrBadPassphrase: the passphrase does not decrypt the private key.
	ErrBadPassphrase = errors.New("wrong passphrase")
	// ErrBadSignature: the signature is malformed, or it does not verify over
	// the data (the file was altered, or the signature belongs to another file).
	ErrBadSignature = errors.New("bad signature")
	// ErrWrongNamespace: the signature was made for another namespace than
	// patchbay-plugin (e.g. ssh-keygen -Y sign -n file).
	ErrWrongNamespace = errors.New("wrong signature namespace")
	// ErrUntrustedSigner: the signature is valid, but no allowed_signers line
	// trusts its key for patchbay-plugin at this time.
	ErrUntrustedSigner = errors.New("untrusted signer")
	// ErrUnsupportedKey: the key type or size is not accepted (DSA, RSA under
	// 2048 bits, or unknown).
	ErrUnsupportedKey = errors.New("unsupported key")
)

// Signer describes who made a signature.
type Signer struct {
	// Principal is the first principal of the allowed_signers line that
	// trusted the key or, for a certificate, the first of its principals that
	// the line's principals match. Empty from Inspect.
	Principal string
	// Fingerprint is ssh.FingerprintSHA256 of the signing key ("SHA256:...");
	// for a certificate, of the certified key, as ssh-keygen prints it.
	Fingerprint string
	// KeyType is the SSH type of the signing key, e.g. "ssh-ed25519" or
	// "ssh-ed25519-cert-v01@openssh.com".
	KeyType string
	// CAFingerprint is the fingerprint of the certificate authority that
	// issued the signing certificate; empty for a plain key.
	CAFingerprint string
}

// LoadSigner reads an OpenSSH (or PEM) private key file. If the key is
// encrypted and passphrase is nil it returns ErrPassphraseNeeded; a wrong
// passphrase gives ErrBadPassphrase. A passphrase given for an unencrypted key
// is ignored.
func LoadSigner(keyPath string, passphrase []byte) (ssh.Signer, error) {
	b, err := readFileLimit(keyPath, MaxKeyFileSize)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
	case errors.As(err, &missing) && passphrase == nil:
		return nil, fmt.Errorf("load signing key %s: %w", keyPath, ErrPassphraseNeeded)
	case errors.As(err, &missing) && len(passphrase) == 0:
		// An encrypted key never has an empty passphrase (bcrypt_pbkdf refuses one).
		return nil, fmt.Errorf("load signing key %s: %w", keyPath, ErrBadPassphrase)
	case errors.As(err, &missing):
		s, err = ssh.ParsePrivateKeyWithPassphrase(b, passphrase)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("load signing key %s: %w", keyPath, ErrBadPassphrase)
		}
		if err != nil {
			return nil, fmt.Errorf("load signing key %s: %w", keyPath, err)
		}
	default:
		return nil, fmt.Errorf("load signing key %s: %w", keyPath, err)
	}
	if err := CheckKey(s.PublicKey()); err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", keyPath, err)
	}
	return s, nil
}

// Sign signs everything read from data and returns the armored signature
// (namespace patchbay-plugin, sha512). signer may be a certificate signer
// (ssh.NewCertSigner).
func Sign(signer ssh.Signer, data io.Reader) ([]byte, error) {
	return SignNamespace(signer, data, Namespace)
}

// SignNamespace is Sign for namespace ns (e.g. ReleaseNamespace).
func SignNamespace(signer ssh.Signer, data io.Reader, ns string) ([]byte, error) {
	if err := CheckKey(signer.PublicKey()); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if c, ok := signer.PublicKey().(*ssh.Certificate); ok && c.Key.Type() == ssh.KeyAlgoRSA {
		// sshsig picks rsa-sha2-512 only for plain RSA keys; a certificate
		// signer would default to SHA-1 ssh-rsa, which SSHSIG forbids.
		as, ok := signer.(ssh.AlgorithmSigner)
		if !ok {
			return nil, errors.New("sign: RSA certificate signer cannot make rsa-sha2-512 signatures")
		}
		signer = rsaSHA512Signer{as}
	}
	sig, err := sshsig.Sign(data, signer, hashAlgorithm, ns)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sshsig.Armor(sig), nil
}

// rsaSHA512Signer makes Sign use rsa-sha2-512.
type rsaSHA512Signer struct{ ssh.AlgorithmSigner }

func (s rsaSHA512Signer) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, ssh.KeyAlgoRSASHA512)
}

// SignFile signs the file at path and writes the armored signature to
// path + ".sig" (mode 0644, atomically). It returns the signature's path.
func SignFile(signer ssh.Signer, path string) (sigPath string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("sign file: %w", err)
	}
	defer f.Close()
	sig, err := Sign(signer, f)
	if err != nil {
		return "", fmt.Errorf("sign file %s: %w", path, err)
	}
	sigPath = path + ".sig"
	if err := atomicfile.Write(sigPath, sig, 0o644); err != nil {
		return "", fmt.Errorf("sign file: %w", err)
	}
	return sigPath, nil
}

// Inspect checks that armoredSig is a patchbay-plugin signature over data by
// the public key the signature itself carries, and returns that key. It
// proves integrity, not trust: anyone can make such a signature. For a
// certificate signer the certificate itself (issuer signature, validity,
// principals) is not checked here; Verify does that. Principal is empty.
func Inspect(armoredSig []byte, data io.Reader) (Signer, error) {
	sig, err := parseChecked(armoredSig, Namespace)
	if err != nil {
		return Signer{}, fmt.Errorf("inspect signature: %w", err)
	}
	if err := verifyData(sig, data, Namespace); err != nil {
		return Signer{}, fmt.Errorf("inspect signature: %w", err)
	}
	return describe(sig.PublicKey), nil
}

// parseChecked unarmors a signature and checks everything that does not need
// the data: namespace ns, key type, signature algorithm.
func parseChecked(armored []byte, ns string) (*sshsig.Signature, error) {
	sig, err := unarmor(armored)
	if err != nil {
		return nil, err
	}
	if sig.Namespace != ns {
		return nil, fmt.Errorf("%w: signature is for namespace %q, want %q", ErrWrongNamespace, sig.Namespace, ns)
	}
	if err := CheckKey(sig.PublicKey); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if rsaKey(sig.PublicKey) && sig.Signature.Format != ssh.KeyAlgoRSASHA256 && sig.Signature.Format != ssh.KeyAlgoRSASHA512 {
		return nil, fmt.Errorf("%w: RSA signature algorithm %q, want rsa-sha2-256 or rsa-sha2-512", ErrBadSignature, sig.Signature.Format)
	}
	return sig, nil
}

// unarmor decodes an armored signature strictly: one SSH SIGNATURE block, no
// headers, nothing but white space around it.
func unarmor(b []byte) (*sshsig.Signature, error) {
	if len(b) > MaxSignatureSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadSignature, MaxSignatureSize)
	}
	b = bytes.TrimSpace(b)
	if !bytes.HasPrefix(b, []byte("-----BEGIN "+sshsig.PEMType+"-----")) {
		return nil, fmt.Errorf("%w: not an armored SSH signature (want -----BEGIN %s-----)", ErrBadSignature, sshsig.PEMType)
	}
	block, rest := pem.Decode(b)
	if block == nil || block.Type != sshsig.PEMType {
		return nil, fmt.Errorf("%w: malformed armor", ErrBadSignature)
	}
	if len(block.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: unexpected data around the armored signature", ErrBadSignature)
	}
	sig, err := sshsig.ParseSignature(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return sig, nil
}

// verifyData checks sig over data with the key sig carries. A read error of
// data is returned as such, not as ErrBadSignature.
func verifyData(sig *sshsig.Signature, data io.Reader, ns string) error {
	r := &errReader{r: data}
	if err := sshsig.Verify(r, sig, sig.PublicKey, sig.HashAlgorithm, ns); err != nil {
		if r.err != nil {
			return fmt.Errorf("read signed data: %w", r.err)
		}
		return fmt.Errorf("%w: the signature does not match the data (altered file, or a signature of another file)", ErrBadSignature)
	}
	return nil
}

// errReader remembers the first read error other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// describe returns the Signer fields a key alone determines.
func describe(key ssh.PublicKey) Signer {
	s := Signer{Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type()}
	if c, ok := key.(*ssh.Certificate); ok {
		s.Fingerprint = ssh.FingerprintSHA256(c.Key)
		s.CAFingerprint = ssh.FingerprintSHA256(c.SignatureKey)
	}
	return s
}

// CheckKey returns an error wrapping ErrUnsupportedKey unless key is of a type
// and size this package accepts (see the package documentation). For a
// certificate it checks the certified key.
func CheckKey(key ssh.PublicKey) error {
	if c, ok := key.(*ssh.Certificate); ok {
		key = c.Key
	}
	switch key.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
		return nil
	case ssh.KeyAlgoRSA:
		ck, ok := key.(ssh.CryptoPublicKey)
		if !ok {
			return fmt.Errorf("%w: RSA key without parameters", ErrUnsupportedKey)
		}
		pk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: RSA key without parameters", ErrUnsupportedKey)
		}
		if n := pk.N.BitLen(); n < MinRSABits {
			return fmt.Errorf("%w: %d-bit RSA key, want at least %d bits", ErrUnsupportedKey, n, MinRSABits)
		}
		return nil
	}
	return fmt.Errorf("%w: key type %q", ErrUnsupportedKey, key.Type())
}

// rsaKey reports whether key is RSA or an RSA certificate.
func rsaKey(key ssh.PublicKey) bool {
	if c, ok := key.(*ssh.Certificate); ok {
		key = c.Key
	}
	return key.Type() == ssh.KeyAlgoRSA
}

// readFileLimit reads a file of at most limit bytes.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, limit)
	}
	return b, nil
}
