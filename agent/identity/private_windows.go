package identity

// Windows: the data directory and the private key are limited to SYSTEM and
// Administrators by a protected DACL (nothing inherited from the parent).
// This file only reads and writes descriptors; the decision is CheckACL
// (acl.go), tested on every system. Not run in CI (Linux).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/windows"
)

const fileAllAccess = 0x001F_01FF // FILE_ALL_ACCESS

// protectDir gives dir a protected DACL granting SYSTEM and Administrators
// full control, inherited by what is created in it, and makes
// Administrators its owner. Setting it propagates to existing files.
func protectDir(dir string) error {
	if !windows.GetCurrentProcessToken().IsElevated() {
		return fmt.Errorf("data directory %s: on Windows it is limited to SYSTEM and Administrators, so run this as LocalSystem (the service) or from an elevated prompt (Run as administrator)", dir)
	}
	return protect(dir, windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT)
}

// protectFile gives a file the same protected DACL.
func protectFile(path string) error { return protect(path, windows.NO_INHERITANCE) }

func protect(path string, inheritance uint32) error {
	system, err := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	if err != nil {
		return fmt.Errorf("protect %s: %w", path, err)
	}
	admins, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		return fmt.Errorf("protect %s: %w", path, err)
	}
	var pin runtime.Pinner
	pin.Pin(system)
	pin.Pin(admins)
	defer pin.Unpin()
	grant := func(sid *windows.SID) windows.EXPLICIT_ACCESS {
		return windows.EXPLICIT_ACCESS{
			AccessPermissions: fileAllAccess,
			AccessMode:        windows.GRANT_ACCESS,
			Inheritance:       inheritance,
			Trustee: windows.TRUSTEE{
				TrusteeForm:  windows.TRUSTEE_IS_SID,
				TrusteeType:  windows.TRUSTEE_IS_WELL_KNOWN_GROUP,
				TrusteeValue: windows.TrusteeValueFromSID(sid),
			},
		}
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{grant(system), grant(admins)}, nil)
	if err != nil {
		return fmt.Errorf("protect %s: %w", path, err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil); err != nil {
		return fmt.Errorf("protect %s: set its ACL: %w", path, err)
	}
	// The owner may always change the DACL. An elevated administrator may
	// give the ownership to Administrators; if that fails, the start-up
	// check names the owner and the fix.
	_ = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION, admins, nil, nil, nil)
	return nil
}

// checkPrivate refuses a data directory or private key that others than
// SYSTEM and Administrators may read or change.
func checkPrivate(dir string) error {
	for _, p := range []string{dir, filepath.Join(dir, KeyFile)} {
		st, err := os.Stat(p)
		if err != nil {
			continue // reading it reports the problem
		}
		si, err := securityInfo(p)
		if err != nil {
			return fmt.Errorf("load identity: read the ACL of %s: %w", p, err)
		}
		si.Dir = st.IsDir()
		if err := CheckACL(p, si); err != nil {
			return fmt.Errorf("load identity: %w", err)
		}
	}
	return nil
}

// securityInfo converts path's owner and DACL into the list CheckACL reads.
func securityInfo(path string) (SecurityInfo, error) {
	var si SecurityInfo
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return si, err
	}
	if owner, _, err := sd.Owner(); err == nil && owner != nil {
		si.Owner, si.OwnerName = owner.String(), accountName(owner)
	}
	dacl, _, err := sd.DACL()
	switch {
	case errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || (err == nil && dacl == nil):
		si.NullDACL = true
		return si, nil
	case err != nil:
		return si, err
	}
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return si, err
		}
		e := ACE{Mask: uint32(ace.Mask), InheritOnly: ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0}
		switch ace.Header.AceType {
		case windows.ACCESS_ALLOWED_ACE_TYPE, 9: // 9: ACCESS_ALLOWED_CALLBACK_ACE, the same layout
			e.Allow = true
		case windows.ACCESS_DENIED_ACE_TYPE, 10: // ACCESS_DENIED_CALLBACK_ACE
		default:
			// Object ACEs have another layout; count them as granting everything.
			si.Entries = append(si.Entries, ACE{SID: fmt.Sprintf("(ACE type %d)", ace.Header.AceType), Mask: 0xFFFF_FFFF, Allow: true})
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		e.SID, e.Name = sid.String(), accountName(sid)
		si.Entries = append(si.Entries, e)
	}
	return si, nil
}

func accountName(sid *windows.SID) string {
	account, domain, _, err := sid.LookupAccount("")
	switch {
	case err != nil:
		return ""
	case domain != "":
		return domain + `\` + account
	}
	return account
}
