package signature

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Public keys only (the private halves were never kept).
const (
	edKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIBgFYfQu09pV8Jl7uJeCa8NLdHzPd+7yQ0Tdedfcglm"
	ecKey  = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJ98o751HknHz3E7V3F5r5BzB9iy3I2wSZejokyqHicMoWSA1/9Yv7zPXhWrCpLIC/9mAJl6Nb9PdmLedC4Wop4="
	dsaKey = "ssh-dss AAAAB3NzaC1kc3MAAACBAMYc8/wSoSt8Nbzw+26Nkg59tOiZvxBo2Uqz3t0MwYf7BZ6cFxOu3xfoAP6ZYx9/cRl3y2MfyE3Ic5Eb0W/Q7fxQO6U3fAh+QCyEhdTKvRew+eCeNo5ysBITqIdzi+4yWdLzDRg8b5LZ0tW8HCR8PwlA6/MdRldkT1+IEy5XyM/jAAAAFQDSeg7eF51UIDI8fdEr9oGVY/iW2wAAAIEAgqgxTnvW8MUvq44BnHfSxp2WGsRIY8RmoRjhvVDc/DTdSmnELfOs/B1qoSm4dfzZW4TVmOwb41349mA3wZHOq8yhrfSMbf66pdWF5OJVBlWf3vuXp8VFk8PpPZBf56BTJYrA2Fp72Jt6e/JIALxSBSd44SmQVCo0FGR34cG+khUAAACBAJuECsxXUxUTM6ZEnvwur4Wolf29QjCSwX5DRdX1Og59RRj1XO+NsP+Nzmvt9bQ6HUiy7SSJB1T+Qiuhfc7vpEqdWUT50YQap+6e/0Ebb9490ODDQnxjMePlz00kO4djMSbO7oFgD6kHiOoCyAv1ybobHmcQiCfbKHbMv04YFNNu"
	// certKey is an OpenSSH user certificate (public).
	certKey = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAINNsB2gjvW9lk0L/IR0wb+NEcNjNu+1Q3IPV3GHVaSRtAAAAIFeHQHzBtTo0sVLJm0muqCN8ykIcgPL4/3qs2TrcT7mfAAAAAAAAAAAAAAABAAAAAmlkAAAABQAAAAF4AAAAAAAAAAD//////////wAAAAAAAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LWFnZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmcAAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAADnBlcm1pdC11c2VyLXJjAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIBDtBG6OFnISctGhAm9Uv1jmWQAbPmUm1so74BCtPTGJAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEA5qNMf9KJh1TzGz27P27THx1bcOz3orGCr7hKn9nO+AXY8pkcQw+6s6aIzWZS+OwnrnkZrbMT+1glnF6jscB8B"
)

func TestParseAllowedSigners(t *testing.T) {
	ed, _, _, _, err := ssh.ParseAuthorizedKey([]byte(edKey))
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, m time.Month, d, h, mi, s int) time.Time { return time.Date(y, m, d, h, mi, s, 0, time.UTC) }

	tests := []struct {
		name  string
		input string
		want  []AllowedSigner // Key is checked to be ed unless the line is ecdsa
	}{
		{"empty", "", nil},
		{"comments and blanks", "# comment\n\n   \t\n  # indented comment\r\n", nil},
		{"plain", "alice@example.com " + edKey + "\n",
			[]AllowedSigner{{Line: 1, Principals: []string{"alice@example.com"}}}},
		{"comment after key", "alice " + edKey + "  laptop key 2026 \n",
			[]AllowedSigner{{Line: 1, Principals: []string{"alice"}, Comment: "laptop key 2026"}}},
		{"CRLF and tabs", "\talice\t" + edKey + "\r\n",
			[]AllowedSigner{{Line: 1, Principals: []string{"alice"}}}},
		{"principal list with wildcards", "*@example.com,!eve@example.com,ops-? " + edKey,
			[]AllowedSigner{{Line: 1, Principals: []string{"*@example.com", "!eve@example.com", "ops-?"}}}},
		{"quoted principals", `"Alice Smith,bob" ` + edKey,
			[]AllowedSigner{{Line: 1, Principals: []string{"Alice Smith", "bob"}}}},
		{"all options", "# x\n\nalice cert-authority,namespaces=\"patchbay-plugin,file\",valid-after=\"20260102Z\",valid-before=\"20270102030405Z\" " + edKey + " ca",
			[]AllowedSigner{{Line: 3, Principals: []string{"alice"}, CertAuthority: true, Namespaces: []string{"patchbay-plugin", "file"},
				ValidAfter: utc(2026, 1, 2, 0, 0, 0), ValidBefore: utc(2027, 1, 2, 3, 4, 5), Comment: "ca"}}},
		{"option names are case-insensitive", `alice Cert-Authority,NAMESPACES="x",Valid-Before="203001010000UTC" ` + edKey,
			[]AllowedSigner{{Line: 1, Principals: []string{"alice"}, CertAuthority: true, Namespaces: []string{"x"}, ValidBefore: utc(2030, 1, 1, 0, 0, 0)}}},
		{"escaped quote in value", `alice namespaces="a\"b" ` + edKey,
			[]AllowedSigner{{Line: 1, Principals: []string{"alice"}, Namespaces: []string{`a"b`}}}},
		{"two lines", "a " + edKey + "\nb " + edKey,
			[]AllowedSigner{{Line: 1, Principals: []string{"a"}}, {Line: 2, Principals: []string{"b"}}}},
		{"ecdsa", "a " + ecKey,
			[]AllowedSigner{{Line: 1, Principals: []string{"a"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAllowedSigners(strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("ParseAllowedSigners: %v", err)
			}
			got := a.Entries()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d entries, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i].Key == nil {
					t.Fatalf("entry %d has no key", i)
				}
				if got[i].Key.Type() == ssh.KeyAlgoED25519 && string(got[i].Key.Marshal()) != string(ed.Marshal()) {
					t.Errorf("entry %d: wrong key", i)
				}
				got[i].Key = nil
				// Compare instants, not locations.
				for _, p := range []*time.Time{&got[i].ValidAfter, &got[i].ValidBefore, &tt.want[i].ValidAfter, &tt.want[i].ValidBefore} {
					if !p.IsZero() {
						*p = p.UTC()
					}
				}
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseAllowedSignersErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // the error contains it
	}{
		{"principal only", "alice\n", "line 1: missing key after the principals"},
		{"unknown option", "# c\nalice no-touch-required " + edKey, `line 2: unknown option "no-touch-required"`},
		{"unknown option with value", `alice permitopen="x" ` + edKey, `line 1: unknown option "permitopen"`},
		{"options but no key", `alice namespaces="x"`, "line 1: missing key after the options"},
		{"space after comma in options", `alice cert-authority, namespaces="x" ` + edKey, "line 1: options end with a comma"},
		{"trailing comma", `alice cert-authority, ` + edKey, "line 1: options end with a comma"},
		{"empty option", `alice ,cert-authority ` + edKey, "line 1: empty option"},
		{"unquoted value", `alice namespaces=file ` + edKey, "line 1: option namespaces: value must be in double quotes"},
		{"unterminated quote", `alice namespaces="file ` + edKey, "line 1: option namespaces: missing closing quote"},
		{"junk after quote", `alice namespaces="file"x ` + edKey, `line 1: option namespaces: unexpected "x"`},
		{"duplicate option", `alice namespaces="a",namespaces="b" ` + edKey, "line 1: option namespaces given twice"},
		{"empty namespaces", `alice namespaces="" ` + edKey, "line 1: option namespaces: empty namespace list"},
		{"namespace with space", `alice namespaces="a, b" ` + edKey, "line 1: option namespaces: namespace \" b\" contains white space"},
		{"cert-authority with value", `alice cert-authority="yes" ` + edKey, "line 1: option cert-authority takes no value"},
		{"bad time", `alice valid-after="2026-01-02" ` + edKey, `line 1: option valid-after: time "2026-01-02"`},
		{"bad month", `alice valid-after="20261302" ` + edKey, `line 1: option valid-after: time "20261302"`},
		{"time too old", `alice valid-after="19700101Z" ` + edKey, `before 1970`},
		{"window inverted", `alice valid-after="20270101Z",valid-before="20260101Z" ` + edKey, "line 1: valid-before is not after valid-after"},
		{"missing value", `alice valid-before ` + edKey, "line 1: option valid-before needs a value"},
		{"unquoted principal with quote", `al"ice ` + edKey, "line 1: principals: a quote inside"},
		{"unterminated quoted principal", `"alice ` + edKey, "line 1: principals: missing closing quote"},
		{"empty principal", `alice,,bob ` + edKey, `line 1: empty principal in list "alice,,bob"`},
		{"empty quoted principal", `"" ` + edKey, "line 1: empty principal list"},
		{"only negated principals", `!eve ` + edKey, "line 1: no principal"},
		{"bad base64", "alice ssh-ed25519 AAAA$$$", "line 1: key type ssh-ed25519: invalid base64"},
		{"missing base64", "alice ssh-ed25519", "line 1: key type ssh-ed25519: missing base64 key"},
		{"truncated key", "alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIBgFYfQu09pV8Jl7uJeCa8N", "line 1: key type ssh-ed25519: invalid"},
		{"key type mismatch", "alice ssh-rsa " + strings.Fields(edKey)[1], "line 1: key type ssh-rsa does not match the key, which is ssh-ed25519"},
		{"unknown key type", `alice namespaces="x" ssh-foo AAAA`, `line 1: unsupported key: key type "ssh-foo"`},
		{"unknown key type without options", `alice ssh-foo AAAA`, `line 1: unknown option "ssh-foo" (or unsupported key type)`},
		{"dsa", "alice " + dsaKey, "line 1: unsupported key: key type \"ssh-dss\""},
		{"certificate", "alice " + certKey, "line 1: key type ssh-ed25519-cert-v01@openssh.com: a certificate cannot be listed"},
		{"NUL byte", "alice " + edKey + "\x00\n", "line 1: contains a NUL byte"},
		{"error names the right line", "a " + edKey + "\n# ok\n\nb " + edKey + " \nc\n", "line 5: missing key"},
		{"too long line", "alice " + edKey + " " + strings.Repeat("c", MaxAllowedSignersLine), "line 1: longer than"},
		{"too many lines", strings.Repeat("#\n", MaxAllowedSignersLines+1), "more than 10000 lines"},
		{"too large", strings.Repeat("#", MaxAllowedSignersSize+1), "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAllowedSigners(strings.NewReader(tt.input))
			if err == nil {
				t.Fatalf("parsed %+v, want error containing %q", a.Entries(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestParseAgreesWithSSHKeygen: lines we accept, ssh-keygen accepts too (it
// finds the principal with -Y find-principals), and lines it refuses as
// malformed we refuse.
func TestParseAgreesWithSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, dir, "k")
	file := filepath.Join(dir, "f")
	writeFile(t, file, "x")
	sig := keygenSign(t, k.Path, file, Namespace)
	tests := []struct {
		line string
		ok   bool
	}{
		{"alice " + k.PubLine, true},
		{`"alice" namespaces="patchbay-plugin" ` + k.PubLine, true},
		{`alice valid-after="20200101",valid-before="29990101Z" ` + k.PubLine, true},
		{`alice nope ` + k.PubLine, false},
		{`alice namespaces="x",namespaces="y" ` + k.PubLine, false},
		{`alice valid-after="2020" ` + k.PubLine, false},
		{`alice namespaces=x ` + k.PubLine, false},
		{`alice valid-after="20270101Z",valid-before="20260101Z" ` + k.PubLine, false},
	}
	for _, tt := range tests {
		_, err := ParseAllowedSigners(strings.NewReader(tt.line))
		as := filepath.Join(dir, "allowed_signers")
		writeFile(t, as, tt.line+"\n")
		out, kerr := keygen(t, dir, nil, "-Y", "find-principals", "-f", as, "-s", file+".sig")
		_ = sig
		if (err == nil) != tt.ok || (kerr == nil) != tt.ok {
			t.Errorf("%s: we: %v; ssh-keygen: %v %s; want ok=%v", tt.line, err, kerr, out, tt.ok)
		}
	}
}

func TestLoadAllowedSigners(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadAllowedSigners(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "# fine\nalice bogus "+edKey+"\n")
	_, err := LoadAllowedSigners(bad)
	if err == nil || !strings.Contains(err.Error(), bad+": line 2: unknown option") {
		t.Errorf("bad file: %v", err)
	}
	good := filepath.Join(dir, "good")
	writeFile(t, good, "alice "+edKey+"\n")
	if a, err := LoadAllowedSigners(good); err != nil || a.Len() != 1 {
		t.Errorf("good file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxAllowedSignersSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAllowedSigners(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: error
	}{
		{"20260102", time.Date(2026, 1, 2, 0, 0, 0, 0, time.Local)},
		{"202601021504", time.Date(2026, 1, 2, 15, 4, 0, 0, time.Local)},
		{"20260102150405", time.Date(2026, 1, 2, 15, 4, 5, 0, time.Local)},
		{"20260102Z", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"20260102150405z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"202601021504UTC", time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)},
		{"2026010", time.Time{}},
		{"2026010215", time.Time{}},
		{"20260132", time.Time{}},
		{"20260102250000", time.Time{}},
		{"+2026010", time.Time{}},
		{"2026-1-02", time.Time{}},
		{"Z", time.Time{}},
		{"", time.Time{}},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("parseTime(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"alice@example.com", "*@example.com", true},
		{"alice@example.com", "*", true},
		{"", "*", true},
		{"", "", true},
		{"a", "", false},
		{"alice@example.com", "?lice@*.com", true},
		{"alice@example.com", "Alice@example.com", false},
		{"alice@example.comx", "*@example.com", false},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c", false},
		{"abcabd", "*abd", true},
		{"ab", "a?b", false},
		{"patchbay-plugin", "patchbay-*", true},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.s, tt.p); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v", tt.s, tt.p, got)
		}
	}
	lists := []struct {
		s    string
		l    []string
		want bool
	}{
		{"patchbay-plugin", []string{"file", "patchbay-plugin"}, true},
		{"patchbay-plugin", []string{"*", "!patchbay-plugin"}, false},
		{"patchbay-plugin", []string{"!file"}, false},
		{"patchbay-plugin", []string{"!file", "patch*"}, true},
		{"x", nil, false},
	}
	for _, tt := range lists {
		if got := matchList(tt.s, tt.l); got != tt.want {
			t.Errorf("matchList(%q, %q) = %v", tt.s, tt.l, got)
		}
	}
}
