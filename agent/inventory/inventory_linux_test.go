package inventory

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// utmpRecord builds one record in the glibc x86_64/aarch64 layout.
func utmpRecord(typ int16, pid int32, line, user, host string) []byte {
	b := make([]byte, utmpRecordSize)
	binary.NativeEndian.PutUint16(b[0:], uint16(typ))
	binary.NativeEndian.PutUint32(b[4:], uint32(pid))
	copy(b[8:40], line)
	copy(b[40:44], strings.TrimPrefix(line, "pts/"))
	copy(b[44:76], user)
	copy(b[76:332], host)
	binary.NativeEndian.PutUint32(b[340:], 1714550400) // tv_sec
	return b
}

func craftedUtmp() []byte {
	var data []byte
	for _, r := range [][]byte{
		utmpRecord(2, 0, "~", "reboot", "6.1.0"),        // BOOT_TIME
		utmpRecord(1, 53, "~", "runlevel", "6.1.0"),     // RUN_LVL
		utmpRecord(6, 700, "tty1", "LOGIN", ""),         // LOGIN_PROCESS
		utmpRecord(7, 1201, "pts/0", "bob", "10.0.0.7"), // USER_PROCESS
		utmpRecord(7, 1302, "tty2", "alice", ""),
		utmpRecord(7, 1403, "pts/1", "alice", "10.0.0.8"),                    // same user twice
		utmpRecord(8, 0, "pts/2", "carol", ""),                               // DEAD_PROCESS: logged out
		utmpRecord(7, 1504, "pts/3", "abcdefghijklmnopqrstuvwxyz012345", ""), // 32 bytes, no NUL
		utmpRecord(7, 1605, "pts/4", "", ""),                                 // no user name
	} {
		data = append(data, r...)
	}
	return data
}

func TestParseUtmp(t *testing.T) {
	data := craftedUtmp()
	want := []string{"abcdefghijklmnopqrstuvwxyz012345", "alice", "bob"}
	got, err := parseUtmp(data)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseUtmp = %q, %v; want %q", got, err, want)
	}
	// A partly written trailing record is ignored.
	got, err = parseUtmp(append(data, make([]byte, 100)...))
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("with a partial record: %q, %v", got, err)
	}
	if got, err := parseUtmp(nil); err != nil || len(got) != 0 {
		t.Errorf("empty utmp: %q, %v", got, err)
	}
	if _, err := parseUtmp(make([]byte, 10)); err == nil {
		t.Error("a 10-byte file should be an error")
	}
	bad := utmpRecord(7, 1, "pts/0", "x", "")
	binary.NativeEndian.PutUint16(bad[0:], 300)
	if _, err := parseUtmp(bad); err == nil || !strings.Contains(err.Error(), "unknown type 300") {
		t.Errorf("unknown type: err = %v", err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestUsersFromUtmpFile(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "var/run/utmp"), craftedUtmp())
	whoRan := false
	c := &Collector{Root: root, run: func(context.Context, string, ...string) ([]byte, error) {
		whoRan = true
		return nil, errors.New("who should not run")
	}}
	got, err := c.users(context.Background())
	if err != nil || !slices.Equal(got, []string{"abcdefghijklmnopqrstuvwxyz012345", "alice", "bob"}) {
		t.Errorf("users = %q, %v", got, err)
	}
	if whoRan {
		t.Error("who ran although utmp was readable")
	}
}

func TestUsersFallBackToWho(t *testing.T) {
	who := func(context.Context, string, ...string) ([]byte, error) {
		return []byte("dave pts/0 2024-05-01 10:00\n"), nil
	}
	cases := map[string][]byte{
		"missing":   nil,
		"malformed": []byte("not a utmp file"),
		"empty":     utmpRecord(2, 0, "~", "reboot", ""), // only a boot record
	}
	for name, data := range cases {
		root := t.TempDir()
		if data != nil {
			writeFile(t, filepath.Join(root, "run/utmp"), data)
		}
		c := &Collector{Root: root, run: who}
		got, err := c.users(context.Background())
		if err != nil || !slices.Equal(got, []string{"dave"}) {
			t.Errorf("%s utmp: users = %q, %v; want [dave] from who", name, got, err)
		}
	}
	c := &Collector{Root: t.TempDir(), run: func(context.Context, string, ...string) ([]byte, error) {
		return nil, errors.New("exec: \"who\": not found")
	}}
	if _, err := c.users(context.Background()); err == nil || !strings.Contains(err.Error(), "who") {
		t.Errorf("both sources failing: err = %v", err)
	}
}

func TestOSVersionLinux(t *testing.T) {
	kernel := func() (string, error) { return "6.8.0-45-generic", nil }
	noKernel := func() (string, error) { return "", errors.New("uname: nope") }
	cases := []struct {
		root   string
		kernel func() (string, error)
		want   string
	}{
		{"testdata/root", kernel, "Debian GNU/Linux 12 (bookworm) (Linux 6.8.0-45-generic)"},
		{"testdata/usrlib", kernel, "Fedora Linux 40 (Workstation Edition) (Linux 6.8.0-45-generic)"},
		{"testdata/root", noKernel, "Debian GNU/Linux 12 (bookworm)"},
		{t.TempDir(), kernel, "Linux 6.8.0-45-generic"},
	}
	for _, c := range cases {
		col := &Collector{Root: c.root, kernel: c.kernel}
		got, err := col.osVersion(context.Background())
		if err != nil || got != c.want {
			t.Errorf("root %s: osVersion = %q, %v; want %q", c.root, got, err, c.want)
		}
	}
	col := &Collector{Root: t.TempDir(), kernel: noKernel}
	if _, err := col.osVersion(context.Background()); err == nil {
		t.Error("no os-release and no kernel: want an error")
	}
	// The real uname.
	rel, err := unameRelease()
	if err != nil || rel == "" || strings.ContainsRune(rel, 0) {
		t.Errorf("unameRelease = %q, %v", rel, err)
	}
}

func TestHardwareLinux(t *testing.T) {
	root, err := filepath.Abs("testdata/hw")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{Root: root}
	h, err := c.hardware(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.CPUCount != 2 || h.MemoryBytes != 7989012*1024 || h.Vendor != "LENOVO" || h.Model != "20W0004YGE" ||
		h.Serial != "PF2ABCDE" || h.Firmware != "N2XET38W (1.28 )" {
		t.Errorf("hardware %+v", h)
	}
	// "/" under testdata/hw exists; the other mount points do not and are skipped.
	if len(h.Disks) != 1 || h.Disks[0].Mount != "/" || h.Disks[0].Size <= 0 || h.Disks[0].Free > h.Disks[0].Size {
		t.Errorf("disks %+v", h.Disks)
	}
	bt, err := c.bootTime()
	if err != nil || bt.Unix() != 1714550400 {
		t.Errorf("boot time %v, %v", bt, err)
	}
	// This machine.
	var real Collector
	h, err = real.hardware(context.Background())
	if err != nil || h.CPUCount < 1 || h.MemoryBytes <= 0 || len(h.Disks) == 0 {
		t.Errorf("this machine's hardware %+v, %v", h, err)
	}
	if bt, err := real.bootTime(); err != nil || bt.After(time.Now()) || bt.Before(time.Now().AddDate(-5, 0, 0)) {
		t.Errorf("this machine's boot time %v, %v", bt, err)
	}
}
