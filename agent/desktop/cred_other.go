//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package desktop

// Credential is the local user x11vnc runs as; x11vnc is not used on this
// system. Its fields are those of sshd.Credential, so a *sshd.Credential
// converts to a *Credential.
type Credential struct {
	Uid, Gid    uint32
	Groups      []uint32
	NoSetGroups bool
}
