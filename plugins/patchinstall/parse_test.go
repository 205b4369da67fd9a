package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// summarize is what the tests compare: name, from→to and security, plus
// the count of updates.
func summarize(ups []update) []string {
	var s []string
	for _, u := range ups {
		line := u.Name + " " + u.From + ">" + u.To
		if u.Security {
			line += " sec"
		}
		if u.Restart {
			line += " restart"
		}
		s = append(s, line)
	}
	return s
}

func countSecurity(ups []update) int {
	n := 0
	for _, u := range ups {
		if u.Security {
			n++
		}
	}
	return n
}

func TestParseAptSimulation(t *testing.T) {
	tests := []struct {
		file     string
		count    int
		security int
		heldBack int
		first    []string // the first updates, summarized
	}{
		{"apt-upgrade-bookworm.txt", 132, 80, 0, []string{
			"base-files 12.4+deb12u11>12.4+deb12u15",
			"bash 5.2.15-2+b8>5.2.15-2+b13",
			"libgcrypt20-dev 1.10.1-3>1.10.1-3+deb12u1 sec",
		}},
		{"apt-upgrade-jammy.txt", 10, 9, 2, []string{
			"libssl3 3.0.2-0ubuntu1.12>3.0.2-0ubuntu1.13 sec",
			"openssl 3.0.2-0ubuntu1.12>3.0.2-0ubuntu1.13 sec",
			"tzdata 2023c-0ubuntu0.22.04.2>2024a-0ubuntu0.22.04",
			"linux-modules-5.15.0-91-generic >5.15.0-91.101 sec",
		}},
		{"apt-upgrade-none.txt", 0, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			plan, err := parseAptSimulation(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.updates) != tt.count || countSecurity(plan.updates) != tt.security || plan.heldBack != tt.heldBack {
				t.Fatalf("%d updates (%d security, %d held back), want %d (%d, %d)",
					len(plan.updates), countSecurity(plan.updates), plan.heldBack, tt.count, tt.security, tt.heldBack)
			}
			if got := summarize(plan.updates); len(tt.first) > 0 && !reflect.DeepEqual(got[:len(tt.first)], tt.first) {
				t.Fatalf("first updates = %q, want %q", got[:len(tt.first)], tt.first)
			}
		})
	}
}

func TestParseAptInstDetails(t *testing.T) {
	line := "Inst libpam-modules-bin [1.5.2-6+deb12u1] (1.5.2-6+deb12u2 Debian:12.15/oldstable [amd64]) " +
		"[libpam-modules:amd64 on libpam-modules-bin:amd64] [libpam-modules:amd64 ]"
	u, err := parseAptInst(line)
	want := update{Name: "libpam-modules-bin", From: "1.5.2-6+deb12u1", To: "1.5.2-6+deb12u2", Arch: "amd64", Repo: "Debian:12.15/oldstable"}
	if err != nil || u != want {
		t.Fatalf("parseAptInst = %+v, %v; want %+v", u, err, want)
	}
	u, err = parseAptInst("Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])")
	if err != nil || !u.Security || u.Repo != "Debian-Security:12/stable-security" {
		t.Fatalf("security line = %+v, %v", u, err)
	}
}

func TestParseAptMalformed(t *testing.T) {
	summary := "1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
	good := "Inst bash [5.2-1] (5.2-2 Debian:12/stable [amd64])\n"
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "no summary line"},
		{"error text", "E: Could not open lock file /var/lib/dpkg/lock-frontend\n", "no summary line"},
		{"truncated before summary", good, "no summary line"},
		{"summary disagrees", summary + good + good, "summary counts 1 packages to install but 2 Inst lines"},
		{"Inst without version", "Inst bash [5.2-1]\n" + summary, "want \"(VERSION ORIGINS [ARCH])\""},
		{"unclosed old version", "Inst bash [5.2-1 (5.2-2 x [amd64])\n" + summary, "want \"(VERSION ORIGINS [ARCH])\""},
		{"unclosed new version", "Inst bash [5.2-1] (5.2-2 x [amd64]\n" + summary, "unclosed"},
		{"no name", "Inst  (5.2-2 x [amd64])\n" + summary, "no package name"},
		{"empty parens", "Inst bash ()\n" + summary, "no new version"},
		{"garbled summary", "many upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n", "is not \"N what\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAptSimulation(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseDnf(t *testing.T) {
	tests := []struct {
		update, updateinfo string
		count, security    int
		first              []string
	}{
		{"dnf-check-update-el9.txt", "dnf-updateinfo-security-el9.txt", 8, 5, []string{
			"bind-libs >32:9.16.23-18.el9_4.6 sec",
			"curl >7.76.1-29.el9_4.1 sec",
		}},
		{"dnf5-check-upgrade-fc41.txt", "dnf5-updateinfo-security-fc41.txt", 5, 3, []string{
			"curl >8.9.1-3.fc41 sec",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.update, func(t *testing.T) {
			ups, err := parseDnfCheckUpdate(readTestdata(t, tt.update))
			if err != nil {
				t.Fatal(err)
			}
			sec, err := parseDnfUpdateinfo(readTestdata(t, tt.updateinfo))
			if err != nil {
				t.Fatal(err)
			}
			for i := range ups {
				ups[i].Security = sec[ups[i].Name]
			}
			if len(ups) != tt.count || countSecurity(ups) != tt.security {
				t.Fatalf("%d updates (%d security), want %d (%d): %q", len(ups), countSecurity(ups), tt.count, tt.security, summarize(ups))
			}
			if got := summarize(ups); !reflect.DeepEqual(got[:len(tt.first)], tt.first) {
				t.Fatalf("first updates = %q, want %q", got[:len(tt.first)], tt.first)
			}
		})
	}
	// The wrapped NetworkManager line is read whole.
	ups, _ := parseDnfCheckUpdate(readTestdata(t, "dnf-check-update-el9.txt"))
	if u := ups[6]; u.Name != "NetworkManager-cloud-setup" || u.To != "1:1.46.0-20.el9_4" || u.Repo != "appstream" || u.Arch != "x86_64" {
		t.Fatalf("wrapped line = %+v", u)
	}
}

func TestParseDnfMalformed(t *testing.T) {
	for _, tt := range []struct {
		name, in, wantErr string
		updateinfo        bool
	}{
		{"four columns", "bash.x86_64 5.1-1 baseos extra\n", "want \"NAME.ARCH VERSION REPO\"", false},
		{"no arch", "bash 5.1-1 baseos\n", "is not NAME.ARCH", false},
		{"version without release", "bash.x86_64 5.1 baseos\n", "is not VERSION-RELEASE", false},
		{"ends wrapped", "bash.x86_64\n", "ends inside a wrapped line", false},
		{"error message", "Error: Failed to download metadata for repo 'baseos'\n", "want \"NAME.ARCH VERSION REPO\"", false},
		{"updateinfo garbage", "RHSA-2024:1 Important/Sec. something-odd\n", "no NAME-VERSION-RELEASE.ARCH", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.updateinfo {
				_, err = parseDnfUpdateinfo(tt.in)
			} else {
				_, err = parseDnfCheckUpdate(tt.in)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if got := parseRPMQuery("curl.x86_64 7.76.1-29.el9_4\npackage nope is not installed\nkernel.x86_64 5.14.0-1\nkernel.x86_64 5.14.0-2\n"); !reflect.DeepEqual(got,
		map[string]string{"curl.x86_64": "7.76.1-29.el9_4", "kernel.x86_64": "5.14.0-2"}) {
		t.Fatalf("parseRPMQuery = %v", got)
	}
}

func TestNevraName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel-core-5.14.0-427.42.1.el9_4.x86_64": "kernel-core",
		"bind-libs-32:9.16.23-18.el9_4.6.x86_64":   "bind-libs",
		"tzdata-2024b-2.el9.noarch":                "tzdata",
		"RHSA-2024:8856":                           "",
		"Important/Sec.":                           "",
		"foo-1.x86_64":                             "",
		"2024-12-05":                               "",
	} {
		got, ok := nevraName(in)
		if got != want || ok != (want != "") {
			t.Errorf("nevraName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestParseZypper(t *testing.T) {
	ups, err := parseZypperXML(readTestdata(t, "zypper-list-updates.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"libopenssl3 3.1.4-150600.5.10.1>3.1.4-150600.5.15.1",
		"openssl-3 3.1.4-150600.5.10.1>3.1.4-150600.5.15.1",
		"timezone 2024a-150000.75.28.1>2024b-150000.75.31.1",
	}
	if got := summarize(ups); !reflect.DeepEqual(got, want) || ups[0].Repo != "repo-sle-update" || ups[0].Arch != "x86_64" {
		t.Fatalf("list-updates = %q (%+v), want %q", got, ups[0], want)
	}
	patches, err := parseZypperXML(readTestdata(t, "zypper-list-patches-security.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(patches) != 1 || patches[0].Name != "openSUSE-SLE-15.6-2024-4112" || !patches[0].Security ||
		patches[0].Title != "Security update for openssl-3" {
		t.Fatalf("list-patches = %+v", patches)
	}
	for _, tt := range []struct{ name, in, wantErr string }{
		{"error messages", readTestdata(t, "zypper-error.xml"), "Repository 'repo-oss' is invalid."},
		{"not XML", "Loading repository data...\n", "parse XML"},
		{"truncated", `<?xml version='1.0'?><stream><update-status version="0.6"><update-list><update name="a"`, "parse XML"},
		{"no status", `<?xml version='1.0'?><stream><message type="info">hi</message></stream>`, "no <update-status>"},
		{"nameless update", `<stream><update-status><update-list><update kind="package"/></update-list></update-status></stream>`, "without a name"},
		{"other root", `<html><body>proxy error</body></html>`, "parse XML"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseZypperXML(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
	empty, err := parseZypperXML(`<stream><update-status version="0.6"><update-list></update-list></update-status></stream>`)
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty list = %v, %v", empty, err)
	}
}

func TestParseWinget(t *testing.T) {
	tests := []struct {
		file string
		want []update
	}{
		{"winget-upgrade.txt", []update{
			{Title: "Microsoft Edge", Name: "Microsoft.Edge", From: "119.0.2151.93", To: "120.0.2210.61", Repo: "winget"},
			{Title: "Mozilla Firefox (x64 en-US)", Name: "Mozilla.Firefox", From: "120.0", To: "121.0", Repo: "winget"},
			{Title: "Microsoft Visual C++ 2015-2022 R…", Name: "Microsoft.VCRedist.2015+.x64", From: "14.36.32532.0", To: "14.38.33130.0", Repo: "winget"},
		}},
		{"winget-upgrade-de.txt", []update{
			{Title: "7-Zip 23.01 (x64)", Name: "7zip.7zip", From: "23.01", To: "24.08", Repo: "winget"},
			{Title: "Git", Name: "Git.Git", From: "2.43.0", To: "2.47.1", Repo: "winget"},
		}},
		{"winget-upgrade-none.txt", []update{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseWingetUpgrade(readTestdata(t, tt.file))
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, in, wantErr string }{
		{"no table", "An unexpected error occurred while executing the command:\n0x8a15000f : Data required by the source is missing\n", "no table"},
		{"two columns", "Name Id\n----------\nx y\n", "want Name, Id, Version, Available"},
		{"row does not fit", "Name       Id         Version    Available  Source\n--------------------------------------------------\nshort\n", "does not fit"},
		{"empty", "", "no table"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseWingetUpgrade(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseSoftwareupdate(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"softwareupdate-list.txt", []string{
			"Command Line Tools for Xcode-15.1 >15.1",
			"macOS Sonoma 14.2.1-23C71 >14.2.1 restart",
			"Safari17.2.1VenturaAuto-17.2.1 >17.2.1",
			"Security Update 2021-005 Catalina-10.15.7 >10.15.7 sec restart",
		}},
		{"softwareupdate-list-old.txt", []string{
			"Security Update 2019-004-10.13.6 >10.13.6 sec restart",
			"iTunesX-12.8.2 >12.8.2",
		}},
		{"softwareupdate-none.txt", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ups, err := parseSoftwareupdate(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := summarize(ups); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	ups, _ := parseSoftwareupdate(readTestdata(t, "softwareupdate-list.txt"))
	if ups[1].Title != "macOS Sonoma 14.2.1" {
		t.Fatalf("title = %q", ups[1].Title)
	}
	for _, tt := range []struct{ name, in, wantErr string }{
		{"empty", "", "not a softwareupdate listing"},
		{"error", "softwareupdate: Unable to connect to the server\n", "unexpected"},
		{"details first", "Software Update Tool\n\tTitle: x, Version: 1,\n", "details before any update"},
		{"empty label", "* Label: \n", "without a label"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSoftwareupdate(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
