package sshd

import (
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pkg/sftp"

	"github.com/patchbay/patchbay/internal/wire"
)

// TestCredential runs a session as "nobody" (needs root): commands, the
// terminal and the sftp server (a child process) all run as that user.
func TestCredential(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	// The sftp child is this test binary run again as nobody: put a copy where nobody may run it.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "sshd.test")
	if err := os.WriteFile(copyPath, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	orig := sftpExecutable
	sftpExecutable = func() (string, error) { return copyPath, nil }
	t.Cleanup(func() { sftpExecutable = orig })
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t)
	cfg := f.config(wire.CapExec, wire.CapSFTP)
	cfg.Dir = "" // nobody's home does not exist: "/"
	cfg.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	sv := f.serve(cfg)
	c := f.client(sv)

	out, err := f.session(c).Output(`id -u; id -g; pwd; echo "$HOME $USER"`)
	if want := u.Uid + "\n" + u.Gid + "\n/\n" + u.HomeDir + " " + u.Username + "\n"; err != nil || string(out) != want {
		t.Errorf("as nobody: %q, %v; want %q", out, err, want)
	}
	s := f.session(c)
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	out, err = s.Output("stat -c %u $(tty)")
	if err != nil || strings.TrimSpace(string(out)) != u.Uid {
		t.Errorf("terminal owner: %q, %v", out, err)
	}

	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	fw, err := sc.Create(filepath.Join(shared, "up.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(fw, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(shared, "up.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
		t.Errorf("sftp upload owned by uid %d, want %d", st.Uid, uid)
	}
	if _, err := sc.Create(filepath.Join(f.dir, "root-only.txt")); err == nil {
		t.Error("sftp as nobody wrote into root's private directory")
	}
	if wd, err := sc.Getwd(); err != nil || wd != "/" {
		t.Errorf("sftp working directory %q, %v", wd, err)
	}
}
