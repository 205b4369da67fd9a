package tiersecrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// KeySize is the length of a tier key: AES-256.
const KeySize = 32

// Key encrypts the tier's secrets at rest in the database (AES-256-GCM).
// Every relay of a tier is given the same key, in a file (--tier-key-file).
type Key struct {
	aead cipher.AEAD
	id   string
}

// Errors of Open, for errors.Is.
var (
	// ErrWrongKey: the secret was stored under another tier key.
	ErrWrongKey = errors.New("stored with another tier key")
	// ErrTampered: the secret names this key but does not decrypt with it.
	ErrTampered = errors.New("altered or corrupt")
)

// NewKey returns a fresh random key in the text form of a key file.
func NewKey() ([]byte, error) {
	var k [KeySize]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, fmt.Errorf("new tier key: %w", err)
	}
	return []byte(base64.StdEncoding.EncodeToString(k[:]) + "\n"), nil
}

// ParseKey reads the text form of a key file: the base64 of 32 bytes.
func ParseKey(text []byte) (*Key, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	if err != nil || len(raw) != KeySize {
		return nil, fmt.Errorf("not a tier key (want the base64 of %d random bytes, as patchbay-server tier-key new writes)", KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("patchbay tier key id\x00"), raw...))
	return &Key{aead: aead, id: hex.EncodeToString(sum[:8])}, nil
}

// ReadKeyFile reads a key file, which only its owner may read (0600).
func ReadKeyFile(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tier key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("tier key %s is open to other users (mode %v): chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tier key: %w", err)
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("tier key %s: %w", path, err)
	}
	return k, nil
}

// ID names the key without revealing it: a hash, 16 hex digits.
func (k *Key) ID() string { return k.id }

// aad binds a ciphertext to the secret's name: a row copied onto another
// name does not decrypt.
func aad(name string) []byte { return []byte("patchbay tier secret\x00" + name) }

// Seal encrypts the secret called name: base64 of nonce and ciphertext.
func (k *Key) Seal(name string, plain []byte) (string, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal tier secret %s: %w", name, err)
	}
	return base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plain, aad(name))), nil
}

// Open decrypts what Seal returned for name, stored with the key keyID.
func (k *Key) Open(name, keyID, value string) ([]byte, error) {
	if keyID != k.id {
		return nil, fmt.Errorf("tier secret %s: %w (key id %s; this relay's --tier-key-file holds key %s): "+
			"give this relay a copy of the tier key file the first relay of the tier was started with", name, ErrWrongKey, keyID, k.id)
	}
	tampered := fmt.Errorf("tier secret %s in the database does not decrypt with tier key %s, the key it names: it was %w; "+
		"restore the tier_secrets table from a backup", name, k.id, ErrTampered)
	b, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, tampered
	}
	ns := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, b[:ns], b[ns:], aad(name))
	if err != nil {
		return nil, tampered
	}
	return plain, nil
}
