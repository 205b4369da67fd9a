package sshd

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/patchbay/patchbay/internal/wire"
)

// revokedEntry is what the relay would send about f's certificate.
func (f *fixture) revokedEntry() wire.RevokedCert {
	cert := f.userSigner.PublicKey().(*ssh.Certificate)
	return wire.RevokedCert{Serial: cert.Serial, KeyID: cert.KeyId, ValidBefore: time.Unix(int64(cert.ValidBefore), 0)}
}

func TestRevokedCertificateRefused(t *testing.T) {
	f := newFixture(t)
	rv := NewRevocations(nil)
	entry := f.revokedEntry()
	if added, full := rv.Add([]wire.RevokedCert{entry}); added != 1 || full {
		t.Fatalf("Add: %d added, full %v", added, full)
	}
	cfg := f.config(wire.CapExec)
	cfg.Revocations = rv
	sv := f.serve(cfg)
	c, err := f.dial(sv, ssh.PublicKeys(f.userSigner))
	if err == nil {
		_ = c.Close()
		t.Fatal("a revoked certificate was accepted")
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("client error %v", err)
	}
	err = sv.wait(t, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`certificate "alice" (serial %d) is revoked`, entry.Serial)) {
		t.Errorf("Serve: %v, want the revoked certificate named", err)
	}
	// One log line names the serial and the key ID.
	logs := f.logs.String()
	if !strings.Contains(logs, fmt.Sprintf(`"serial":%d`, entry.Serial)) || !strings.Contains(logs, `"key_id":"alice"`) ||
		!strings.Contains(logs, `"revoked":true`) || !strings.Contains(logs, "ssh authentication refused") {
		t.Errorf("refusal not logged with serial and key ID:\n%s", logs)
	}

	// A new certificate for the same technician (another serial) is accepted.
	f.userSigner = f.certSigner(f.cas, testTech, time.Hour, time.Now())
	sv = f.serve(cfg)
	if out, err := f.session(f.client(sv)).Output("echo in"); err != nil || string(out) != "in\n" {
		t.Errorf("a certificate that is not revoked: %q %v", out, err)
	}
}

func TestRevocationEndsLiveSession(t *testing.T) {
	f := newFixture(t)
	rv := NewRevocations(nil)
	cfg := f.config(wire.CapExec)
	cfg.Revocations = rv
	sv := f.serve(cfg)
	s := f.session(f.client(sv))
	var stderr syncBuffer
	s.Stderr = &stderr
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := s.StdinPipe() // kept open: cat waits for input that never comes
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := s.Start("echo started; cat"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "started\n" {
		t.Fatalf("session did not start: %q %v", buf, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	// Another certificate's revocation does not touch this session.
	other := f.revokedEntry()
	other.Serial++
	rv.Add([]wire.RevokedCert{other})
	select {
	case <-sv.done:
		t.Fatal("revoking another certificate ended the session")
	case <-time.After(200 * time.Millisecond):
	}

	start := time.Now()
	rv.Add([]wire.RevokedCert{f.revokedEntry()})
	if code := exitCode(t, s.Wait()); code != 255 {
		t.Errorf("exit status %d, want 255", code)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the session ended %v after its certificate was revoked, want under a second", d)
	}
	if got := stderr.String(); !strings.Contains(got, "patchbay: session ended: the technician's access was revoked\r\n") {
		t.Errorf("stderr %q", got)
	}
	if err := sv.wait(t, 5*time.Second); !errors.Is(err, ErrRevoked) {
		t.Errorf("Serve: %v, want ErrRevoked", err)
	}
	if logs := f.logs.String(); !strings.Contains(logs, fmt.Sprintf(`"serial":%d`, f.revokedEntry().Serial)) ||
		!strings.Contains(logs, "its certificate was revoked by the relay") {
		t.Errorf("the end is not logged with the serial:\n%s", logs)
	}
	if n := len(rv.watchers); n != 0 {
		t.Errorf("%d watchers left after the session", n)
	}
}

func TestRevocationsExpireAndStayBounded(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rv := NewRevocations(func() time.Time { return now })
	in := func(d time.Duration) time.Time { return now.Add(d) }
	added, full := rv.Add([]wire.RevokedCert{
		{Serial: 1, KeyID: "a", ValidBefore: in(time.Hour)},
		{Serial: 2, KeyID: "a", ValidBefore: in(-time.Second)},  // already expired: not kept
		{Serial: 1, KeyID: "a", ValidBefore: in(2 * time.Hour)}, // again, later expiry wins
	})
	if added != 1 || full || rv.Len() != 1 {
		t.Fatalf("added %d, full %v, len %d", added, full, rv.Len())
	}
	if _, revoked, _ := rv.Revoked(2); revoked {
		t.Error("an expired entry is kept")
	}
	now = in(90 * time.Minute)
	if c, revoked, _ := rv.Revoked(1); !revoked || c.KeyID != "a" {
		t.Error("the later expiry was not kept")
	}
	now = in(time.Hour) // past 2 h
	if _, revoked, _ := rv.Revoked(1); revoked {
		t.Error("an entry outlived its certificate")
	}
	if rv.Len() != 0 {
		t.Errorf("%d entries kept after they expired", rv.Len())
	}

	// Full: one more than the bound drops it, and then every certificate is
	// refused until the dropped one would have expired.
	certs := make([]wire.RevokedCert, MaxRevocations+1)
	for i := range certs {
		certs[i] = wire.RevokedCert{Serial: uint64(i) + 10, KeyID: "a", ValidBefore: in(time.Hour)}
	}
	certs[MaxRevocations].ValidBefore = in(3 * time.Hour)
	if added, full := rv.Add(certs); added != MaxRevocations || !full {
		t.Fatalf("over the bound: added %d, full %v", added, full)
	}
	if _, revoked, full := rv.Revoked(5); !revoked || !full {
		t.Error("a full set does not refuse every certificate")
	}
	now = in(2 * time.Hour)
	if _, revoked, full := rv.Revoked(5); !revoked || !full || rv.Len() != 0 {
		t.Error("a full set stopped refusing before the dropped entry expired")
	}
	now = in(3 * time.Hour)
	if _, revoked, full := rv.Revoked(5); revoked || full {
		t.Error("a full set refuses after every dropped entry expired")
	}
}
