//go:build unix

package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestUmaskIgnored checks that the mode is exactly perm whatever the umask:
// a strict umask does not narrow it and a loose one does not widen it.
func TestUmaskIgnored(t *testing.T) {
	tests := []struct {
		umask int
		perm  os.FileMode
	}{
		{0o077, 0o644},
		{0o022, 0o600},
		{0o000, 0o600},
		{0o000, 0o640},
		{0o027, 0o755},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("umask %03o perm %v", tt.umask, tt.perm), func(t *testing.T) {
			old := syscall.Umask(tt.umask)
			defer syscall.Umask(old)
			path := filepath.Join(t.TempDir(), "f")
			if err := Write(path, []byte("x"), tt.perm); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.perm {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tt.perm)
			}
		})
	}
}
