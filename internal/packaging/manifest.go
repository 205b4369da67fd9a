package packaging

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// The manifest and its signature in a release directory.
const (
	SumsName = "SHA256SUMS"
	SigName  = "SHA256SUMS.sig"
)

// WriteSums writes dir/SHA256SUMS in sha256sum's format, one line per regular
// file of dir other than the manifest and its signature, sorted by name.
func WriteSums(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("release manifest: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Name() == SumsName || e.Name() == SigName {
			continue
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("release manifest: %s is not a regular file: a release directory holds files only", filepath.Join(dir, e.Name()))
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, name := range names {
		sum, err := fileSum(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("release manifest: %w", err)
		}
		fmt.Fprintf(&buf, "%s  %s\n", sum, name)
	}
	os.Remove(filepath.Join(dir, SigName)) // a signature of an older manifest
	if err := os.WriteFile(filepath.Join(dir, SumsName), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("release manifest: %w", err)
	}
	return nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CheckSums checks dir/SHA256SUMS against the files of dir: every line's hash
// matches, and every other file is listed.
func CheckSums(dir string) error {
	f, err := os.Open(filepath.Join(dir, SumsName))
	if err != nil {
		return fmt.Errorf("check manifest: %w", err)
	}
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || name == "" || strings.ContainsAny(name, "/\\") {
			return fmt.Errorf("check manifest: line %q: want \"<64 hex>  <name>\"", sc.Text())
		}
		got, err := fileSum(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("check manifest: %w", err)
		}
		if got != sum {
			return fmt.Errorf("check manifest: %s: SHA-256 %s, the manifest says %s", name, got, sum)
		}
		listed[name] = true
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("check manifest: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("check manifest: %w", err)
	}
	for _, e := range entries {
		if n := e.Name(); n != SumsName && n != SigName && !listed[n] {
			return fmt.Errorf("check manifest: %s is not in %s", n, SumsName)
		}
	}
	return nil
}

// Sign signs dir/SHA256SUMS with the SSH private key at key into
// dir/SHA256SUMS.sig: ssh-keygen -Y sign -n patchbay-release (an encrypted
// key asks for its passphrase on the terminal).
func Sign(ctx context.Context, dir, key string) error {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		return fmt.Errorf("sign release: ssh-keygen not found: install OpenSSH (Debian: openssh-client)")
	}
	sums := filepath.Join(dir, SumsName)
	if err := os.Remove(sums + ".sig"); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("sign release: %w", err)
	}
	cmd := exec.CommandContext(ctx, "ssh-keygen", "-q", "-Y", "sign", "-n", Namespace, "-f", key, sums)
	cmd.Stdin = os.Stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sign release: ssh-keygen -Y sign -n %s -f %s %s: %w: %s", Namespace, key, sums, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
