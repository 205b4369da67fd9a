package client

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/patchbay/patchbay/internal/apiv1"
	"github.com/patchbay/patchbay/internal/audit"
)

// AuditVerification is the outcome of a successful VerifyAudit.
type AuditVerification struct {
	Records int64           // records verified
	Head    apiv1.AuditHead // the relay's stored head, which the chain ends at
}

// VerifyAudit downloads the whole audit log, MaxAuditPage records at a time,
// and checks the hash chain here with an audit.Verifier, so the result does
// not rest on the relay's own claim. It then compares the chain's end with
// GET /v1/audit/head (audit.Verifier.Finish), which detects records removed
// from the tail.
//
// Records appended while the log is being read are handled: after reading
// the head, any records up to the head that arrived since the last page are
// fetched and verified too; records beyond the head are left for next time.
//
// Consent receipts are checked too (see receiptChecker): a record carrying
// one must be signed by an agent whose certificate chains to the CA pinned
// at login, and session.approved / session.denied records must carry one.
//
// each, if not nil, is called with every record after it has verified; an
// error from it stops the walk and is returned as is (return an
// *audit.ChainError to report a broken chain, e.g. an anchor mismatch).
//
// A broken chain is returned as an error wrapping *audit.ChainError
// (errors.As), naming the first bad record. A caller who reaches only some
// sites reads only their records, so cannot verify the chain: that is
// refused before the download.
func (c *Client) VerifyAudit(ctx context.Context, each func(audit.Record) error, opts ...AuditOption) (AuditVerification, error) {
	ca, err := c.cfg.caCert()
	if err != nil {
		return AuditVerification{}, fmt.Errorf("verify audit log: %w", err)
	}
	// Who reaches only some sites reads only their records: the chain
	// would look broken at the first record they may not read.
	who, err := c.Whoami(ctx)
	if err != nil {
		return AuditVerification{}, fmt.Errorf("verify audit log: %w", err)
	}
	if len(who.Sites) > 0 && !slices.Equal(who.Sites, []string{apiv1.AllSitesName}) {
		return AuditVerification{}, fmt.Errorf("verify audit log: %s reaches only some sites (%s), and verifying the chain needs every record: ask someone who reaches every site, such as an admin, to run patchbay audit verify",
			who.Name, strings.Join(who.Sites, ", "))
	}
	receipts := newReceiptChecker(ca)
	for _, o := range opts {
		o(receipts)
	}
	var v audit.Verifier
	var last int64
	// add verifies one page in order. With stopAt >= 0 it ignores records
	// beyond stopAt and reports done when it meets one.
	add := func(recs []audit.Record, stopAt int64) (done bool, err error) {
		for _, r := range recs {
			if stopAt >= 0 && r.Seq > stopAt {
				return true, nil
			}
			if err := v.Add(r); err != nil {
				return true, err
			}
			if err := receipts.check(r); err != nil {
				return true, err
			}
			last = r.Seq
			if each != nil {
				if err := each(r); err != nil {
					return true, err
				}
			}
		}
		return false, nil
	}

	// Read every page until an empty one. A short page is not taken as the
	// end: a relay may serve fewer records than asked for.
	for {
		recs, err := c.auditPage(ctx, last, MaxAuditPage)
		if err != nil {
			return AuditVerification{}, fmt.Errorf("verify audit log: read records after %d: %w", last, err)
		}
		if len(recs) == 0 {
			break
		}
		if _, err := add(recs, -1); err != nil {
			return AuditVerification{}, fmt.Errorf("verify audit log: %w", err)
		}
	}

	head, err := c.AuditHead(ctx)
	if err != nil {
		return AuditVerification{}, fmt.Errorf("verify audit log: %w", err)
	}
	// Catch up with records appended between the last page and the head.
	for last < head.Seq {
		recs, err := c.auditPage(ctx, last, MaxAuditPage)
		if err != nil {
			return AuditVerification{}, fmt.Errorf("verify audit log: read records after %d: %w", last, err)
		}
		if len(recs) == 0 {
			break // Finish reports the missing tail
		}
		done, err := add(recs, head.Seq)
		if err != nil {
			return AuditVerification{}, fmt.Errorf("verify audit log: %w", err)
		}
		if done {
			break
		}
	}
	if err := v.Finish(head.Seq, head.Hash); err != nil {
		return AuditVerification{}, fmt.Errorf("verify audit log: %w", err)
	}
	return AuditVerification{Records: v.Count(), Head: head}, nil
}
