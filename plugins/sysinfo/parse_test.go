package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseUptime(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{"350735.47 234388.90\n", 350735.47, ""},
		{"12", 12, ""},
		{"", 0, "empty"},
		{"  \n", 0, "empty"},
		{"abc 1", 0, `"abc" is not a non-negative number`},
		{"-5 1", 0, "not a non-negative number"},
		{"NaN 1", 0, "not a non-negative number"},
		{"+Inf", 0, "not a non-negative number"},
	}
	for _, tt := range tests {
		got, err := parseUptime([]byte(tt.in))
		if !errMatches(err, tt.wantErr) || got != tt.want {
			t.Errorf("parseUptime(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseLoadavg(t *testing.T) {
	tests := []struct {
		in      string
		want    [3]float64
		wantErr string
	}{
		{"0.52 0.58 0.59 1/234 5678\n", [3]float64{0.52, 0.58, 0.59}, ""},
		{"1 2 3", [3]float64{1, 2, 3}, ""},
		{"0.52 0.58", [3]float64{}, "want three load averages"},
		{"", [3]float64{}, "want three load averages"},
		{"0.5 x 0.5", [3]float64{0.5}, `"x" is not a non-negative number`},
	}
	for _, tt := range tests {
		got, err := parseLoadavg([]byte(tt.in))
		if !errMatches(err, tt.wantErr) || got != tt.want {
			t.Errorf("parseLoadavg(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name             string
		in               string
		total, available uint64
		wantErr          string
	}{
		{"modern", "MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    9000000 kB\nHugePages_Total:       0\n",
			16000000 * 1024, 9000000 * 1024, ""},
		{"old kernel", "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n", 1000 * 1024, 400 * 1024, ""},
		{"available above total", "MemTotal: 10 kB\nMemAvailable: 20 kB\n", 10 * 1024, 10 * 1024, ""},
		{"empty", "", 0, 0, "no MemTotal"},
		{"zero total", "MemTotal: 0 kB\n", 0, 0, "no MemTotal"},
		{"bad number", "MemTotal: lots kB\n", 0, 0, `line 1: "MemTotal: lots kB": bad number`},
		{"no colon", "MemTotal 100 kB\n", 0, 0, `line 1: "MemTotal 100 kB": want`},
		{"wrong unit", "MemTotal: 100 MB\n", 0, 0, "want"},
		{"missing value", "MemTotal:\n", 0, 0, "want"},
		{"binary junk", "\x00\xff\xfe", 0, 0, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, avail, err := parseMeminfo([]byte(tt.in))
			if !errMatches(err, tt.wantErr) || total != tt.total || avail != tt.available {
				t.Fatalf("got %d, %d, %v; want %d, %d, %q", total, avail, err, tt.total, tt.available, tt.wantErr)
			}
		})
	}
}

func TestParseMounts(t *testing.T) {
	in := "/dev/sda1 / ext4 rw,relatime 0 0\n" +
		"proc /proc proc rw 0 0\n" +
		"\n" +
		"/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n" +
		"/dev/sdc1 /back\\134slash ext4 rw 0 0\n"
	got, err := parseMounts([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{{"/dev/sda1", "/", "ext4"}, {"proc", "/proc", "proc"}, {"/dev/sdb1", "/mnt/my disk", "xfs"}, {"/dev/sdc1", `/back\slash`, "ext4"}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, tt := range []struct{ in, wantErr string }{
		{"/dev/sda1 /\n", "line 1"},
		{"/dev/sda1 / ext4\nbroken\n", "line 2"},
		{"/dev/sda1 /a\\04 ext4", "truncated escape"},
		{"/dev/sda1 /a\\999 ext4", "bad escape"},
		{"/dev/sda1 relative ext4", "not absolute"},
	} {
		if _, err := parseMounts([]byte(tt.in)); !errMatches(err, tt.wantErr) {
			t.Errorf("parseMounts(%q) err = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestNewDisk(t *testing.T) {
	tests := []struct {
		name                        string
		blocks, bfree, bavail, size uint64
		wantUsed, wantAvail         uint64
		wantPercent                 int
	}{
		{"half", 100, 50, 50, 4096, 50 * 4096, 50 * 4096, 50},
		{"reserved blocks count as used for users", 100, 10, 5, 1, 90, 5, 95},
		{"rounds up", 3, 2, 2, 1, 1, 2, 34},
		{"empty fs", 0, 0, 0, 4096, 0, 0, 0},
		{"full", 10, 0, 0, 1, 10, 0, 100},
		{"nonsense free", 10, 20, 0, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		d := newDisk("/", "dev", "ext4", tt.blocks, tt.bfree, tt.bavail, tt.size)
		if d.Used != tt.wantUsed || d.Available != tt.wantAvail || d.Percent != tt.wantPercent || d.Total != tt.blocks*tt.size {
			t.Errorf("%s: got %+v", tt.name, d)
		}
	}
}

func TestParseFailedUnits(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"nginx.service loaded failed failed A high performance web server\n", []string{"nginx.service"}},
		{"● foo.service loaded failed failed Foo\n* bar.socket loaded failed failed Bar\n\n", []string{"foo.service", "bar.socket"}},
		{"0 loaded units listed.\n", []string{}},
	}
	for _, tt := range tests {
		if got := parseFailedUnits([]byte(tt.in)); !slices.Equal(got, tt.want) {
			t.Errorf("parseFailedUnits(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseVMStat(t *testing.T) {
	good := `Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                                3000.
Pages active:                            200000.
Pages inactive:                          100000.
Pages speculative:                         2000.
Pages throttled:                              0.
`
	tests := []struct {
		name, in string
		want     uint64
		wantErr  string
	}{
		{"good", good, (3000 + 100000 + 2000) * 16384, ""},
		{"no header", "Pages free: 1.\n", 0, "no page size"},
		{"bad page size", "Mach Virtual Memory Statistics: (page size of many bytes)\nPages free: 1.\n", 0, "bad page size"},
		{"bad number", "Mach Virtual Memory Statistics: (page size of 4096 bytes)\nPages free: lots.\n", 0, "bad number"},
		{"no pages", "Mach Virtual Memory Statistics: (page size of 4096 bytes)\n", 0, `no "Pages free"`},
		{"empty", "", 0, "no page size"},
	}
	for _, tt := range tests {
		got, err := parseVMStat([]byte(tt.in))
		if !errMatches(err, tt.wantErr) || got != tt.want {
			t.Errorf("%s: got %d, %v; want %d, %q", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// errMatches reports whether err is nil when want is "", or contains want.
func errMatches(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
