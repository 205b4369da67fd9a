//go:build unix

package main

import (
	"fmt"
	"os/user"
	"strconv"

	"github.com/patchbay/patchbay/agent/sshd"
)

// credential resolves --session-user to the account sessions run as, with
// its supplementary groups.
func (s *sessionFlags) credential() (*sshd.Credential, error) {
	if s.runAs == "" {
		return nil, nil
	}
	u, err := user.Lookup(s.runAs)
	if err != nil {
		return nil, fmt.Errorf("--session-user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("--session-user %s: no numeric user and group ID", s.runAs)
	}
	c := &sshd.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				c.Groups = append(c.Groups, uint32(n))
			}
		}
	}
	return c, nil
}
