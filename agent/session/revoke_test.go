package session

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/mux"
	"github.com/patchbay/patchbay/internal/wire"
)

// certFor certifies a new key for technician with the rig's user CA.
func (r *rig) certFor(technician string) (ssh.Signer, *ssh.Certificate) {
	r.t.Helper()
	signer, err := ssh.NewSignerFromKey(mustKey(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	cert, err := r.cas.SignUserCert(signer.PublicKey(), technician, time.Hour, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		r.t.Fatal(err)
	}
	return cs, cert
}

// dialWith runs an SSH client with signer on a stream the relay opens for id.
func (r *rig) dialWith(id string, signer ssh.Signer) (*ssh.Client, error) {
	r.t.Helper()
	st, err := r.relay.Open(context.Background(), wire.SSHStreamKind(id))
	if err != nil {
		return nil, err
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	c, chans, reqs, err := ssh.NewClientConn(st, "agent:22", &ssh.ClientConfig{
		User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: (&ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool {
			return string(k.Marshal()) == string(r.cas.Host.PublicKey().Marshal())
		}}).CheckHostKey,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	st.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

func (r *rig) nextEnd(id string) wire.SessionEnd {
	r.t.Helper()
	for {
		select {
		case e := <-r.ends:
			if e.SessionID == id {
				return e
			}
		case <-time.After(10 * time.Second):
			r.t.Fatalf("no session_end for %s", id)
		}
	}
}

func TestRelayRevocationEndsAndRefusesCertificates(t *testing.T) {
	r := newRig(t, 5*time.Second)
	signer, cert := r.certFor("alice")
	id := r.request("alice", wire.CapExec)
	r.nextAnswer()
	c, err := r.dialWith(id, signer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, _ := c.NewSession()
	var stderr strings.Builder
	s.Stderr = &stderr
	stdin, _ := s.StdinPipe()
	defer stdin.Close()
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	rev := wire.SSHRevoked{Certs: []wire.RevokedCert{{Serial: cert.Serial, KeyID: cert.KeyId, ValidBefore: time.Unix(int64(cert.ValidBefore), 0)}}}
	if err := r.relay.Send(wire.MsgSSHRevoked, "", rev); err != nil {
		t.Fatal(err)
	}
	var ee *ssh.ExitError
	if err := s.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 255 {
		t.Errorf("the session's command ended with %v, want exit status 255", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the session ended %v after the relay revoked its certificate", d)
	}
	if !strings.Contains(stderr.String(), "patchbay: session ended: the technician's access was revoked") {
		t.Errorf("stderr %q", stderr.String())
	}
	if e := r.nextEnd(id); e.By != "revoked" || e.Reason != "the technician's access was revoked" || e.Receipt == nil {
		t.Errorf("session_end %+v", e)
	}

	// The same certificate on a new, approved session: refused.
	id = r.request("alice", wire.CapExec)
	r.nextAnswer()
	if _, err := r.dialWith(id, signer); err == nil {
		t.Fatal("a revoked certificate was accepted on a new session")
	}
	if e := r.nextEnd(id); !strings.Contains(e.Reason, "is revoked") {
		t.Errorf("refused session ended with %+v", e)
	}
}

func TestMalformedRevocationClosesTheLink(t *testing.T) {
	m := New(Config{Log: zerolog.Nop()})
	defer m.Close()
	for _, body := range []string{`{"certs":[]}`, `{"certs":[{"serial":"1","key_id":"a b","valid_before":"2026-01-01T00:00:00Z"}]}`, `{"certs":[{"serial":1}]}`} {
		handled, err := m.Control(wire.Envelope{Type: wire.MsgSSHRevoked, Body: json.RawMessage(body)})
		var ce *mux.CloseError
		if !handled || !errors.As(err, &ce) {
			t.Errorf("%s: handled %v, err %v", body, handled, err)
		}
	}
}
