package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/patchbay/patchbay/internal/audit"
)

// AuditFilter selects audit records on the relay (GET /v1/audit). Empty
// fields do not filter.
type AuditFilter struct {
	Actor  string // the actor contains it, ignoring case
	Action string // exactly that action, or a prefix ending in "*"
	Agent  string // an agent ID, unique ID prefix or hostname, resolved by the relay
	Since  time.Time
	Until  time.Time
	Site   string // records about one site: an ID, unique ID prefix, "ORG/SITE" or unique name
}

// Empty reports whether f filters nothing.
func (f AuditFilter) Empty() bool {
	return f == AuditFilter{}
}

func (f AuditFilter) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"actor": f.Actor, "action": f.Action, "agent": f.Agent, "site": f.Site} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	return q
}

// AuditPage is one page of a filtered audit read.
type AuditPage struct {
	After  int64 // records after this seq
	Before int64 // records before this seq, when > 0
	Limit  int   // 1 to MaxAuditPage
	Newest bool  // newest first
}

// QueryAudit reads one page of the audit records f selects.
func (c *Client) QueryAudit(ctx context.Context, f AuditFilter, p AuditPage) ([]audit.Record, error) {
	if p.Limit < 1 || p.Limit > MaxAuditPage {
		return nil, fmt.Errorf("read audit log: limit %d: want 1 to %d", p.Limit, MaxAuditPage)
	}
	q := f.values()
	if p.After > 0 {
		q.Set("after", strconv.FormatInt(p.After, 10))
	}
	if p.Before > 0 {
		q.Set("before", strconv.FormatInt(p.Before, 10))
	}
	q.Set("limit", strconv.Itoa(p.Limit))
	if p.Newest {
		q.Set("order", "desc")
	}
	recs := []audit.Record{}
	if err := c.do(ctx, http.MethodGet, "/v1/audit", q, nil, &recs); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	return recs, nil
}

// EachAudit calls fn with every record f selects after seq after, oldest
// first, reading MaxAuditPage records at a time, up to the head as it was
// when EachAudit began: an export is a snapshot, however busy the relay.
// A caller who reaches only some sites may not read the head (only who reads
// every record can verify the chain): the newest record they see bounds
// their snapshot instead. It returns how many records it passed to fn.
func (c *Client) EachAudit(ctx context.Context, f AuditFilter, after int64, fn func(audit.Record) error) (int64, error) {
	head, err := c.AuditHead(ctx)
	if IsStatus(err, http.StatusForbidden) {
		head.Seq, err = c.newestVisibleAudit(ctx, f)
	}
	if err != nil {
		return 0, err
	}
	var n int64
	for after < head.Seq {
		page, err := c.QueryAudit(ctx, f, AuditPage{After: after, Before: head.Seq + 1, Limit: MaxAuditPage})
		if err != nil {
			return n, err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return n, err
			}
			n++
		}
		if len(page) < MaxAuditPage {
			break
		}
		after = page[len(page)-1].Seq
	}
	return n, nil
}

// newestVisibleAudit returns the sequence number of the newest record f
// selects among those the caller may read, or 0 when there is none.
func (c *Client) newestVisibleAudit(ctx context.Context, f AuditFilter) (int64, error) {
	page, err := c.QueryAudit(ctx, f, AuditPage{Limit: 1, Newest: true})
	if err != nil || len(page) == 0 {
		return 0, err
	}
	return page[0].Seq, nil
}
