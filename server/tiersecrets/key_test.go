package tiersecrets

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func newKey(t *testing.T) *Key {
	t.Helper()
	text, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := newKey(t)
	secret := []byte("-----BEGIN EC PRIVATE KEY-----\nsecret\n")
	v, err := k.Seal("ca.key", secret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "secret") {
		t.Fatal("the sealed value shows the plain text")
	}
	got, err := k.Open("ca.key", k.ID(), v)
	if err != nil || string(got) != string(secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Two seals of one secret differ (random nonce).
	if v2, _ := k.Seal("ca.key", secret); v2 == v {
		t.Fatal("two seals of the same secret are equal: the nonce is not random")
	}
}

func TestWrongKeyRefused(t *testing.T) {
	a, b := newKey(t), newKey(t)
	if a.ID() == b.ID() {
		t.Fatal("two random keys have the same ID")
	}
	v, err := a.Seal("ca.key", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Open("ca.key", a.ID(), v)
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another key: %v, want ErrWrongKey", err)
	}
	for _, want := range []string{"ca.key", a.ID(), b.ID(), "--tier-key-file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not name %q", err, want)
		}
	}
	// Another key claiming the right ID still does not decrypt.
	if _, err := b.Open("ca.key", b.ID(), v); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open with another key under its own ID: %v, want ErrTampered", err)
	}
}

func TestTamperedRefused(t *testing.T) {
	k := newKey(t)
	v, err := k.Seal("ca.key", []byte("secret CA key"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(v)
	for i := range raw {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 0x01
		if _, err := k.Open("ca.key", k.ID(), base64.StdEncoding.EncodeToString(bad)); !errors.Is(err, ErrTampered) {
			t.Fatalf("byte %d flipped: %v, want ErrTampered", i, err)
		}
	}
	// A value moved to another name (ca.crt's row given ca.key's value).
	if _, err := k.Open("ca.crt", k.ID(), v); !errors.Is(err, ErrTampered) {
		t.Fatalf("value under another name: %v, want ErrTampered", err)
	}
	for _, v := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(raw[:10]), base64.StdEncoding.EncodeToString(raw[:len(raw)-1])} {
		_, err := k.Open("ca.key", k.ID(), v)
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("Open(%q): %v, want ErrTampered", v, err)
		}
		if !strings.Contains(err.Error(), "restore the tier_secrets table") {
			t.Fatalf("the error does not say what to do: %v", err)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, text := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 16)), base64.StdEncoding.EncodeToString(make([]byte, 33))} {
		if _, err := ParseKey([]byte(text)); err == nil || !strings.Contains(err.Error(), "tier-key new") {
			t.Errorf("ParseKey(%q) = %v, want an error naming tier-key new", text, err)
		}
	}
	text, _ := NewKey()
	k1, err := ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParseKey([]byte("  " + strings.TrimSpace(string(text)) + "\r\n"))
	if err != nil || k2.ID() != k1.ID() {
		t.Fatalf("the same key with spaces: %v, id %s vs %s", err, k2.ID(), k1.ID())
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tier.key")
	text, _ := NewKey()
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing key file was read")
	}
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key file others can read: %v, want a chmod 600 hint", err)
	}
}
