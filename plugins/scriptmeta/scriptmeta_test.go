package scriptmeta

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/plugins/sdk"
)

const full = `#!/bin/sh
# Copyright notice and other comments may come first.

# patchbay:begin
# name: renew-dhcp
# version: 1.2.0
# description: Renew the DHCP lease
# os: linux, darwin
# shell: bash
# timeout: 2m
# needs_consent: true
# may_reboot: false
# check: true
#
# param: interface string default=eth0 -- the interface to renew
# param: mode string allowed=soft|hard default=soft -- how hard to try
# param: count int required -- how many attempts
# param: wait duration
# param: force bool default=false -- even when the lease is fresh
# patchbay:end
set -eu
echo "# patchbay:begin is fine inside a string"
`

func TestParseFull(t *testing.T) {
	s, err := Parse("renew-dhcp.sh", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	want := &Script{
		Manifest: sdk.Manifest{
			Name: "renew-dhcp", Version: "1.2.0", Description: "Renew the DHCP lease",
			OS: []string{"linux", "darwin"}, NeedsConsent: true,
			Params: []sdk.Param{
				{Name: "interface", Type: "string", Default: "eth0", Description: "the interface to renew"},
				{Name: "mode", Type: "string", Default: "soft", Allowed: []string{"soft", "hard"}, Description: "how hard to try"},
				{Name: "count", Type: "int", Required: true, Description: "how many attempts"},
				{Name: "wait", Type: "duration"},
				{Name: "force", Type: "bool", Default: "false", Description: "even when the lease is fresh"},
			},
		},
		Shell: "bash", Timeout: 2 * time.Minute, Check: true, HasManifest: true,
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name, file, content string
		want                Script
	}{
		{"no header sh", "flush.sh", "#!/bin/sh\necho hi\n",
			Script{Manifest: sdk.Manifest{Name: "flush", Version: "0.0.0"}, Shell: "sh"}},
		{"no header ps1", "Clear.ps1", "Write-Host hi\n", Script{}}, // invalid name: error case below
		{"no header shebang", "x.script", "#!/usr/bin/env bash\necho\n",
			Script{Manifest: sdk.Manifest{Name: "x", Version: "0.0.0"}, Shell: "bash"}},
		{"no header unknown", "x", "echo\n",
			Script{Manifest: sdk.Manifest{Name: "x", Version: "0.0.0"}}},
		{"shell from extension", "a.ps1", "\xef\xbb\xbf#Requires -RunAsAdministrator\r\n# patchbay:begin\r\n# name: a\r\n# description: d\r\n# os: windows\r\n# patchbay:end\r\nWrite-Host hi\r\n",
			Script{Manifest: sdk.Manifest{Name: "a", Version: "0.0.0", Description: "d", OS: []string{"windows"}}, Shell: "powershell", HasManifest: true}},
		{"shell from shebang", "a", "#!/bin/bash\n# patchbay:begin\n# name: a\n# description: d\n# os: linux\n# patchbay:end\n",
			Script{Manifest: sdk.Manifest{Name: "a", Version: "0.0.0", Description: "d", OS: []string{"linux"}}, Shell: "bash", HasManifest: true}},
		{"no os", "a.sh", "# patchbay:begin\n# name: a\n# description: d\n# patchbay:end\n",
			Script{Manifest: sdk.Manifest{Name: "a", Version: "0.0.0", Description: "d"}, Shell: "sh", HasManifest: true}},
		{"bash in .sh", "a.sh", "# patchbay:begin\n# name: a\n# description: d\n# os: linux\n# shell: bash\n# patchbay:end\n",
			Script{Manifest: sdk.Manifest{Name: "a", Version: "0.0.0", Description: "d", OS: []string{"linux"}}, Shell: "bash", HasManifest: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.file, []byte(tt.content))
			if tt.want.Manifest.Name == "" {
				if err == nil {
					t.Fatalf("Parse succeeded: %+v", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*s, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *s, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	hdr := func(lines ...string) string {
		return "#!/bin/sh\n# patchbay:begin\n# name: x\n# description: d\n# os: linux\n" +
			strings.Join(lines, "\n") + "\n# patchbay:end\necho\n"
	}
	tests := []struct {
		name, file, content string
		line                int
		want                string
	}{
		{"unknown key", "x.sh", hdr("# colour: blue"), 6, `unknown key "colour"`},
		{"upper key", "x.sh", hdr("# Name: x"), 6, "want \"key: value\""},
		{"no colon", "x.sh", hdr("# just words"), 6, "want \"key: value\""},
		{"no space", "x.sh", hdr("#check: true"), 6, "header lines start with"},
		{"blank line", "x.sh", hdr(""), 6, "header lines start with"},
		{"empty value", "x.sh", hdr("# timeout:"), 6, "timeout: empty value"},
		{"dup key", "x.sh", hdr("# name: y"), 6, "given twice (also at line 3)"},
		{"bad bool", "x.sh", hdr("# check: yes"), 6, "want true or false"},
		{"bad timeout", "x.sh", hdr("# timeout: soon"), 6, "want a duration"},
		{"long timeout", "x.sh", hdr("# timeout: 48h"), 6, "want a duration"},
		{"negative timeout", "x.sh", hdr("# timeout: -1s"), 6, "want a duration"},
		{"bad shell", "x.sh", hdr("# shell: zsh"), 6, "want sh, bash or powershell"},
		{"shell vs ext", "x.ps1", "# patchbay:begin\n# name: x\n# description: d\n# os: windows\n# shell: sh\n# patchbay:end\n", 5, "file name ends in .ps1"},
		{"sh on windows", "x.sh", "# patchbay:begin\n# name: x\n# description: d\n# os: linux,windows\n# patchbay:end\n", 4, "do not run on Windows"},
		{"bad version", "x.sh", hdr("# version: latest"), 6, "want major.minor.patch"},
		{"bad name", "x.sh", "# patchbay:begin\n# name: Flush DNS\n# patchbay:end\n", 2, "want [a-z]"},
		{"bad os", "x.sh", "# patchbay:begin\n# name: x\n# os: linux,beos\n# patchbay:end\n", 3, `"beos": want`},
		{"dup os", "x.sh", "# patchbay:begin\n# os: linux, linux\n# patchbay:end\n", 2, "listed twice"},
		{"empty os item", "x.sh", "# patchbay:begin\n# os: linux,\n# patchbay:end\n", 2, `"": want`},
		{"control char", "x.sh", hdr("# description: a\x1bb"), 6, "control character"},
		{"missing name", "x.sh", "# patchbay:begin\n# description: d\n# os: linux\n# patchbay:end\n", 1, "no name: line"},
		{"missing description", "x.sh", "\n\n# patchbay:begin\n# name: x\n# os: linux\n# patchbay:end\n", 3, "no description: line"},
		{"no end", "x.sh", "#!/bin/sh\n# patchbay:begin\n# name: x\n", 2, "without"},
		{"end first", "x.sh", "# patchbay:end\n", 1, "without"},
		{"misspelt begin", "x.sh", "#patchbay:begin\n# name: x\n# patchbay:end\n", 1, "exactly"},
		{"misspelt end", "x.sh", "# patchbay:begin\n# name: x\n#  PATCHBAY:END\n", 3, "exactly"},
		{"begin after code", "x.sh", "#!/bin/sh\nset -eu\n# patchbay:begin\n# name: x\n# patchbay:end\n", 3, "after code"},
		{"second header", "x.sh", hdr() + "# patchbay:begin\n# patchbay:end\n", 9, "a second"},
		{"nested begin", "x.sh", "# patchbay:begin\n# patchbay:begin\n", 2, "inside the header"},
		{"too far", "x.sh", strings.Repeat("#\n", 199) + "# patchbay:begin\n# patchbay:end\n", 200, "first 200 lines"},
		{"end too far", "x.sh", "# patchbay:begin\n" + strings.Repeat("#\n", 199) + "# patchbay:end\n", 1, "within the first 200 lines"},
		{"nul", "x.sh", "#!/bin/sh\necho\x00\n", 2, "NUL byte"},
		{"utf16", "x.ps1", "\xff\xfe#\x00 \x00", 1, "UTF-16"},
		{"bad utf8", "x.sh", hdr("# description: \xff"), 6, "UTF-8"},
		{"no header bad file name", "Clear Queue.ps1", "Write-Host\n", 0, "not a valid script name"},

		{"param short", "x.sh", hdr("# param: x"), 6, "want NAME TYPE"},
		{"param name", "x.sh", hdr("# param: X string"), 6, `name "X"`},
		{"param reserved", "x.sh", hdr("# param: timeout duration"), 6, "reserved for the script plugin"},
		{"param type", "x.sh", hdr("# param: x float"), 6, `type "float"`},
		{"param option", "x.sh", hdr("# param: x string optional"), 6, `unknown option "optional"`},
		{"param dash", "x.sh", hdr("# param: x string --no space"), 6, "spaces around --"},
		{"param empty desc", "x.sh", hdr("# param: x string --  "), 6, "write the description after"},
		{"param dup", "x.sh", hdr("# param: x string", "# param: x int"), 7, `"x" declared twice (also at line 6)`},
		{"param required default", "x.sh", hdr("# param: x string required default=a"), 6, "takes no default"},
		{"param empty default", "x.sh", hdr("# param: x string default="), 6, "empty default"},
		{"param bad default", "x.sh", hdr("# param: x int default=many"), 6, "not an integer"},
		{"param default not allowed", "x.sh", hdr("# param: x string allowed=a|b default=c"), 6, "not one of a, b"},
		{"param bad allowed", "x.sh", hdr("# param: x bool allowed=true|maybe"), 6, "not a boolean"},
		{"param empty allowed", "x.sh", hdr("# param: x string allowed=a||b"), 6, "empty value in allowed"},
		{"param dup allowed", "x.sh", hdr("# param: x string allowed=a|a"), 6, "allowed twice"},
		{"param twice required", "x.sh", hdr("# param: x string required required"), 6, "required given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.file, []byte(tt.content))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", s)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			var se *SyntaxError
			if tt.line == 0 {
				return
			}
			if !errors.As(err, &se) || se.Line != tt.line {
				t.Fatalf("err = %v, want it at line %d", err, tt.line)
			}
		})
	}
}

func TestParseTooManyParams(t *testing.T) {
	var b strings.Builder
	b.WriteString("# patchbay:begin\n# name: x\n# description: d\n# os: linux\n")
	for i := 0; i <= sdk.MaxParams; i++ {
		fmt.Fprintf(&b, "# param: p%d string\n", i)
	}
	b.WriteString("# patchbay:end\n")
	_, err := Parse("x.sh", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "more than 64 parameters") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("x.sh", make([]byte, MaxScriptSize+1))
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateParams(t *testing.T) {
	with, err := Parse("x.sh", []byte("# patchbay:begin\n# name: x\n# description: d\n# os: linux\n"+
		"# param: path string default=/ -- where\n# param: top int\n# patchbay:end\n"))
	if err != nil {
		t.Fatal(err)
	}
	without, err := Parse("y.sh", []byte("echo $PATCHBAY_PARAM_ANYTHING\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		s       *Script
		in      map[string]string
		want    map[string]string
		wantErr string
	}{
		{"manifest defaults", with, map[string]string{}, map[string]string{"path": "/"}, ""},
		{"manifest values", with, map[string]string{"path": "/var", "top": "5"}, map[string]string{"path": "/var", "top": "5"}, ""},
		{"manifest undeclared", with, map[string]string{"rm": "-rf /"}, nil, `unknown parameter "rm"`},
		{"manifest wrong type", with, map[string]string{"top": "five"}, nil, "not an integer"},
		{"free anything", without, map[string]string{"rm": "-rf /", "x_1": "$(id)"}, map[string]string{"rm": "-rf /", "x_1": "$(id)"}, ""},
		{"free bad name", without, map[string]string{"X": "1"}, nil, `parameter name "X"`},
		{"free nul", without, map[string]string{"x": "a\x00"}, nil, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.ValidateParams(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, sdk.ErrInvalidParams) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestShellFor(t *testing.T) {
	for _, tt := range []struct{ shell, goos, want string }{
		{"", "linux", "sh"}, {"", "windows", "powershell"}, {"bash", "darwin", "bash"}, {"powershell", "linux", "powershell"},
	} {
		s := &Script{Shell: tt.shell}
		if got := s.ShellFor(tt.goos); got != tt.want {
			t.Errorf("ShellFor(%q) with shell %q = %q, want %q", tt.goos, tt.shell, got, tt.want)
		}
	}
}

// FuzzParse checks that Parse never panics and that every manifest it
// accepts is one the SDK accepts too.
func FuzzParse(f *testing.F) {
	f.Add("x.sh", []byte(full))
	f.Add("x.ps1", []byte("# patchbay:begin\r\n# name: a\r\n# description: d\r\n# os: windows\r\n# param: p int default=3 allowed=1|3\r\n# patchbay:end\r\n"))
	f.Add("x", []byte("#!/usr/bin/env -S bash -e\n"))
	f.Add("bad name.sh", []byte("# patchbay:begin\n# name: x\n# param: a string required -- b\n# patchbay:end\n"))
	f.Fuzz(func(t *testing.T, file string, content []byte) {
		s, err := Parse(file, content)
		if err != nil {
			if s != nil {
				t.Fatal("Parse returned a script and an error")
			}
			return
		}
		if err := s.Manifest.Validate(); err != nil {
			t.Fatalf("accepted a manifest the SDK refuses: %v\n%+v", err, s.Manifest)
		}
		switch s.Shell {
		case "", ShellSh, ShellBash, ShellPowerShell:
		default:
			t.Fatalf("shell %q", s.Shell)
		}
		if s.Timeout < 0 || s.Timeout > MaxTimeout {
			t.Fatalf("timeout %v", s.Timeout)
		}
		for _, p := range s.Manifest.Params {
			if IsReservedParam(p.Name) {
				t.Fatalf("reserved parameter %q accepted", p.Name)
			}
		}
		if !s.HasManifest && (len(s.Manifest.Params) > 0 || s.Check) {
			t.Fatalf("no header but %+v", s)
		}
	})
}
