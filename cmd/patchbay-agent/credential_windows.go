package main

import "github.com/patchbay/patchbay/agent/sshd"

// credential resolves --session-user on Windows: only "console", the user
// logged in at the console (see windowsSessionUser); sshd looks that user
// up when each session starts.
func (s *sessionFlags) credential() (*sshd.Credential, error) {
	console, err := windowsSessionUser(s.runAs)
	if err != nil || !console {
		return nil, err
	}
	return &sshd.Credential{}, nil
}
