// Package receipt makes consent decisions evidence: the endpoint agent signs
// each decision the person at the machine (or its policy) made with its own
// key, the relay checks the signature before it acts on the decision and
// keeps the signed receipt in its audit log, and `patchbay audit verify`
// checks it again on the auditor's machine. A relay, or anyone who can write
// to its database, cannot invent a consent the endpoint never gave: it does
// not hold the agent's private key.
//
// # What a receipt says
//
// A Receipt names what was decided (Kind "session" for an interactive
// session, "fix" for a run of a plugin or script that needs consent), the
// session or run ID (and the job ID of a run), the agent, the technician,
// what was asked (session capabilities, or the fix's name), the decision
// ("approved", "denied" or "ended"), who decided (a local user name, or
// "policy", "timeout", "no-user", "user", "technician", ...), a message and
// the time. A timeout is Decision "denied" with By "timeout".
//
// # Encoding and signature
//
// Encode gives the canonical bytes: compact JSON with the fields in a fixed
// order, times in UTC with microseconds (RFC 3339), and a "v" field first
// naming the format (patchbay-receipt-v1). Decode accepts exactly those
// bytes and nothing else: unknown fields, another field order, extra
// whitespace or a non-UTC time are refused, so one receipt has one encoding.
// Receipts are at most MaxSize bytes.
//
// Sign signs SHA-256(Encode(r)) with the agent's key (ECDSA P-256 gives an
// ASN.1 signature; an Ed25519 key signs the bytes themselves). Verify checks
// a signature against a public key and decodes the receipt.
//
// # How to use it
//
// On the agent:
//
//	s := receipt.NewSigner(identity.Cert)      // the agent's tls.Certificate
//	signed, err := s.Sign(receipt.Receipt{Kind: receipt.KindFix, ID: runID, JobID: jobID, ...})
//	// send signed (a Signed: receipt bytes, signature, the agent's certificate) on the wire
//
// On the relay, before acting on the decision:
//
//	r, err := signed.Check(roots, agentID)    // roots: the relay CA; agentID: the link's verified ID
//	// compare r with what was asked (ID, kind, decision), then
//	receipt.AddToDetail(detail, signed)        // into the audit record's detail
//
// `patchbay audit verify` runs FromDetail on every audit record; any record
// that carries a receipt, whatever its action, must verify against the
// relay CA pinned at login, with the certificate's subject equal to the
// receipt's agent ID. session.approved and session.denied records must carry
// one.
package receipt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Version names the encoding; it is the first field of every receipt.
const Version = "patchbay-receipt-v1"

// Kinds of decision.
const (
	KindSession = "session" // an interactive session
	KindFix     = "fix"     // a run of a plugin or script whose manifest needs consent
)

// Decisions.
const (
	Approved = "approved"
	Denied   = "denied" // also a timeout (By "timeout") or nobody there (By "no-user")
	Ended    = "ended"  // a live session ended; By says who ended it
)

// Limits.
const (
	MaxSize      = 4096 // encoded receipt
	MaxSignature = 256  // an ECDSA P-256 ASN.1 signature is at most 72 bytes
	MaxCert      = 4096 // the agent's certificate, DER
	maxText      = 500  // reason, message
	maxName      = 128  // technician, by, fix
	maxCaps      = 16
	maxCapLen    = 32
)

// Receipt is one consent decision, as the agent signs it.
type Receipt struct {
	Kind         string    // KindSession or KindFix
	ID           string    // the session ID or the run ID (a UUID)
	JobID        string    // the run's job (a UUID); "" for sessions
	AgentID      string    // the agent that decided (a UUID; its certificate's subject)
	Technician   string    // who asked ("" for a fix nobody asked for in person)
	Reason       string    // the technician's reason, as shown to the user
	Capabilities []string  // a session's capabilities (requested, or approved)
	Fix          string    // a fix's name, e.g. "script clear-browser-cache 1.2"
	Decision     string    // Approved, Denied or Ended
	By           string    // who decided or ended it
	Message      string    // what the user or policy said, or why it ended
	Time         time.Time // when; encoded in UTC with microseconds
}

// encoded is the canonical JSON layout; field order is the encoding's.
type encoded struct {
	V            string   `json:"v"`
	Kind         string   `json:"kind"`
	ID           string   `json:"id"`
	JobID        string   `json:"job_id"`
	AgentID      string   `json:"agent_id"`
	Technician   string   `json:"technician"`
	Reason       string   `json:"reason"`
	Capabilities []string `json:"capabilities"`
	Fix          string   `json:"fix"`
	Decision     string   `json:"decision"`
	By           string   `json:"by"`
	Message      string   `json:"message"`
	Time         string   `json:"time"`
}

const timeLayout = "2006-01-02T15:04:05.000000Z"

// Validate checks every field: the kind and decision are known, IDs are
// UUIDs, texts are printable UTF-8 within their limits.
func (r *Receipt) Validate() error {
	switch r.Kind {
	case KindSession:
		if r.JobID != "" {
			return errors.New("receipt: a session receipt has no job ID")
		}
		if r.Technician == "" {
			return errors.New("receipt: a session receipt names the technician")
		}
	case KindFix:
		if r.JobID != "" && !validUUID(r.JobID) {
			return fmt.Errorf("receipt: job ID %q is not a UUID", r.JobID)
		}
		if r.Fix == "" {
			return errors.New("receipt: a fix receipt names the fix")
		}
	default:
		return fmt.Errorf("receipt: kind %q: want %s or %s", r.Kind, KindSession, KindFix)
	}
	if !validUUID(r.ID) {
		return fmt.Errorf("receipt: ID %q is not a UUID", r.ID)
	}
	if !validUUID(r.AgentID) {
		return fmt.Errorf("receipt: agent ID %q is not a UUID", r.AgentID)
	}
	switch r.Decision {
	case Approved, Denied, Ended:
	default:
		return fmt.Errorf("receipt: decision %q: want %s, %s or %s", r.Decision, Approved, Denied, Ended)
	}
	if r.By == "" {
		return errors.New("receipt: says nobody decided (by is empty)")
	}
	for _, f := range []struct {
		what, s string
		max     int
	}{
		{"technician", r.Technician, maxName}, {"reason", r.Reason, maxText}, {"fix", r.Fix, maxName},
		{"by", r.By, maxName}, {"message", r.Message, maxText},
	} {
		if err := checkText(f.what, f.s, f.max); err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
	}
	if len(r.Capabilities) > maxCaps {
		return fmt.Errorf("receipt: %d capabilities (limit %d)", len(r.Capabilities), maxCaps)
	}
	for _, c := range r.Capabilities {
		if c == "" {
			return errors.New("receipt: empty capability")
		}
		if err := checkText("capability", c, maxCapLen); err != nil {
			return fmt.Errorf("receipt: %w", err)
		}
	}
	if r.Time.IsZero() {
		return errors.New("receipt: no time")
	}
	if y := r.Time.UTC().Year(); y < 2000 || y > 9999 {
		return fmt.Errorf("receipt: time %s out of range", r.Time.UTC().Format(time.RFC3339))
	}
	return nil
}

// Encode returns r's canonical bytes (r.Time in UTC, truncated to
// microseconds). It fails if r does not validate or is too large.
func Encode(r Receipt) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	caps := r.Capabilities
	if caps == nil {
		caps = []string{}
	}
	b, err := json.Marshal(encoded{
		V: Version, Kind: r.Kind, ID: r.ID, JobID: r.JobID, AgentID: r.AgentID, Technician: r.Technician,
		Reason: r.Reason, Capabilities: caps, Fix: r.Fix, Decision: r.Decision, By: r.By, Message: r.Message,
		Time: r.Time.UTC().Format(timeLayout),
	})
	if err != nil {
		return nil, fmt.Errorf("receipt: encode: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("receipt: %d bytes encoded (limit %d)", len(b), MaxSize)
	}
	return b, nil
}

// Decode parses canonical receipt bytes. Anything that is not exactly what
// Encode produces is refused with an error saying why.
func Decode(b []byte) (Receipt, error) {
	if len(b) > MaxSize {
		return Receipt{}, fmt.Errorf("receipt: %d bytes (limit %d)", len(b), MaxSize)
	}
	var e encoded
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Receipt{}, fmt.Errorf("receipt: decode: %w", err)
	}
	if dec.More() {
		return Receipt{}, errors.New("receipt: decode: trailing data")
	}
	if e.V != Version {
		return Receipt{}, fmt.Errorf("receipt: version %q: want %s", e.V, Version)
	}
	t, err := time.Parse(timeLayout, e.Time)
	if err != nil {
		return Receipt{}, fmt.Errorf("receipt: time %q: want %s", e.Time, timeLayout)
	}
	r := Receipt{Kind: e.Kind, ID: e.ID, JobID: e.JobID, AgentID: e.AgentID, Technician: e.Technician, Reason: e.Reason,
		Capabilities: e.Capabilities, Fix: e.Fix, Decision: e.Decision, By: e.By, Message: e.Message, Time: t}
	canon, err := Encode(r)
	if err != nil {
		return Receipt{}, err
	}
	if !bytes.Equal(canon, b) {
		return Receipt{}, errors.New("receipt: not in canonical form")
	}
	if len(r.Capabilities) == 0 {
		r.Capabilities = nil
	}
	return r, nil
}

// Sign encodes r and signs it with key. It returns the canonical bytes and
// the signature.
func Sign(key crypto.Signer, r Receipt) (data, sig []byte, err error) {
	if key == nil {
		return nil, nil, errors.New("receipt: sign: no key")
	}
	data, err = Encode(r)
	if err != nil {
		return nil, nil, err
	}
	switch key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, data, crypto.Hash(0))
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(data)
		sig, err = key.Sign(rand.Reader, sum[:], crypto.SHA256)
	default:
		return nil, nil, fmt.Errorf("receipt: sign: unsupported key type %T (want ECDSA or Ed25519)", key.Public())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("receipt: sign: %w", err)
	}
	return data, sig, nil
}

// Verify checks sig over data with pub and returns the decoded receipt.
func Verify(pub crypto.PublicKey, data, sig []byte) (Receipt, error) {
	if len(sig) == 0 || len(sig) > MaxSignature {
		return Receipt{}, fmt.Errorf("receipt: signature of %d bytes (want 1..%d)", len(sig), MaxSignature)
	}
	r, err := Decode(data)
	if err != nil {
		return Receipt{}, err
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(data)
		if !ecdsa.VerifyASN1(k, sum[:], sig) {
			return Receipt{}, errors.New("receipt: bad signature")
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize || !ed25519.Verify(k, data, sig) {
			return Receipt{}, errors.New("receipt: bad signature")
		}
	default:
		return Receipt{}, fmt.Errorf("receipt: verify: unsupported key type %T", pub)
	}
	return r, nil
}

// validUUID accepts the lower-case canonical form (as wire.ValidUUID).
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// checkText accepts printable UTF-8 of at most max bytes (tabs allowed, no
// other control characters), as internal/wire does for prompt texts.
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s of %d bytes (limit %d)", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%s contains control character %U", what, r)
		}
	}
	return nil
}
