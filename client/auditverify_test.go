package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchbay/patchbay/client"
	"github.com/patchbay/patchbay/client/clienttest"
	"github.com/patchbay/patchbay/internal/audit"
)

// relayWithLog starts a relay whose log holds n (at least 2) correctly
// chained records: the creation of its two API tokens, then n-2 more.
func relayWithLog(t *testing.T, n int) (*clienttest.Relay, *client.Client) {
	t.Helper()
	relay := clienttest.New(t)
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)
	for i := range n - 2 {
		relay.AppendAudit(t, t0.Add(time.Duration(i)*time.Second), "token:tok-admin (admin)", "token.create",
			fmt.Sprintf("et-%d", i), map[string]string{"uses": "1", "tags": "site=paris"})
	}
	c, err := client.New(relay.Viewer())
	if err != nil {
		t.Fatal(err)
	}
	return relay, c
}

func TestVerifyAuditIntact(t *testing.T) {
	for _, tt := range []struct {
		name      string
		records   int
		pageLimit int
		pages     int // GET /v1/audit requests expected
	}{
		{"tokens only", 2, 0, 2},
		{"one page", 10, 0, 2},
		{"several pages", 2500, 0, 4},
		{"relay serves short pages", 700, 300, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			relay, c := relayWithLog(t, tt.records)
			relay.SetPageLimit(tt.pageLimit)
			var seen int64
			res, err := c.VerifyAudit(ctx(t), func(r audit.Record) error {
				seen++
				if r.Seq != seen {
					return fmt.Errorf("callback got seq %d, want %d", r.Seq, seen)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("VerifyAudit: %v", err)
			}
			if res.Records != int64(tt.records) || seen != int64(tt.records) || res.Head.Seq != int64(tt.records) {
				t.Errorf("result %+v, callback saw %d, want %d records", res, seen, tt.records)
			}
			pages := 0
			requests := relay.Requests()
			for _, r := range requests {
				if strings.HasPrefix(r, "GET /v1/audit?") {
					pages++
					if tt.pageLimit == 0 && !strings.Contains(r, "limit=1000") {
						t.Errorf("request %q does not ask for 1000 records", r)
					}
				}
			}
			if pages != tt.pages {
				t.Errorf("%d page requests, want %d: %q", pages, tt.pages, requests)
			}
		})
	}
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, r *clienttest.Relay)
		seq    int64
		reason string
	}{
		{"edited detail", func(t *testing.T, r *clienttest.Relay) {
			r.Tamper(t, `UPDATE audit_log SET detail = $1 WHERE seq = 1234`, `{"tags":"site=paris","uses":"0"}`)
		}, 1234, "hash does not match the record's content"},
		{"edited and rehashed", func(t *testing.T, r *clienttest.Relay) {
			rec := r.Record(t, 42)
			rec.Actor = "system"
			r.Tamper(t, `UPDATE audit_log SET actor = $1, hash = $2 WHERE seq = 42`, rec.Actor, rec.ComputeHash())
		}, 43, "prev_hash does not match"},
		{"removed record", func(t *testing.T, r *clienttest.Relay) {
			r.Tamper(t, `DELETE FROM audit_log WHERE seq = 700`)
		}, 700, "missing (next record present is 701)"},
		{"removed tail", func(t *testing.T, r *clienttest.Relay) {
			r.Tamper(t, `DELETE FROM audit_log WHERE seq > 1490`)
		}, 1491, "missing (chain ends at 1490, head is 1500)"},
		{"head hash differs", func(t *testing.T, r *clienttest.Relay) {
			r.Tamper(t, `UPDATE audit_head SET hash = $1`, strings.Repeat("0", 64))
		}, 1500, "hash does not match the stored head"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay, c := relayWithLog(t, 1500)
			tt.tamper(t, relay)
			_, err := c.VerifyAudit(ctx(t), nil)
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("VerifyAudit = %v, want a ChainError", err)
			}
			if ce.Seq != tt.seq || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("ChainError = %d %q, want %d %q", ce.Seq, ce.Reason, tt.seq, tt.reason)
			}
		})
	}
}

// Records appended while the client pages through the log are verified up
// to the head it reads, not reported as missing.
func TestVerifyAuditConcurrentAppend(t *testing.T) {
	relay, c := relayWithLog(t, 10)
	appended := false
	relay.SetHook(func(req *http.Request) {
		if req.URL.Path == "/v1/audit/head" && !appended {
			appended = true
			for range 5 {
				rec := audit.Record{Time: time.Now(), Actor: "token:tok-admin (admin)", Action: "login", Target: "tok-admin"}
				if _, err := relay.Store.AppendAudit(req.Context(), rec); err != nil {
					t.Errorf("append while the client reads: %v", err)
				}
			}
		}
	})
	res, err := c.VerifyAudit(ctx(t), nil)
	if err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if res.Records != 15 || res.Head.Seq != 15 {
		t.Errorf("result %+v, want 15 records", res)
	}
}

func TestVerifyAuditCallbackStops(t *testing.T) {
	_, c := relayWithLog(t, 20)
	stop := &audit.ChainError{Seq: 7, Reason: "anchor mismatch"}
	_, err := c.VerifyAudit(ctx(t), func(r audit.Record) error {
		if r.Seq == 7 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("VerifyAudit = %v, want the callback's error", err)
	}
}
