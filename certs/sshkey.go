package certs

import "golang.org/x/crypto/ssh"

// UserCAKey is the public key of the SSH user CA, which agents pin and
// trust for technicians' certificates.
func (c *SSHCAs) UserCAKey() ssh.PublicKey { return c.User.PublicKey() }
