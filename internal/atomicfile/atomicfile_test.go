package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: no file before
		data     []byte
		perm     os.FileMode
	}{
		{"new file 0644", nil, []byte("hello"), 0o644},
		{"new file 0600", nil, []byte("secret"), 0o600},
		{"new file 0640", nil, []byte("group"), 0o640},
		{"empty data", nil, nil, 0o644},
		{"overwrite", []byte("old content that is longer"), []byte("new"), 0o644},
		{"overwrite narrows mode", []byte("old"), []byte("new"), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(path, tt.data, tt.perm); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("content = %q, want %q", got, tt.data)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && fi.Mode().Perm() != tt.perm {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tt.perm)
			}
			if names := listDir(t, dir); len(names) != 1 {
				t.Errorf("directory holds %v, want only the target", names)
			}
		})
	}
}

func TestWriteSecretMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix modes")
	}
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSecret(path, []byte("k")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
}

// TestModeBeforeData checks that the temporary file already has its final mode
// (and is not world-readable for a secret) when the first byte is written.
func TestModeBeforeData(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix modes")
	}
	for _, perm := range []os.FileMode{0o600, 0o640, 0o644} {
		t.Run(perm.String(), func(t *testing.T) {
			dir := t.TempDir()
			var seen os.FileMode
			var size int64 = -1
			testHookBeforeWrite = func(f *os.File) {
				fi, err := f.Stat()
				if err != nil {
					t.Error(err)
					return
				}
				seen, size = fi.Mode().Perm(), fi.Size()
				if filepath.Dir(f.Name()) != dir {
					t.Errorf("temp file %s not in target directory %s", f.Name(), dir)
				}
			}
			defer func() { testHookBeforeWrite = nil }()
			if err := Write(filepath.Join(dir, "f"), []byte("data"), perm); err != nil {
				t.Fatal(err)
			}
			if seen != perm {
				t.Errorf("temp file mode before write = %v, want %v", seen, perm)
			}
			if size != 0 {
				t.Errorf("temp file size before write = %d, want 0", size)
			}
		})
	}
}

// TestFailedWriteKeepsOld makes the data write fail and checks that the old
// file is intact and no temporary file is left behind.
func TestFailedWriteKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "file")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	testHookBeforeWrite = func(f *os.File) { _ = f.Close() }
	defer func() { testHookBeforeWrite = nil }()
	err := Write(path, []byte("new"), 0o644)
	if err == nil {
		t.Fatal("Write succeeded on a closed file")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "write temp file") {
		t.Errorf("error %q does not name the path and the step", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("content = %q, want old content", got)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only the target", names)
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns path
		step  string
	}{
		{
			name: "target is a directory",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "sub")
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(p, "inner"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			step: "rename temp file",
		},
		{
			name: "directory missing",
			setup: func(t *testing.T, dir string) string {
				return filepath.Join(dir, "missing", "file")
			},
			step: "create temp file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			before := listDir(t, dir)
			err := Write(path, []byte("data"), 0o644)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.step) {
				t.Errorf("error %q should name %s and step %q", err, path, tt.step)
			}
			var pe *os.PathError
			var le *os.LinkError
			if !errors.As(err, &pe) && !errors.As(err, &le) {
				t.Errorf("error %q does not wrap the os error", err)
			}
			if after := listDir(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("directory changed from %v to %v (temp file left behind?)", before, after)
			}
		})
	}
}

func TestWriteRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := Write("rel", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "rel")); err != nil || string(got) != "x" {
		t.Fatalf("read back %q, %v", got, err)
	}
}
