package identity

// The decision whether a Windows security descriptor keeps the data
// directory and its private key to SYSTEM and Administrators. Plain Go over
// a list of entries, so it is tested on every system; private_windows.go
// turns the real descriptor into this list.

import (
	"fmt"
	"io/fs"
	"strings"
)

// Well-known SIDs allowed to read the data directory on Windows.
const (
	SIDSystem         = "S-1-5-18"     // NT AUTHORITY\SYSTEM
	SIDAdministrators = "S-1-5-32-544" // BUILTIN\Administrators
)

// Placeholder SIDs that grant nothing on the object itself: they stand for
// the creator when an entry is inherited.
var placeholderSIDs = map[string]bool{
	"S-1-3-0": true, // CREATOR OWNER
	"S-1-3-1": true, // CREATOR GROUP
}

// Access mask bits that let their holder read the key or the directory, or
// change them, or grant themselves that (generic, standard and file rights).
const (
	accessReadData    = 0x0000_0001 // FILE_READ_DATA, FILE_LIST_DIRECTORY
	accessWriteData   = 0x0000_0002 // FILE_WRITE_DATA, FILE_ADD_FILE
	accessAppendData  = 0x0000_0004 // FILE_APPEND_DATA, FILE_ADD_SUBDIRECTORY
	accessDeleteChild = 0x0000_0040 // FILE_DELETE_CHILD
	accessWriteDAC    = 0x0004_0000 // WRITE_DAC
	accessWriteOwner  = 0x0008_0000 // WRITE_OWNER
	accessMaximum     = 0x0200_0000 // MAXIMUM_ALLOWED
	accessGenericAll  = 0x1000_0000 // GENERIC_ALL
	accessGenericWr   = 0x4000_0000 // GENERIC_WRITE
	accessGenericRead = 0x8000_0000 // GENERIC_READ

	exposingAccess = accessReadData | accessWriteData | accessAppendData | accessDeleteChild |
		accessWriteDAC | accessWriteOwner | accessMaximum | accessGenericAll | accessGenericWr | accessGenericRead
)

// ACE is one access control entry of a DACL.
type ACE struct {
	SID         string // "S-1-5-32-545"
	Name        string // the account's name for messages ("BUILTIN\Users"), if known
	Mask        uint32 // the access mask
	Allow       bool   // an allow entry; false: deny
	InheritOnly bool   // applies to children only, not to the object itself
}

// SecurityInfo is what CheckACL needs of a file's security descriptor.
type SecurityInfo struct {
	Dir       bool   // a directory: its fix grants inheritable access
	Owner     string // the owner's SID; the owner may always change the DACL
	OwnerName string
	NullDACL  bool // no DACL at all: everyone has full access
	Entries   []ACE
}

// CheckACL reports whether only SYSTEM and Administrators may read or
// change path: nil if so, otherwise an error naming path, the accounts that
// have access and the fix. Deny entries are not credited (an allow entry
// after them may still grant others access), so the check errs on the safe
// side.
func CheckACL(path string, si SecurityInfo) error {
	trusted := func(sid string) bool { return sid == SIDSystem || sid == SIDAdministrators }
	var who []string
	var remove []string
	switch {
	case si.NullDACL:
		who = append(who, "everyone (the file has no DACL)")
	default:
		for _, e := range si.Entries {
			if !e.Allow || e.InheritOnly || e.Mask&exposingAccess == 0 || trusted(e.SID) || placeholderSIDs[e.SID] {
				continue
			}
			who = append(who, fmt.Sprintf("%s (access %#x)", describeSID(e.SID, e.Name), e.Mask))
			remove = append(remove, "*"+e.SID)
		}
	}
	ownerBad := si.Owner != "" && !trusted(si.Owner)
	if ownerBad {
		who = append(who, "its owner "+describeSID(si.Owner, si.OwnerName))
	}
	if len(who) == 0 {
		return nil
	}
	inherit := ""
	if si.Dir {
		inherit = "(OI)(CI)"
	}
	fix := fmt.Sprintf(`icacls "%s" /inheritance:r /grant:r *%s:%sF *%s:%sF`, path, SIDSystem, inherit, SIDAdministrators, inherit)
	if len(remove) > 0 {
		fix += " /remove:g " + strings.Join(dedupe(remove), " ")
	}
	if ownerBad {
		fix += fmt.Sprintf(` and icacls "%s" /setowner *%s`, path, SIDAdministrators)
	}
	return fmt.Errorf("%s can be read or changed by others than SYSTEM and Administrators: %s; "+
		"the agent refuses to run with its private key exposed; fix from an elevated prompt with: %s (or enroll again with --force, which sets this ACL)",
		path, strings.Join(who, ", "), fix)
}

func describeSID(sid, name string) string {
	if name != "" {
		return name + " " + sid
	}
	return sid
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// checkKeyMode is the Unix rule: the private key is refused when its group
// or others have any access.
func checkKeyMode(path string, mode fs.FileMode) error {
	if mode.Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable or writable by group or others (mode %04o); the agent refuses to run with its private key exposed; fix with: chmod 600 %s",
			path, mode.Perm(), path)
	}
	return nil
}
