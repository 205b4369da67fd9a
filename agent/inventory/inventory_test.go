package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestParseOSRelease(t *testing.T) {
	f := parseOSRelease([]byte("# comment\nPRETTY_NAME=\"Ubuntu 24.04 LTS\"\nID=ubuntu\n\nX='a b'\nY=\"say \\\"hi\\\" \\\\ \\$HOME\"\nbroken line\n"))
	want := map[string]string{"PRETTY_NAME": "Ubuntu 24.04 LTS", "ID": "ubuntu", "X": "a b", "Y": `say "hi" \ $HOME`}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	if len(f) != len(want) {
		t.Errorf("got %d fields %v, want %d", len(f), f, len(want))
	}
	if got := prettyName(map[string]string{"NAME": "Alpine Linux", "VERSION_ID": "3.20.1"}); got != "Alpine Linux 3.20.1" {
		t.Errorf("prettyName fallback = %q", got)
	}
}

func TestParseWho(t *testing.T) {
	out := "bob      pts/0        2024-05-01 09:12 (10.0.0.7)\n" +
		"alice    tty2         2024-05-01 08:00 (tty2)\n" +
		"\n" +
		"bob      pts/1        2024-05-01 09:30 (10.0.0.7)\n"
	if got := parseWho([]byte(out)); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("parseWho = %q", got)
	}
	if got := parseWho(nil); len(got) != 0 {
		t.Errorf("parseWho(empty) = %q", got)
	}
}

func TestParseQueryUser(t *testing.T) {
	out := " USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME\r\n" +
		">alice                 console             1  Active      none   5/1/2024 8:00 AM\r\n" +
		" bob                                       2  Disc         1:02  5/1/2024 7:00 AM\r\n"
	if got := parseQueryUser([]byte(out)); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("parseQueryUser = %q", got)
	}
}

func addr(cidr string) net.Addr {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func TestFilterAddrs(t *testing.T) {
	in := []net.Addr{
		addr("192.168.1.10/24"),
		addr("127.0.0.1/8"),
		addr("::1/128"),
		addr("fe80::1c2b:3cff:fe4d:5e6f/64"),
		addr("2001:db8::10/64"),
		addr("10.0.0.9/8"),
		addr("10.0.0.10/8"),
		addr("169.254.3.4/16"), // IPv4 link-local is kept
		&net.IPAddr{IP: net.ParseIP("::ffff:10.0.0.9")},
		addr("0.0.0.0/0"),
		&net.UnixAddr{Name: "/x", Net: "unix"},
	}
	want := []string{"10.0.0.9", "10.0.0.10", "169.254.3.4", "192.168.1.10", "2001:db8::10"}
	if got := filterAddrs(in); !slices.Equal(got, want) {
		t.Errorf("filterAddrs = %q, want %q", got, want)
	}
}

func TestCollectWithHooks(t *testing.T) {
	c := &Collector{
		Root:   "testdata/root",
		kernel: func() (string, error) { return "6.1.0-18-amd64", nil },
		ifaces: func() ([]net.Addr, error) { return []net.Addr{addr("10.1.2.3/16"), addr("fe80::1/64")}, nil },
		run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			if name == "who" {
				return []byte("carol pts/3 2024-05-01 10:00\n"), nil
			}
			return nil, errors.New("unexpected command " + name)
		},
	}
	inv := c.Collect(context.Background())
	if runtime.GOOS == "linux" {
		if want := "Debian GNU/Linux 12 (bookworm) (Linux 6.1.0-18-amd64)"; inv.OSVersion != want {
			t.Errorf("OSVersion = %q, want %q", inv.OSVersion, want)
		}
		// No utmp under testdata/root: falls back to who.
		if !slices.Equal(inv.Users, []string{"carol"}) {
			t.Errorf("Users = %q, want [carol]", inv.Users)
		}
	}
	if !slices.Equal(inv.IPs, []string{"10.1.2.3"}) {
		t.Errorf("IPs = %q", inv.IPs)
	}
	if inv.OS != runtime.GOOS || inv.Arch != runtime.GOARCH || inv.Hostname == "" {
		t.Errorf("inventory = %+v", inv)
	}
}

func TestFailingPartsAreEmptyAndLogged(t *testing.T) {
	var logs strings.Builder
	ctx := zerolog.New(&logs).Level(zerolog.DebugLevel).WithContext(context.Background())
	c := &Collector{
		Root:   t.TempDir(), // nothing to read
		kernel: func() (string, error) { return "", errors.New("uname: nope") },
		ifaces: func() ([]net.Addr, error) { return nil, errors.New("no interfaces") },
		run: func(context.Context, string, ...string) ([]byte, error) {
			return nil, errors.New("exec: not found")
		},
	}
	inv := c.Collect(ctx)
	if runtime.GOOS == "linux" && inv.OSVersion != "" {
		t.Errorf("OSVersion = %q, want empty", inv.OSVersion)
	}
	if inv.Users == nil || inv.IPs == nil || len(inv.Users) != 0 || len(inv.IPs) != 0 {
		t.Errorf("Users %q, IPs %q: want empty, non-nil", inv.Users, inv.IPs)
	}
	b, _ := json.Marshal(inv)
	if !strings.Contains(string(b), `"users":[]`) || !strings.Contains(string(b), `"ips":[]`) {
		t.Errorf("JSON %s should have empty arrays", b)
	}
	for _, part := range []string{`"part":"os_version"`, `"part":"users"`, `"part":"ips"`, `"level":"debug"`} {
		if !strings.Contains(logs.String(), part) {
			t.Errorf("debug log lacks %s:\n%s", part, logs.String())
		}
	}
}

func TestCollectThisMachine(t *testing.T) {
	inv := Collect(context.Background())
	if inv.Hostname == "" {
		t.Error("empty hostname")
	}
	if inv.OS != runtime.GOOS || inv.Arch != runtime.GOARCH {
		t.Errorf("OS/Arch = %s/%s", inv.OS, inv.Arch)
	}
	if runtime.GOOS == "linux" && inv.OS != "linux" {
		t.Errorf("OS = %q, want linux", inv.OS)
	}
	if inv.OSVersion == "" {
		t.Error("empty OS version")
	}
	if !slices.IsSorted(inv.Users) {
		t.Errorf("users not sorted: %q", inv.Users)
	}
	for _, ip := range inv.IPs {
		if strings.HasPrefix(ip, "127.") || ip == "::1" || strings.HasPrefix(ip, "fe80:") {
			t.Errorf("unwanted address %s", ip)
		}
	}
	t.Logf("inventory: %+v", inv)
}
