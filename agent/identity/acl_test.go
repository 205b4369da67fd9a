package identity

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const sidUsers = "S-1-5-32-545"

func TestCheckACL(t *testing.T) {
	full := uint32(0x001F01FF)
	safe := []ACE{
		{SID: SIDSystem, Mask: full, Allow: true},
		{SID: SIDAdministrators, Mask: full, Allow: true},
	}
	for _, tc := range []struct {
		name string
		si   SecurityInfo
		bad  []string // substrings of the error; nil: safe
	}{
		{"system and admins", SecurityInfo{Owner: SIDAdministrators, Entries: safe}, nil},
		{"owner system", SecurityInfo{Owner: SIDSystem, Entries: safe}, nil},
		{"empty DACL (nobody)", SecurityInfo{Owner: SIDSystem}, nil},
		{"deny to users", SecurityInfo{Owner: SIDSystem, Entries: append(safe, ACE{SID: sidUsers, Mask: full})}, nil},
		{"inherit-only for users", SecurityInfo{Owner: SIDSystem, Entries: append(safe, ACE{SID: sidUsers, Mask: full, Allow: true, InheritOnly: true})}, nil},
		{"creator owner", SecurityInfo{Owner: SIDSystem, Entries: append(safe, ACE{SID: "S-1-3-0", Mask: full, Allow: true})}, nil},
		{"synchronize only", SecurityInfo{Owner: SIDSystem, Entries: append(safe, ACE{SID: sidUsers, Mask: 0x00100000, Allow: true})}, nil},
		{"read control only", SecurityInfo{Owner: SIDSystem, Entries: append(safe, ACE{SID: sidUsers, Mask: 0x00020000, Allow: true})}, nil},
		{"null DACL", SecurityInfo{Owner: SIDSystem, NullDACL: true}, []string{"everyone (the file has no DACL)"}},
		{"users read", SecurityInfo{Owner: SIDAdministrators, Entries: append(safe, ACE{SID: sidUsers, Name: `BUILTIN\Users`, Mask: 0x001200A9, Allow: true})},
			[]string{`BUILTIN\Users S-1-5-32-545 (access 0x1200a9)`, "/remove:g *S-1-5-32-545"}},
		{"everyone generic read", SecurityInfo{Owner: SIDSystem, Entries: append(safe, ACE{SID: "S-1-1-0", Mask: 0x80000000, Allow: true})}, []string{"S-1-1-0 (access 0x80000000)"}},
		{"user write dac", SecurityInfo{Owner: SIDSystem, Entries: append(safe, ACE{SID: "S-1-5-21-1-2-3-1001", Mask: 0x00040000, Allow: true})}, []string{"S-1-5-21-1-2-3-1001"}},
		{"deny before allow still counts the allow", SecurityInfo{Owner: SIDSystem, Entries: append([]ACE{{SID: sidUsers, Mask: full}}, append(safe, ACE{SID: sidUsers, Mask: 1, Allow: true})...)}, []string{sidUsers}},
		{"user owner", SecurityInfo{Owner: "S-1-5-21-1-2-3-1001", OwnerName: `PC\alice`, Entries: safe}, []string{`its owner PC\alice S-1-5-21-1-2-3-1001`, "/setowner *S-1-5-32-544"}},
	} {
		err := CheckACL(`C:\ProgramData\Patchbay\agent.key`, tc.si)
		if tc.bad == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted, want refused", tc.name)
			continue
		}
		msg := err.Error()
		for _, want := range append(tc.bad, `C:\ProgramData\Patchbay\agent.key can be read or changed by others`, `icacls "C:\ProgramData\Patchbay\agent.key" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F`) {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not contain %q", tc.name, msg, want)
			}
		}
	}
	err := CheckACL(`C:\ProgramData\Patchbay`, SecurityInfo{Dir: true, Owner: SIDSystem, Entries: append(safe, ACE{SID: sidUsers, Mask: 1, Allow: true}, ACE{SID: sidUsers, Mask: 2, Allow: true})})
	if err == nil || !strings.Contains(err.Error(), "*S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F /remove:g *S-1-5-32-545") ||
		strings.Count(err.Error(), "*S-1-5-32-545") != 1 {
		t.Errorf("directory: %v", err)
	}
}

func TestCheckKeyMode(t *testing.T) {
	for mode, ok := range map[os.FileMode]bool{0o600: true, 0o400: true, 0o640: false, 0o604: false, 0o620: false, 0o644: false} {
		err := checkKeyMode("/var/lib/patchbay-agent/agent.key", mode)
		if (err == nil) != ok {
			t.Errorf("mode %04o: %v", mode, err)
		}
		if err != nil && !strings.Contains(err.Error(), "fix with: chmod 600 /var/lib/patchbay-agent/agent.key") {
			t.Errorf("mode %04o: %v lacks the fix", mode, err)
		}
	}
}

// Load refuses a key that others can read (real files; mode bits, so not on Windows).
func TestLoadRefusesExposedKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Log("on Windows the ACL is checked instead; see TestCheckACL")
		return
	}
	dir := t.TempDir()
	id, _ := issue(t, dir)
	if err := Save(id); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, KeyFile)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), key+" is readable or writable by group or others (mode 0644)") {
		t.Fatalf("Load with a 0644 key: %v", err)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatalf("Load after chmod 600: %v", err)
	}
}
