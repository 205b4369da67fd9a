//go:build js && wasm

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// dial authenticates to the agent over the session's websocket with the
// page's key and the relay's certificate of it, checking the agent's host
// certificate against the relay's host CA. It returns the client, or nil
// and why not.
func (s *session) dial(signer ssh.Signer) (*ssh.Client, string) {
	certLine := s.opts.Get("certificate").String()
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certLine))
	if err != nil {
		return nil, "the relay's certificate: " + err.Error()
	}
	cert, ok := pk.(*ssh.Certificate)
	if !ok || !bytes.Equal(cert.Key.Marshal(), signer.PublicKey().Marshal()) {
		return nil, "the relay certified another key than this page's"
	}
	certSigner, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return nil, err.Error()
	}
	hostCA, err := certAuthority(s.opts.Get("knownHosts").String())
	if err != nil {
		return nil, err.Error()
	}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool { return bytes.Equal(auth.Marshal(), hostCA.Marshal()) },
		HostKeyFallback: func(hostname string, _ net.Addr, key ssh.PublicKey) error {
			return fmt.Errorf("agent %s presented a plain host key (%s), not a certificate from the relay's host CA: refused",
				strings.TrimSuffix(hostname, ":22"), ssh.FingerprintSHA256(key))
		},
	}
	agentID := s.opts.Get("agentID").String()
	sc, chans, reqs, err := ssh.NewClientConn(s.conn, agentID+":22", &ssh.ClientConfig{
		User: cert.KeyId, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: checker.CheckHostKey, Timeout: 30 * time.Second,
	})
	if err != nil {
		return nil, s.why("SSH: " + err.Error())
	}
	return ssh.NewClient(sc, chans, reqs), ""
}

// why is the reason the websocket closed, if it has, else msg: the relay's
// reason (the user ended it, a limit) says more than the SSH error it caused.
func (s *session) why(msg string) string {
	if r := s.conn.reason(); r != "" {
		return r
	}
	return msg
}

// certAuthority returns the key of the @cert-authority line.
func certAuthority(knownHosts string) (ssh.PublicKey, error) {
	b := []byte(knownHosts)
	for len(b) > 0 {
		marker, _, pub, _, rest, err := ssh.ParseKnownHosts(b)
		if err != nil {
			break
		}
		if marker == "cert-authority" {
			return pub, nil
		}
		b = rest
	}
	return nil, errors.New("the relay sent no host CA (@cert-authority line): cannot check the agent's host certificate")
}
