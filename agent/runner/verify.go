package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/patchbay/patchbay/internal/atomicfile"
	"github.com/patchbay/patchbay/internal/wire"
	"github.com/patchbay/patchbay/plugins/signature"
)

// verdictTTL bounds how long a signature decision is reused. Editing
// allowed_signers takes effect at once (its digest is part of the key); a
// valid-before date that passes takes effect within verdictTTL for a file
// already verified.
const verdictTTL = time.Hour

// verdict is a successful signature check of one file with one signature
// under one version of the trusted signers.
type verdict struct {
	signer signature.Signer
	at     time.Time
}

func verdictKey(fileSHA string, sig []byte, trustDigest string) string {
	s := sha256.Sum256(sig)
	return fileSHA + ":" + hex.EncodeToString(s[:]) + ":" + trustDigest
}

func (r *Runner) cachedVerdict(key string, now time.Time) (signature.Signer, bool) {
	r.vmu.Lock()
	defer r.vmu.Unlock()
	v, ok := r.verdicts[key]
	if !ok || now.Sub(v.at) > verdictTTL {
		delete(r.verdicts, key)
		return signature.Signer{}, false
	}
	return v.signer, true
}

func (r *Runner) storeVerdict(key string, s signature.Signer, now time.Time) {
	r.vmu.Lock()
	defer r.vmu.Unlock()
	if len(r.verdicts) > 1024 {
		clear(r.verdicts)
	}
	r.verdicts[key] = verdict{signer: s, at: now}
}

// verify returns ref after checking that its bytes hash to ref.SHA256 and
// carry a signature by a trusted key. The bytes come from the private cache
// or, failing that, the relay. needData says whether the caller needs the
// bytes even when the executable is already sealed in the exec cache.
//
// The SHA-256 of what is executed is checked on every launch regardless:
// the exec cache holds sealed memfds (immutable), and go-plugin's
// SecureConfig hashes the memfd again right before it starts it.
func (r *Runner) verify(ctx context.Context, trust Trust, ref wire.ArtifactRef, what string, needData bool) (verified, error) {
	if !wire.ValidSHA256(ref.SHA256) {
		return verified{}, refusedf("%s %s: sha256 %q invalid", what, ref.Name, ref.SHA256)
	}
	now := r.cfg.Now()
	binPath := filepath.Join(r.cacheDir, ref.SHA256)
	sigPath := binPath + ".sig"
	if sig, err := os.ReadFile(sigPath); err == nil {
		key := verdictKey(ref.SHA256, sig, trust.Digest)
		if signer, ok := r.cachedVerdict(key, now); ok && !needData && r.execs.has(ref.SHA256) {
			return verified{ref: ref, signer: signer}, nil
		}
		if data, err := os.ReadFile(binPath); err == nil {
			if v, err := r.check(trust, ref, data, sig, key, now); err == nil {
				return v, nil
			}
			// The cached copy no longer passes (altered on disk, the
			// signer re-keyed, or trust changed): fetch it again.
		}
	}
	data, sig, err := r.cfg.Fetch.Fetch(ctx, ref.SHA256)
	if err != nil {
		return verified{}, &downloadError{fmt.Errorf("download %s %s %s: %w", what, ref.Name, ref.Version, err)}
	}
	v, err := r.check(trust, ref, data, sig, verdictKey(ref.SHA256, sig, trust.Digest), now)
	var mismatch *hashMismatch
	switch {
	case errors.As(err, &mismatch):
		return verified{}, refusedf("%s %s: the relay sent bytes with sha256 %s, not the requested %s", what, ref.Name, mismatch.got, ref.SHA256)
	case errors.Is(err, signature.ErrUntrustedSigner):
		return verified{}, refusedf("%s %s %s (sha256 %s) is signed by a key this agent does not trust: %v; "+
			"trust the signer on the machine with: patchbay-agent trust add", what, ref.Name, ref.Version, ref.SHA256, err)
	case err != nil:
		return verified{}, refusedf("%s %s %s (sha256 %s): signature check failed: %v", what, ref.Name, ref.Version, ref.SHA256, err)
	}
	// Only verified files are cached.
	if err := atomicfile.Write(binPath, data, 0o600); err != nil {
		return verified{}, fmt.Errorf("cache %s: %w", ref.Name, err)
	}
	if err := atomicfile.Write(sigPath, sig, 0o600); err != nil {
		return verified{}, fmt.Errorf("cache %s signature: %w", ref.Name, err)
	}
	return v, nil
}

type hashMismatch struct{ got string }

// downloadError is a file that could not be downloaded from the relay (it
// went away, or answered with an error): nothing ran, and the run can be
// tried again. A file that was downloaded and then refused is not one.
type downloadError struct{ err error }

func (e *downloadError) Error() string { return e.err.Error() }
func (e *downloadError) Unwrap() error { return e.err }

func (e *hashMismatch) Error() string { return "sha256 mismatch: " + e.got }

// check hashes data and verifies its signature; the two passes over the
// bytes (SHA-256, and SSHSIG's SHA-512) run on two cores at once.
func (r *Runner) check(trust Trust, ref wire.ArtifactRef, data, sig []byte, key string, now time.Time) (verified, error) {
	sum := make(chan string, 1)
	go func() { sum <- sha256Hex(data) }()
	signer, verr := trust.Verifier.Verify(bytes.NewReader(data), sig, now)
	if got := <-sum; got != ref.SHA256 {
		return verified{}, &hashMismatch{got: got}
	}
	if verr != nil {
		return verified{}, verr
	}
	r.storeVerdict(key, signer, now)
	return verified{ref: ref, data: data, signer: signer}, nil
}

// LoadTrust reads an allowed_signers file for Config.Trust. A missing file
// is an empty set, which trusts nobody.
func LoadTrust(path string) (Trust, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Trust{}, fmt.Errorf("trusted signers: %w", err)
	}
	set, err := signature.ParseAllowedSigners(bytes.NewReader(b))
	if err != nil {
		return Trust{}, fmt.Errorf("trusted signers %s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	return Trust{Verifier: set, Digest: hex.EncodeToString(sum[:])}, nil
}
