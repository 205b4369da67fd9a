package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/internal/audit"
	"github.com/spf13/cobra"
)

func (a *app) auditCmd() *cobra.Command {
	return group("audit", "Read and verify the tamper-evident audit log",
		`Everything a person does through the relay is recorded in an append-only
audit log in which each record carries the hash of the one before. "audit
list" shows records, filtered by the relay; "audit export" writes every
matching record as CSV or JSON lines; "audit verify" checks the whole chain on
this machine.

Who reaches only some sites reads only the records about those sites, and so
cannot verify the chain (it needs every record): audit verify is for those
who reach every site, such as admins.`,
		`  patchbay audit list
  patchbay audit list --actor alice --action 'session.*' --since 7d
  patchbay audit list --site acme/paris
  patchbay audit list --after 1200 --limit 100 -o json
  patchbay audit export --since 30d -o csv > audit.csv
  patchbay audit verify`,
		a.auditListCmd(), a.auditExportCmd(), a.auditVerifyCmd())
}

// defaultAuditLimit is how many records audit list shows by default.
const defaultAuditLimit = 50

func (a *app) auditListCmd() *cobra.Command {
	var after int64
	var limit int
	var output outputFlag
	var filters auditFilterFlags
	cmd := &cobra.Command{
		Use:     "list [filters] [--after SEQ] [--limit N] [-o table|json]",
		Aliases: []string{"ls"},
		Short:   "Show audit records",
		Long: `Show audit records in order of their sequence number (viewer role).

Without --after, the newest --limit matching records are shown; with --after
SEQ, the first --limit matching records after SEQ (--after 0 starts at the
beginning), so a script can follow the log by passing the last SEQ it saw.

The table shows SEQ, TIME (UTC), ACTOR, ACTION, TARGET and DETAIL (k=v pairs).
-o json prints the records as the relay serves them, hashes included.

` + auditFilterHelp,
		Example: `  patchbay audit list
  patchbay audit list --limit 200
  patchbay audit list --agent pc-042 --since 24h
  patchbay audit list --site acme/paris --action 'agent.*'
  patchbay audit list --actor alice --action session.approved -o json
  patchbay audit list --after 0 --limit 1000 -o json > audit-1.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usageErrorf(cmd, "--limit %d: want 1 or more", limit)
			}
			if after < 0 {
				return usageErrorf(cmd, "--after %d: want 0 or more", after)
			}
			f, err := filters.filter(cmd, a.now())
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				var recs []audit.Record
				var err error
				switch {
				case !f.Empty() && !cmd.Flags().Changed("after"):
					recs, err = newestAudit(ctx, c, f, limit)
				case !f.Empty():
					recs, err = auditAfter(ctx, c, f, after, limit)
				default:
					recs, err = unfilteredAudit(ctx, c, cmd.Flags().Changed("after"), after, limit)
				}
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, recs)
				}
				if len(recs) == 0 {
					fmt.Fprintln(a.stderr, "No audit records.")
					return nil
				}
				return writeAuditTable(a.stdout, recs)
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&after, "after", 0, "show records after this sequence number (default: the newest --limit records)")
	f.IntVar(&limit, "limit", defaultAuditLimit, "how many records to show")
	filters.add(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}

// newestAudit returns the newest limit records f selects, oldest first.
func newestAudit(ctx context.Context, c *client.Client, f client.AuditFilter, limit int) ([]audit.Record, error) {
	recs := []audit.Record{}
	var before int64
	for len(recs) < limit {
		page, err := c.QueryAudit(ctx, f, client.AuditPage{Before: before, Limit: min(client.MaxAuditPage, limit-len(recs)), Newest: true})
		if err != nil {
			return nil, err
		}
		recs = append(recs, page...)
		if len(page) == 0 || page[len(page)-1].Seq <= 1 {
			break
		}
		before = page[len(page)-1].Seq
	}
	slices.Reverse(recs)
	return recs, nil
}

// auditAfter returns the first limit records f selects after seq after.
func auditAfter(ctx context.Context, c *client.Client, f client.AuditFilter, after int64, limit int) ([]audit.Record, error) {
	recs := []audit.Record{}
	for len(recs) < limit {
		page, err := c.QueryAudit(ctx, f, client.AuditPage{After: after, Limit: min(client.MaxAuditPage, limit-len(recs))})
		if err != nil {
			return nil, err
		}
		if len(page) == 0 || page[len(page)-1].Seq <= after {
			break
		}
		recs = append(recs, page...)
		after = page[len(page)-1].Seq
	}
	return recs, nil
}

// unfilteredAudit returns the first limit records after seq after, or,
// when hasAfter is false, the newest limit records (found from the head;
// who reaches only some sites may not read it, and pages back instead).
func unfilteredAudit(ctx context.Context, c *client.Client, hasAfter bool, after int64, limit int) ([]audit.Record, error) {
	if !hasAfter {
		head, err := c.AuditHead(ctx)
		if client.IsStatus(err, http.StatusForbidden) {
			return newestAudit(ctx, c, client.AuditFilter{}, limit)
		}
		if err != nil {
			return nil, err
		}
		after = max(0, head.Seq-int64(limit))
	}
	return auditAfter(ctx, c, client.AuditFilter{}, after, limit)
}

// writeAuditTable writes audit records as a table.
func writeAuditTable(w io.Writer, recs []audit.Record) error {
	t := newTable(w, "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "DETAIL")
	for _, r := range recs {
		t.row(strconv.FormatInt(r.Seq, 10), fmtTime(r.Time), r.Actor, r.Action, r.Target, fmtDetail(r.Detail))
	}
	return t.flush()
}

// anchor is a record's sequence number and (a prefix of) its hash, kept
// outside the relay by whoever verified the log before.
type anchor struct {
	seq  int64
	hash string // lower-case hex prefix, at least 16 digits
	seen bool
}

// parseAnchor parses SEQ:HASH.
func parseAnchor(s string) (*anchor, error) {
	seqStr, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseInt(seqStr, 10, 64)
	if !ok || err != nil || seq < 1 {
		return nil, fmt.Errorf("anchor %q: want SEQ:HASH, e.g. 1500:3f1c9a0b7d2e4c5a", s)
	}
	hash = strings.ToLower(hash)
	if len(hash) < 16 || len(hash) > 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("anchor %q: the hash must be 16 to 64 hex digits", s)
	}
	return &anchor{seq: seq, hash: hash}, nil
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var anchorFlags []string
	var unsignedBefore int64
	cmd := &cobra.Command{
		Use:   "verify [--anchor SEQ:HASH]... [--unsigned-before SEQ]",
		Short: "Verify the whole audit chain on this machine",
		Long: `Download the whole audit log (1000 records at a time) and check its hash
chain here, not on the relay: sequence numbers contiguous from 1, each
record's prev_hash equal to the hash of the one before, each hash matching
the record's content, and the chain ending at the relay's stored head. An
edited, removed, reordered or truncated record is found and named.

Consent receipts are checked too. Each consent decision an endpoint makes
(approved, denied, timed out, a session's end) is signed by the agent's own
key and kept in the record. Any record carrying a receipt must verify: the
agent's certificate chains to the relay CA pinned at login and names the
agent, and its key signed the receipt. A session.approved or session.denied
record must carry one, for its session and with its decision. So a consent
the endpoint never gave cannot be added, even by someone who rewrites the
database and recomputes the chain. A log begun before relays kept
receipts has session decisions without one: --unsigned-before SEQ accepts
those before record SEQ (the first record written by the upgraded relay).

On success it prints "audit log verified: N records, head SEQ HASH" and exits
0. On a broken chain it prints "audit log BROKEN at record SEQ: REASON" to
standard error and exits 1.

A relay operator who rewrites history and recomputes every later hash cannot
be caught by the chain alone. Keep the printed head somewhere the relay
cannot reach (a ticket, another system) and pass it back later with --anchor:
the record at SEQ must still have that hash.`,
		Example: `  patchbay audit verify
  patchbay audit verify --anchor 1500:3f1c9a0b7d2e4c5a`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			anchors := map[int64]*anchor{}
			for _, s := range anchorFlags {
				an, err := parseAnchor(s)
				if err != nil {
					return usageErrorf(cmd, "--anchor: %v", err)
				}
				anchors[an.seq] = an
			}
			return a.withClient(func(c *client.Client) error {
				res, err := c.VerifyAudit(cmd.Context(), func(r audit.Record) error {
					an := anchors[r.Seq]
					if an == nil {
						return nil
					}
					an.seen = true
					if !strings.HasPrefix(r.Hash, an.hash) {
						return &audit.ChainError{Seq: r.Seq, Reason: fmt.Sprintf("hash %s does not match the anchor %s", short(r.Hash), an.hash)}
					}
					return nil
				}, client.UnsignedBefore(unsignedBefore))
				if err == nil {
					for _, an := range anchors {
						if !an.seen {
							err = &audit.ChainError{Seq: an.seq, Reason: fmt.Sprintf("anchored record is missing (log ends at %d)", res.Head.Seq)}
							break
						}
					}
				}
				var ce *audit.ChainError
				if errors.As(err, &ce) {
					fmt.Fprintf(a.stderr, "audit log BROKEN at record %d: %s\n", ce.Seq, clean(ce.Reason))
					return errReported
				}
				if err != nil {
					return err
				}
				if res.Head.Seq == 0 {
					fmt.Fprintln(a.stdout, "audit log verified: 0 records, head 0 (empty log)")
					return nil
				}
				fmt.Fprintf(a.stdout, "audit log verified: %d records, head %d %s\n", res.Records, res.Head.Seq, short(res.Head.Hash))
				if len(anchors) > 0 {
					fmt.Fprintf(a.stderr, "%d anchor(s) matched.\n", len(anchors))
				}
				fmt.Fprintf(a.stderr, "To check later that this history was not rewritten: patchbay audit verify --anchor %d:%s\n",
					res.Head.Seq, clean(res.Head.Hash))
				return nil
			})
		},
	}
	cmd.Flags().StringArrayVar(&anchorFlags, "anchor", nil, "SEQ:HASH of a record from an earlier verification that must still match (repeatable)")
	cmd.Flags().Int64Var(&unsignedBefore, "unsigned-before", 0, "accept session decisions without a consent receipt before record SEQ (logs begun before relays kept receipts)")
	return cmd
}

// short returns the first 16 characters of a hash.
func short(h string) string {
	if len(h) > 16 {
		return clean(h[:16])
	}
	return clean(h)
}
