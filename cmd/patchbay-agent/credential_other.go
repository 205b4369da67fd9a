//go:build !unix && !windows

package main

import (
	"errors"

	"github.com/patchbay/patchbay/agent/sshd"
)

// credential: running sessions as another account is not supported here.
func (s *sessionFlags) credential() (*sshd.Credential, error) {
	if s.runAs == "" {
		return nil, nil
	}
	return nil, errors.New("--session-user is not supported on this platform: sessions run as the agent's own account")
}
