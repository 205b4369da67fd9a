package wire

import (
	"fmt"
	"time"
)

// MsgSSHRevoked (relay -> agent, SSHRevoked) names technicians' SSH user
// certificates that must no longer be accepted: their API token was revoked
// (or, later, their user disabled). The relay sends it to every connected
// agent when certificates are revoked, and the whole list of revoked,
// unexpired certificates right after the welcome of every link, so an agent
// that was offline learns it when it reconnects. A list longer than
// MaxRevokedCerts travels as several messages. The agent refuses these
// serials at authentication, ends live SSH connections that authenticated
// with one, and forgets each entry after its ValidBefore (the certificate
// is refused as expired from then on anyway).
const MsgSSHRevoked = "ssh_revoked"

// MaxRevokedCerts bounds the certificates of one ssh_revoked message: at
// most about 160 bytes each, a full message stays well below MaxControl.
const MaxRevokedCerts = 4096

// SSHRevoked lists revoked SSH user certificates.
type SSHRevoked struct {
	Certs []RevokedCert `json:"certs"`
}

// RevokedCert is one revoked SSH user certificate.
type RevokedCert struct {
	// Serial is the certificate's serial number, as a decimal string: it is
	// a random uint64, which a JSON number would not carry exactly in every
	// language.
	Serial uint64 `json:"serial,string"`
	// KeyID is the certificate's key ID (the technician), for log lines.
	KeyID string `json:"key_id"`
	// ValidBefore is when the certificate expires: the agent forgets the
	// entry then.
	ValidBefore time.Time `json:"valid_before"`
}

// Validate checks every field: at most MaxRevokedCerts certificates, each
// naming a technician and an expiry.
func (m *SSHRevoked) Validate() error {
	if len(m.Certs) == 0 {
		return fmt.Errorf("no certificates")
	}
	if len(m.Certs) > MaxRevokedCerts {
		return fmt.Errorf("%d certificates, at most %d in one message", len(m.Certs), MaxRevokedCerts)
	}
	for i, c := range m.Certs {
		if !ValidTechnician(c.KeyID) {
			return fmt.Errorf("certificate %d (serial %d): key_id %q: want 1-64 of [A-Za-z0-9_.@-]", i, c.Serial, c.KeyID)
		}
		if y := c.ValidBefore.Year(); y < 2000 || y > 9999 {
			return fmt.Errorf("certificate %d (serial %d): valid_before %v out of range", i, c.Serial, c.ValidBefore)
		}
	}
	return nil
}

// SplitRevoked cuts certs into messages of at most MaxRevokedCerts.
func SplitRevoked(certs []RevokedCert) []SSHRevoked {
	var out []SSHRevoked
	for len(certs) > 0 {
		n := min(len(certs), MaxRevokedCerts)
		out = append(out, SSHRevoked{Certs: certs[:n:n]})
		certs = certs[n:]
	}
	return out
}
