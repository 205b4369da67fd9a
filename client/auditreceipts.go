package client

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/patchbay/patchbay/internal/audit"
	"github.com/patchbay/patchbay/internal/receipt"
)

// receiptChecker checks the consent receipts in audit records (package
// internal/receipt) against the relay CA pinned at login, so that a relay,
// or whoever can write its database, cannot present a consent the endpoint
// never gave, even with a recomputed hash chain:
//
//   - any record carrying a receipt, whatever its action, must verify: the
//     agent's certificate chains to the pinned CA, names the receipt's
//     agent, and its key signed the receipt;
//   - session.approved and session.denied records must carry one, for the
//     record's session (its target) and with the record's decision; a
//     session.end record that carries one must be that session's end;
//   - one receipt backs one record: a receipt copied into a second record
//     is refused.
type receiptChecker struct {
	roots          *x509.CertPool
	unsignedBefore int64                       // session decisions before this record may lack a receipt
	seen           map[[sha256.Size]byte]int64 // receipt hash -> the record that used it
}

// AuditOption changes what VerifyAudit accepts.
type AuditOption func(*receiptChecker)

// UnsignedBefore accepts session.approved and session.denied records
// without a consent receipt before record seq: a log begun by a relay that
// predates consent receipts. Receipts that are present are still checked.
func UnsignedBefore(seq int64) AuditOption {
	return func(rc *receiptChecker) { rc.unsignedBefore = seq }
}

func newReceiptChecker(ca *x509.Certificate) *receiptChecker {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &receiptChecker{roots: pool, seen: map[[sha256.Size]byte]int64{}}
}

// sessionDecision maps the session actions that stand for a receipt to the
// decision the receipt must carry; required says whether the record must
// carry one.
var sessionDecision = map[string]struct {
	decision string
	required bool
}{
	"session.approved": {receipt.Approved, true},
	"session.denied":   {receipt.Denied, true},
	"session.end":      {receipt.Ended, false},
}

// check returns nil or a *audit.ChainError naming r.
func (rc *receiptChecker) check(r audit.Record) error {
	fail := func(format string, args ...any) error {
		return &audit.ChainError{Seq: r.Seq, Reason: "consent receipt: " + fmt.Sprintf(format, args...)}
	}
	s, ok, err := receipt.FromDetail(r.Detail)
	want, isSession := sessionDecision[r.Action]
	switch {
	case err != nil:
		return fail("%s", strings.TrimPrefix(err.Error(), "receipt: "))
	case !ok && isSession && want.required && r.Seq >= rc.unsignedBefore:
		return fail("%s record without a receipt signed by the agent", r.Action)
	case !ok:
		return nil
	}
	got, err := s.Check(rc.roots, "")
	if err != nil {
		return fail("%s", strings.TrimPrefix(err.Error(), "receipt: "))
	}
	if isSession {
		if err := matchSession(r, got, want.decision); err != "" {
			return fail("%s", err)
		}
	}
	sum := sha256.Sum256(s.Receipt)
	if first, dup := rc.seen[sum]; dup {
		return fail("the same receipt already backs record %d", first)
	}
	rc.seen[sum] = r.Seq
	return nil
}

// matchSession says how a session record and its receipt disagree ("" when
// they agree).
func matchSession(r audit.Record, got receipt.Receipt, decision string) string {
	fail := fmt.Sprintf
	switch {
	case got.Kind != receipt.KindSession:
		return fail("a %q receipt on a %s record", got.Kind, r.Action)
	case got.ID != r.Target:
		return fail("the receipt is for session %s, the record for %s", got.ID, r.Target)
	case got.Decision != decision:
		return fail("the receipt says %s, the record %s", got.Decision, r.Action)
	case !strings.HasPrefix(r.Actor, "agent "+got.AgentID):
		return fail("the receipt is from agent %s, the record names %q", got.AgentID, r.Actor)
	case got.Decision == receipt.Approved && r.Detail["capabilities"] != fmt.Sprint(got.Capabilities):
		return fail("the receipt approves %v, the record says %s", got.Capabilities, r.Detail["capabilities"])
	}
	return ""
}
