package selector

import (
	"fmt"
	"strings"
	"testing"
)

const (
	idWeb  = "0190c6a8-7d2e-7c4b-9a55-2f8e1c3b4d5e"
	idMac  = "0190c6a8-7d2e-7c4b-9a55-000000000002"
	idWin  = "0190c6a8-7d2e-7c4b-9a55-000000000003"
	idBare = "0190c6a8-7d2e-7c4b-9a55-000000000004"
)

var agents = map[string]Attrs{
	"web": {ID: idWeb, Hostname: "Web-01.paris.example.com", OS: "linux", Arch: "amd64",
		Tags: map[string]string{"site": "paris", "env": "prod", "role": "web"}},
	"mac": {ID: idMac, Hostname: "MacBook-Alice", OS: "darwin", Arch: "arm64",
		Tags: map[string]string{"site": "london", "env": "staff", "k8s.io/zone": "x"}},
	"win": {ID: idWin, Hostname: "DESKTOP-7Q2", OS: "windows", Arch: "amd64",
		Tags: map[string]string{"site": "paris", "env": "staff"}},
	"bare": {ID: idBare, Hostname: "db7", OS: "Linux", Arch: "ARM64"},
}

func matching(t *testing.T, sel *Selector) string {
	t.Helper()
	var got []string
	for _, name := range []string{"bare", "mac", "web", "win"} {
		if sel.Match(agents[name]) {
			got = append(got, name)
		}
	}
	return strings.Join(got, " ")
}

func TestMatch(t *testing.T) {
	tests := []struct {
		sel   string
		want  string // space-separated agent names, sorted
		canon string // "" means same as sel
	}{
		{"", "bare mac web win", "*"},
		{"   ", "bare mac web win", "*"},
		{"*", "bare mac web win", ""},
		{"all", "bare mac web win", "*"},
		{"os=linux", "bare web", ""},
		{"OS = LINUX", "bare web", "os=linux"},
		{"os!=linux", "mac win", ""},
		{"arch=arm64", "bare mac", ""},
		{"site=paris", "web win", ""},
		{"site=Paris", "", ""}, // tag values are exact
		{"site!=paris", "bare mac", ""},
		{"os=linux,site=paris", "web", ""},
		{" os = linux , site = paris ", "web", "os=linux,site=paris"},
		{"site in (paris,london)", "mac web win", ""},
		{"site in(paris , london )", "mac web win", "site in (paris,london)"},
		{"site notin (paris)", "bare mac", ""},
		{"site NOTIN (paris)", "bare mac", "site notin (paris)"},
		{"env notin (prod,staff)", "bare", ""},
		{"os in (linux,darwin),arch=arm64", "bare mac", ""},
		{"hostname=web-*", "web", ""},
		{"hostname=WEB-0?.*", "web", "hostname=web-0?.*"},
		{"hostname=*-[0-9][0-9]*", "web", ""},
		{"hostname in (db*,desktop-*)", "bare win", ""},
		{"hostname!=*.example.com", "bare mac win", ""},
		{"hostname=web", "", ""},
		{"id=" + idWeb, "web", ""},
		{"id=" + strings.ToUpper(idWeb), "web", "id=" + idWeb},
		{"id in (" + idMac + "," + idWin + ")", "mac win", ""},
		{"id!=" + idWeb, "bare mac win", ""},
		{"k8s.io/zone=x", "", ""}, // "/" is not a key character
		{"role=web,env=prod,site=paris,os=linux,arch=amd64", "web", ""},
		{"role!=web,role notin (db)", "bare mac win", ""},
		{"missing=x", "", ""},
		{"missing!=x", "bare mac web win", ""},
		{"Site=paris", "", ""}, // tag keys are case-sensitive
		{"all=yes", "", ""},    // "all" is only special as the whole selector
		{"in=x", "", ""},       // keys may look like operators
		{"notin notin (a)", "bare mac web win", ""},
		{"site=par*", "", ""}, // no globbing on tags
		{"site=paris\t,\tenv=staff", "win", "site=paris,env=staff"},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.sel)
		if tt.sel == "k8s.io/zone=x" {
			if err == nil {
				t.Errorf("Parse(%q): want an error", tt.sel)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.sel, err)
			continue
		}
		if got := matching(t, sel); got != tt.want {
			t.Errorf("Parse(%q) matches [%s], want [%s]", tt.sel, got, tt.want)
		}
		canon := tt.canon
		if canon == "" {
			canon = tt.sel
		}
		if got := sel.String(); got != canon {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.sel, got, canon)
		}
		again, err := Parse(sel.String())
		if err != nil {
			t.Errorf("Parse(%q) of canonical form: %v", sel.String(), err)
			continue
		}
		if got := matching(t, again); got != tt.want {
			t.Errorf("canonical %q matches [%s], want [%s]", sel.String(), got, tt.want)
		}
	}
}

func TestAllAndNil(t *testing.T) {
	var nilSel *Selector
	if !nilSel.Match(agents["web"]) || !nilSel.All() || nilSel.String() != "*" {
		t.Error("nil selector should match everything and print as *")
	}
	var zero Selector
	if !zero.Match(agents["web"]) || !zero.All() || zero.String() != "*" {
		t.Error("zero selector should match everything and print as *")
	}
	if MustParse("os=linux").All() {
		t.Error("os=linux is not All")
	}
}

func TestUsesTags(t *testing.T) {
	for sel, want := range map[string]bool{
		"": false, "os=linux,arch=amd64": false, "hostname=web-*": false,
		"id=0193a1b2-0000-7000-8000-000000000001": false,
		"site=paris": true, "os=linux,site!=lyon": true, "role in (web,db)": true,
	} {
		if got := MustParse(sel).UsesTags(); got != want {
			t.Errorf("%q: UsesTags() = %v, want %v", sel, got, want)
		}
	}
	var nilSel *Selector
	if nilSel.UsesTags() {
		t.Error("nil selector uses no tags")
	}
}

func TestParseErrors(t *testing.T) {
	long := "site in (" + strings.Repeat("a,", MaxValues) + "a)"
	// The canonical form adds a space before each "(": an input at the limit
	// that grows must be refused so that Parse(String()) always works.
	grows := strings.Repeat("x in(v),", MaxTerms-1)
	grows += "x in(" + strings.Repeat("v", MaxLen-len(grows)-6) + ")"
	tests := []struct {
		sel  string
		want string // substring of the error
	}{
		{"site in (a,b", `selector: term 1 "site in (a,b": unclosed "("`},
		{"os=linux,site in (a", `term 2 "site in (a": unclosed "("`},
		{"site=a)", `term 1 "site=a)": unmatched ")"`},
		{"=linux", `term 1 "=linux": missing key`},
		{"os=linux, =x", `term 2 "=x": missing key`},
		{"!=x", "missing key"},
		{"os==linux", `"==" is not an operator; use "="`},
		{"os=linux,", `term 2 "": empty term (trailing comma?)`},
		{",os=linux", "empty term (leading comma?)"},
		{"os=linux,,arch=amd64", "empty term (doubled comma?)"},
		{"hostname=web[", `bad glob pattern "web["`},
		{"hostname in (a,[z-)", `bad glob pattern "[z-"`},
		{"os=linux,site=par is", `selector: term 2 "site=par is": unexpected text after value`},
		{"site=par@is", `invalid character '@' in value`},
		{"site=", "missing value"},
		{"site", "missing operator"},
		{"site paris", `unknown operator "paris"`},
		{"site ! paris", `unknown operator "!"`},
		{"site~paris", `invalid character '~' after key`},
		{"_site=x", `must start with a letter or digit`},
		{strings.Repeat("k", 64) + "=x", "key longer than 63"},
		{"id=abc", `id "abc" is not a UUID`},
		{"site in ()", "empty list"},
		{"site in (a,)", "empty value in list"},
		{"site in (a,,b)", "empty value in list"},
		{"site in (a b)", `expected "," or ")" after value "a"`},
		{"site in (a)x", "unexpected text after list"},
		{"site in a", `expected "(" after in`},
		{"site notin", `expected "(" after notin`},
		{"site=(a,b)", `a list needs "in" or "notin"`},
		{"site in ((a))", `invalid character '(' in value`},
		{"site=é", `invalid character 'é' in value`},
		{"sité=x", `invalid character 'é' after key "sit"`},
		{"*,os=linux", `invalid character '*' in key`},
		{strings.Repeat("a", MaxLen+1), "selector: too long (4097 bytes, max 4096)"},
		{strings.Repeat("a=b,", MaxTerms) + "a=b", "too many terms (65, max 64)"},
		{long, "more than 256 values"},
		{"site in (" + strings.Repeat("v,", 255) + "v)", ""}, // exactly 256: fine
		{grows, "too long once written canonically"},
		{grows[:len(grows)-65] + ")", ""}, // canonical form exactly MaxLen
	}
	for _, tt := range tests {
		_, err := Parse(tt.sel)
		if tt.want == "" {
			if err != nil {
				t.Errorf("Parse(%.40q): unexpected error %v", tt.sel, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Parse(%.40q): no error, want %q", tt.sel, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%.40q) error = %q, want it to contain %q", tt.sel, err, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "selector: ") {
			t.Errorf("error %q lacks the selector: prefix", err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("error for %.40q is %d bytes long; want it short", tt.sel, len(err.Error()))
		}
	}
}

func TestHelpMentionsOperators(t *testing.T) {
	for _, s := range []string{"key=value", "key!=value", "in (", "notin (", "hostname", "*"} {
		if !strings.Contains(Help, s) {
			t.Errorf("Help does not mention %q", s)
		}
	}
	// Every example in Help must parse.
	for _, line := range strings.Split(Help, "\n") {
		line = strings.TrimSpace(line)
		if ex, ok := strings.CutPrefix(line, "--target "); ok {
			ex = strings.Trim(ex, "'")
			if _, err := Parse(ex); err != nil {
				t.Errorf("Help example %q: %v", ex, err)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "*", "all", "os=linux", "os=linux,site=paris", "site in (a,b,c)",
		"site notin (a, b)", "hostname=web-*", "hostname=[a-c]?x", "id=" + idWeb,
		"env!=prod", " a = b , c in ( d , e ) ", "a in (b", "a==b", "a=b,", "Hostname=WEB*",
		"hostname in (*,[!a])", "x in(y)",
		"software=openssl,software.version<3.0.14", "memory>=8GiB", "disk.free<10%", "software notin (a,b)",
	} {
		f.Add(s)
	}
	fixed := make([]Attrs, 0, len(agents)+1)
	for _, name := range []string{"bare", "mac", "web", "win"} {
		fixed = append(fixed, agents[name])
	}
	fixed = append(fixed, Attrs{Tags: map[string]string{"a": "b", "x": "y", "site": "a"}})
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Parse(s)
		if err != nil {
			if sel != nil {
				t.Fatalf("Parse(%q) returned a selector and an error", s)
			}
			return
		}
		canon := sel.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but Parse(String()=%q): %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q -> %q", canon, again.String())
		}
		for _, a := range fixed {
			if sel.Match(a) != again.Match(a) {
				t.Fatalf("%q and its canonical form %q disagree on %+v", s, canon, a)
			}
		}
	})
}

func TestInventoryTerms(t *testing.T) {
	cases := []struct {
		in, canon string
		want      []InvCond
	}{
		{"software=Firefox", "software=firefox", []InvCond{{Kind: InvSoftware, Names: []string{"firefox"}}}},
		{"software = openssl , software.version < 3.0.14", "software=openssl,software.version<3.0.14",
			[]InvCond{{Kind: InvSoftware, Names: []string{"openssl"}, Versions: []VersionCmp{{"<", "3.0.14"}}}}},
		{"software.version>=1:2.0~rc1+dfsg-1", "software.version>=1:2.0~rc1+dfsg-1",
			[]InvCond{{Kind: InvSoftware, Versions: []VersionCmp{{">=", "1:2.0~rc1+dfsg-1"}}}}},
		{"software in (g++,libstdc++6),software.version>=12,software.version!=12.1,os=linux",
			"software in (g++,libstdc++6),software.version>=12,software.version!=12.1,os=linux",
			[]InvCond{{Kind: InvSoftware, Names: []string{"g++", "libstdc++6"}, Versions: []VersionCmp{{">=", "12"}, {"!=", "12.1"}}}}},
		{"software!=firefox,software=curl", "software!=firefox,software=curl",
			[]InvCond{{Kind: InvSoftware, Names: []string{"firefox"}, Negate: true}, {Kind: InvSoftware, Names: []string{"curl"}}}},
		{"memory<8GiB", "memory<8GiB", []InvCond{{Kind: InvMemory, Op: "<", Value: 8 << 30}}},
		{"memory >= 512M", "memory>=512M", []InvCond{{Kind: InvMemory, Op: ">=", Value: 512 << 20}}},
		{"disk.free<10%", "disk.free<10%", []InvCond{{Kind: InvDiskFree, Op: "<", Value: 100_000, PPM: true}}},
		{"disk.free<=1.5GB", "disk.free<=1.5GB", []InvCond{{Kind: InvDiskFree, Op: "<=", Value: 1_500_000_000}}},
	}
	for _, c := range cases {
		sel, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if sel.String() != c.canon {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, sel.String(), c.canon)
		}
		if !sel.UsesInventory() {
			t.Errorf("%q: UsesInventory false", c.in)
		}
		if got := sel.Inventory(); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q: Inventory() = %+v, want %+v", c.in, got, c.want)
		}
		// Match leaves inventory terms to the store.
		if !sel.Match(Attrs{OS: "linux"}) {
			t.Errorf("%q: Match should ignore inventory terms", c.in)
		}
	}
	if MustParse("os=linux,site=paris").UsesInventory() {
		t.Error("plain selector uses inventory")
	}
	bad := map[string]string{
		"memory=8GiB":               "memory takes <",
		"memory<8 GiB":              "unexpected text",
		"memory<8XB":                "size",
		"disk.free<120%":            "percentage",
		"software<3":                "works only with",
		"site<3":                    "works only with",
		"software.version in (1,2)": "not a list",
		"memory<":                   "missing value",
		"software=fire fox":         "unexpected text",
		"disk.free in (1,2)":        "disk.free takes",
	}
	for in, want := range bad {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error %v, want one containing %q", in, err, want)
		}
	}
}
